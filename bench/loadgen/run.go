package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"signsvr.dev/signsvr/bench/procstat"
	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// MaxMessageBytes is the client's message size limit both ways: a batch of 64 items
// of 64 KiB, with their certificates, is well over gRPC's default of 4 MiB.
const MaxMessageBytes = 256 << 20

// Config bounds and shapes one run.
type Config struct {
	// Addr is the server, host:port. Only loopback addresses are accepted.
	Addr string
	// Conns is the number of HTTP/2 connections; Streams the number of calls in flight
	// on each (each a goroutine calling in a closed loop, or taking paced tokens).
	Conns, Streams int
	// Warmup runs before the measured window; Duration is the longest window.
	Warmup, Duration time.Duration
	// MaxCalls ends the window early once that many calls completed in it (0: none).
	MaxCalls int64
	// Rate, when set, paces calls at that many per second (open loop); latency is then
	// counted from when each call was due, so a server falling behind shows in it.
	Rate float64
	// ServerPID, when set, is read from /proc for CPU time and memory.
	ServerPID int
	// MemInterval is how often server memory is sampled (default 250 ms).
	MemInterval time.Duration
	// KeepMemSamples puts every memory sample in the result (for the soak).
	KeepMemSamples bool
	// CallTimeout bounds each call (default 30 s).
	CallTimeout time.Duration
}

// Latency summarises call latencies in the window.
type Latency struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Result is what one run measured. Counts are of the measured window only.
type Result struct {
	Scenario string  `json:"scenario"`
	Method   string  `json:"method"`
	Conns    int     `json:"conns"`
	Streams  int     `json:"streams"`
	Rate     float64 `json:"target_rate,omitempty"`

	Window time.Duration `json:"window_ns"`
	// Calls completed with every item good; Items counts the good items.
	Calls int64 `json:"calls"`
	Items int64 `json:"items"`
	// FailedCalls had a non-OK status or a failed item; FailedItems counts items.
	FailedCalls int64            `json:"failed_calls"`
	FailedItems int64            `json:"failed_items"`
	Codes       map[string]int64 `json:"codes,omitempty"`
	FirstError  string           `json:"first_error,omitempty"`
	// Missed counts paced calls that could not even be queued (rate mode).
	Missed int64 `json:"missed,omitempty"`

	CallsPerSec float64 `json:"calls_per_sec"`
	ItemsPerSec float64 `json:"items_per_sec"`
	Latency     Latency `json:"latency"`

	// ServerCPU is the server's CPU time (all threads) over the window;
	// ServerCPUPerItem divides it by the good items.
	ServerCPU        time.Duration `json:"server_cpu_ns,omitempty"`
	ServerCPUPerItem time.Duration `json:"server_cpu_per_item_ns,omitempty"`
	// ServerActivity is what the server asked of the kernel over the window
	// (procstat.Activity); the per-call figures divide it by the calls answered.
	ServerActivity        *procstat.Activity `json:"server_activity,omitempty"`
	ServerReadsPerCall    float64            `json:"server_read_syscalls_per_call,omitempty"`
	ServerWritesPerCall   float64            `json:"server_write_syscalls_per_call,omitempty"`
	ServerSwitchesPerCall float64            `json:"server_context_switches_per_call,omitempty"`
	// ClientCPUPerCall is the generator's own CPU per call, to show it kept up.
	ClientCPUPerCall time.Duration `json:"client_cpu_per_call_ns"`
	// ServerRSSMax is the largest VmRSS sampled during the run; ServerHWM is VmHWM
	// (peak since the server started) at the end.
	ServerRSSMax int64                `json:"server_rss_max_bytes,omitempty"`
	ServerHWM    int64                `json:"server_hwm_bytes,omitempty"`
	MemSamples   []procstat.MemSample `json:"mem_samples,omitempty"`
}

// Dial opens n connections to a loopback addr and waits until each is ready. creds
// nil is plaintext (the development default); ClientTLS makes mutual-TLS credentials
// for a server with a configuration file.
func Dial(ctx context.Context, addr string, n int, creds credentials.TransportCredentials) ([]*grpc.ClientConn, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	var conns []*grpc.ClientConn
	for i := 0; i < n; i++ {
		cc, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(creds),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)))
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, cc)
		cc.Connect()
	}
	for _, cc := range conns {
		if err := waitReady(ctx, cc); err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("connecting to %s: %w", addr, err)
		}
	}
	return conns, nil
}

// ClientTLS is mutual TLS from PEM files: the CA that issued the server's certificate,
// and the client's certificate chain and key.
func ClientTLS(caFile, certFile, keyFile string) (credentials.TransportCredentials, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

func waitReady(ctx context.Context, cc *grpc.ClientConn) error {
	for {
		st := cc.GetState()
		if st == connectivity.Ready {
			return nil
		}
		if !cc.WaitForStateChange(ctx, st) {
			return ctx.Err()
		}
	}
}

// worker is one caller's private tally.
type worker struct {
	hist                                   Histogram
	calls, items, failedCalls, failedItems int64
	codes                                  map[string]int64
	firstErr                               error
}

// Run drives p over conns as cfg says and returns the window's figures. The returned
// error is for a run that could not be measured (e.g. /proc unreadable); failing calls
// are counted in the Result instead.
func Run(ctx context.Context, conns []*grpc.ClientConn, p *Prepared, cfg Config) (*Result, error) {
	if cfg.Conns < 1 || cfg.Streams < 1 || len(conns) < cfg.Conns {
		return nil, errors.New("loadgen: need at least one connection and one stream")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("loadgen: the run needs a duration")
	}
	if cfg.MemInterval <= 0 {
		cfg.MemInterval = 250 * time.Millisecond
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		measuring atomic.Bool
		measured  atomic.Int64
		done      = make(chan struct{})
		doneOnce  sync.Once
		seq       atomic.Uint64
		wg        sync.WaitGroup
		tokens    chan time.Time
		missed    atomic.Int64
	)
	finish := func() { doneOnce.Do(func() { close(done) }) }
	if cfg.Rate > 0 {
		tokens = make(chan time.Time, min(max(int(cfg.Rate), 1024), 1<<17))
	}
	items := int64(p.Scenario.Items())

	// record counts one answered call (or pipelined item) to request idx.
	record := func(w *worker, idx int, lat time.Duration, resp proto.Message, err error) {
		if !measuring.Load() {
			return
		}
		failed := int64(0)
		if err == nil {
			var f int
			f, err = p.check(idx, resp)
			failed = int64(f)
		} else {
			failed = items
		}
		if err != nil {
			w.failedCalls++
			w.failedItems += failed
			code := status.Code(err).String()
			if failed < items {
				code = "OK_WITH_FAILED_ITEMS"
			}
			w.codes[code]++
			if w.firstErr == nil {
				w.firstErr = err
			}
			w.items += items - failed
		} else {
			w.calls++
			w.items += items
			w.hist.Record(lat)
		}
		if cfg.MaxCalls > 0 && measured.Add(1) >= cfg.MaxCalls {
			finish()
		}
	}
	call := func(w *worker, cc *grpc.ClientConn, due time.Time) {
		idx := int(seq.Add(1) % uint64(len(p.Requests)))
		start := time.Now()
		if due.IsZero() {
			due = start
		}
		resp := p.newResponse()
		cctx, ccancel := context.WithTimeout(ctx, cfg.CallTimeout)
		err := cc.Invoke(cctx, p.Method, p.Requests[idx], resp)
		ccancel()
		record(w, idx, time.Since(due), resp, err)
	}

	workers := make([]*worker, 0, cfg.Conns*cfg.Streams)
	for c := 0; c < cfg.Conns; c++ {
		for s := 0; s < cfg.Streams; s++ {
			w := &worker{codes: map[string]int64{}}
			workers = append(workers, w)
			cc := conns[c]
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p.Scenario.Pipeline > 0 {
					// One stream per worker, its items answered in any order.
					for ctx.Err() == nil {
						err := p.runPipeline(ctx, cc, tokens, &seq, func(idx int, lat time.Duration, resp proto.Message, err error) {
							record(w, idx, lat, resp, err)
						})
						if err != nil && ctx.Err() == nil {
							record(w, 0, 0, nil, err) // the stream failed: counted once, then reopened
						}
					}
					return
				}
				if tokens != nil {
					for {
						select {
						case <-ctx.Done():
							return
						case due := <-tokens:
							call(w, cc, due)
						}
					}
				}
				for ctx.Err() == nil {
					call(w, cc, time.Time{})
				}
			}()
		}
	}
	if tokens != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace(ctx, cfg.Rate, tokens, &missed, &measuring)
		}()
	}

	var sampler *procstat.Sampler
	if cfg.ServerPID > 0 {
		sampler = procstat.StartSampler(cfg.ServerPID, cfg.MemInterval)
	}
	stopAll := func() {
		cancel()
		wg.Wait()
		if sampler != nil {
			sampler.Stop()
		}
	}

	select {
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
		stopAll()
		return nil, ctx.Err()
	}
	var srv0, srv1 procstat.CPU
	var act0, act1 procstat.Activity
	var err, actErr error
	if cfg.ServerPID > 0 {
		// The activity counts are read just outside the CPU window, so reading them
		// (a file per server thread) does not widen it.
		act0, actErr = procstat.ReadActivity(cfg.ServerPID)
		if srv0, err = procstat.ReadCPU(cfg.ServerPID); err != nil {
			stopAll()
			return nil, fmt.Errorf("loadgen: reading the server's CPU time: %w", err)
		}
	}
	cli0 := selfCPU()
	t0 := time.Now()
	measuring.Store(true)
	select {
	case <-time.After(cfg.Duration):
	case <-done:
	case <-ctx.Done():
	}
	measuring.Store(false)
	window := time.Since(t0)
	cli1 := selfCPU()
	if cfg.ServerPID > 0 {
		if srv1, err = procstat.ReadCPU(cfg.ServerPID); err != nil {
			stopAll()
			return nil, fmt.Errorf("loadgen: the server went away during the run: %w", err)
		}
		if actErr == nil {
			act1, actErr = procstat.ReadActivity(cfg.ServerPID)
		}
	}
	cancel()
	wg.Wait()

	method := p.Method
	if p.Scenario.Pipeline > 0 {
		method = signsvrv1.PipelineService_Pipeline_FullMethodName
	}
	r := &Result{
		Scenario: p.Scenario.Name(), Method: method, Conns: cfg.Conns, Streams: cfg.Streams,
		Rate: cfg.Rate, Window: window, Codes: map[string]int64{}, Missed: missed.Load(),
	}
	var h Histogram
	for _, w := range workers {
		h.Merge(&w.hist)
		r.Calls += w.calls
		r.Items += w.items
		r.FailedCalls += w.failedCalls
		r.FailedItems += w.failedItems
		for c, n := range w.codes {
			r.Codes[c] += n
		}
		if r.FirstError == "" && w.firstErr != nil {
			r.FirstError = truncate(w.firstErr.Error(), 300)
		}
	}
	if len(r.Codes) == 0 {
		r.Codes = nil
	}
	r.CallsPerSec = float64(r.Calls) / window.Seconds()
	r.ItemsPerSec = float64(r.Items) / window.Seconds()
	r.Latency = Latency{P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99),
		P999: h.Quantile(0.999), Max: h.Max(), Mean: h.Mean()}
	if all := r.Calls + r.FailedCalls; all > 0 {
		r.ClientCPUPerCall = (cli1 - cli0) / time.Duration(all)
	}
	if cfg.ServerPID > 0 {
		r.ServerCPU = srv1.Sub(srv0).Total()
		// Without permission to read /proc/PID/io (another user's server) the counts
		// are left out; they explain the CPU figure, they are not needed for it.
		if all := r.Calls + r.FailedCalls; actErr == nil && all > 0 {
			a := act1.Sub(act0)
			r.ServerActivity = &a
			r.ServerReadsPerCall = float64(a.Reads) / float64(all)
			r.ServerWritesPerCall = float64(a.Writes) / float64(all)
			r.ServerSwitchesPerCall = float64(a.Switches) / float64(all)
		}
		if r.Items > 0 {
			r.ServerCPUPerItem = r.ServerCPU / time.Duration(r.Items)
		}
		samples, serr := sampler.Stop()
		r.ServerRSSMax = procstat.MaxRSS(samples)
		if cfg.KeepMemSamples {
			r.MemSamples = samples
		}
		if serr == nil {
			if m, err := procstat.ReadMemory(cfg.ServerPID); err == nil {
				r.ServerHWM = m.HWM
				r.ServerRSSMax = max(r.ServerRSSMax, m.RSS)
			}
		}
	}
	return r, nil
}

// pace sends the due time of each call at rate per second until ctx ends. A call that
// cannot be queued (every worker busy and the queue full) is counted as missed.
func pace(ctx context.Context, rate float64, tokens chan<- time.Time, missed *atomic.Int64, measuring *atomic.Bool) {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	var sent int64
	tick := time.NewTicker(max(interval, 200*time.Microsecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * rate)
			for ; sent < due; sent++ {
				at := start.Add(time.Duration(sent) * interval)
				select {
				case tokens <- at:
				default:
					if measuring.Load() {
						missed.Add(1)
					}
				}
			}
		}
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
