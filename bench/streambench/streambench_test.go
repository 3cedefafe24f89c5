// Package streambench proves that StreamService runs in constant memory: it starts
// a real `signsvr serve` process, streams a large document through each streaming
// call, and reads the server's peak resident memory (VmHWM in /proc/PID/status).
// The benchmark does the same with 1 GiB and sets each call's throughput beside the
// bare digest or cipher measured in the same run.
//
//	go test ./bench/streambench                       # 128 MiB, the memory bound (make test)
//	SIGNSVR_STREAM_BYTES=1073741824 go test ./bench/streambench -run Memory -v
//	go test ./bench/streambench -run '^$' -bench . -benchtime 1x   # make bench-stream: 1 GiB
package streambench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/streamclient"
)

// maxHWM is the bound on the server's peak resident memory.
const maxHWM = 64 << 20

func envBytes(t testing.TB, name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

// pattern is an io.Reader of n repeatable bytes, copied from one precomputed period
// (generating them byte by byte would make the client the bottleneck).
type pattern struct{ n, off int64 }

// patternPeriod is a prime number of bytes, so that chunks never line up with it.
const patternPeriod = 1<<20 + 7

var patternBytes = func() []byte {
	b := make([]byte, 2*patternPeriod)
	for i := range b {
		x := i % patternPeriod
		b[i] = byte(x*7 + x>>13)
	}
	return b
}()

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(b)), p.n-p.off, patternPeriod))
	start := int(p.off % patternPeriod)
	copy(b[:k], patternBytes[start:start+k])
	p.off += int64(k)
	return k, nil
}

type server struct {
	cmd  *exec.Cmd
	addr string
	log  *bytes.Buffer
	cc   *grpc.ClientConn
}

// startServer builds cmd/signsvr and runs `signsvr serve` (the development
// default) on a free loopback port.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "signsvr")
	build := exec.Command("go", "build", "-o", bin, "signsvr.dev/signsvr/cmd/signsvr")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &server{addr: addr, log: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--listen", addr}, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	s.cc, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cc.Close() })
	h := healthpb.NewHealthClient(s.cc)
	deadline := time.Now().Add(2 * time.Minute) // the first start makes RSA keys
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not become SERVING: %v", err)
		}
	}
	return s
}

// logRSS logs the server's resident memory: anonymous (heap, stacks) and file
// (the binary's pages).
func (s *server) logRSS(t testing.TB) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "RssAnon") || strings.HasPrefix(l, "RssFile") {
			t.Log(strings.Join(strings.Fields(l), " "))
		}
	}
}

// hwm is the server's peak resident memory so far.
func (s *server) hwm(t testing.TB) int64 { return procHWM(t, s.cmd.Process.Pid) }

// procHWM is a process's peak resident memory so far.
func procHWM(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// call is one streaming call of the pipeline: run sends r through it and writes
// what comes back to w; check (for the real server) says whether the answer is
// right. input names the file made first that r reads ("": the pattern itself).
type call struct {
	name, input string
	run         func(ctx context.Context, sc signsvrv1.StreamServiceClient, r io.Reader, w io.Writer) (check func() error, err error)
	// shape names the ceiling's form of the call: "upload" (data in, nothing out),
	// "echo" (data in and out at once), "upload, then download" (out after in).
	shape string
}

// calls are the pipeline's calls; a nil w (the ceiling's run) is a sink that checks
// nothing.
func calls(n int64) []call {
	ok := func() error { return nil }
	return []call{
		{name: "SignStream (ECDSA P-256, attached)", shape: "echo",
			run: func(ctx context.Context, sc signsvrv1.StreamServiceClient, r io.Reader, w io.Writer) (func() error, error) {
				_, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: "ecdsa-sign"}, r, sink(w), nil)
				return ok, err
			}},
		{name: "VerifyStream (attached)", input: "sig.ber", shape: "upload",
			run: func(ctx context.Context, sc signsvrv1.StreamServiceClient, r io.Reader, w io.Writer) (func() error, error) {
				v, err := streamclient.Verify(ctx, sc, nil, nil, r, nil)
				return func() error {
					if !v.GetVerified() {
						return fmt.Errorf("not verified: %v", v.GetSigners())
					}
					return nil
				}, err
			}},
		{name: "EnvelopeStream (RSA, AES-256-GCM)", shape: "echo",
			run: func(ctx context.Context, sc signsvrv1.StreamServiceClient, r io.Reader, w io.Writer) (func() error, error) {
				_, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"rsa-enc"}}, r, sink(w), nil)
				return ok, err
			}},
		{name: "DecryptStream (AES-256-GCM, spooled)", input: "env.ber", shape: "upload, then download",
			run: func(ctx context.Context, sc signsvrv1.StreamServiceClient, r io.Reader, w io.Writer) (func() error, error) {
				check := &compare{want: &pattern{n: n}, off: w == nil}
				_, err := streamclient.Decrypt(ctx, sc, &signsvrv1.DecryptStreamOptions{Key: "rsa-enc"}, r, check, nil)
				return func() error {
					if check.n != n || check.bad {
						return fmt.Errorf("plaintext differs (%d bytes)", check.n)
					}
					return nil
				}, err
			}},
		{name: "SignAndEnvelopeStream (ECDSA, SHA-256 + AES-256-GCM)", shape: "echo",
			run: func(ctx context.Context, sc signsvrv1.StreamServiceClient, r io.Reader, w io.Writer) (func() error, error) {
				_, err := streamclient.SignAndEnvelope(ctx, sc, saeOptions(), r, sink(w), nil)
				return ok, err
			}},
		{name: "DecryptAndVerifyStream (SHA-256 + AES-256-GCM)", input: "signed-env.ber", shape: "upload, then download",
			run: func(ctx context.Context, sc signsvrv1.StreamServiceClient, r io.Reader, w io.Writer) (func() error, error) {
				check := &compare{want: &pattern{n: n}, off: w == nil}
				res, err := streamclient.DecryptAndVerify(ctx, sc, &signsvrv1.DecryptAndVerifyStreamOptions{Key: "rsa-enc"}, r, check, nil)
				return func() error {
					if !res.GetVerified() || check.n != n || check.bad {
						return fmt.Errorf("verified %v, content %d bytes, differs %v", res.GetVerified(), check.n, check.bad)
					}
					return nil
				}, err
			}},
	}
}

func sink(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// timing is what pipeline measured of one call: its duration through the server
// and, when a ceiling ran, through the ceiling.
type timing struct {
	call
	took, ceiling time.Duration
}

// pipeline streams n bytes through every streaming call, each reading the file the
// one before wrote, and returns each call's duration; it checks the results. With
// a ceiling server, each call also runs through it just before, with the same
// input, so the two durations are taken as close together as they can be.
func pipeline(t testing.TB, s *server, ceil *ceiling, n int64, dir string) []timing {
	t.Helper()
	sc := signsvrv1.NewStreamServiceClient(s.cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	create := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	input := func(name string) (io.Reader, func()) {
		if name == "" {
			return &pattern{n: n}, func() {}
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return bufio.NewReaderSize(f, 1<<20), func() { f.Close() }
	}
	// The inputs of VerifyStream and DecryptStream are made first, untimed, into
	// files; the timed calls write to memory sinks, so the disk is measured only
	// where the server itself uses it (the GCM spool).
	for _, mk := range []struct {
		name string
		call func(w io.Writer) error
	}{
		{"sig.ber", func(w io.Writer) error {
			_, err := streamclient.Sign(ctx, sc, &signsvrv1.SignStreamOptions{Key: "ecdsa-sign"}, &pattern{n: n}, w, nil)
			return err
		}},
		{"env.ber", func(w io.Writer) error {
			_, err := streamclient.Envelope(ctx, sc, &signsvrv1.EnvelopeStreamOptions{RecipientKeys: []string{"rsa-enc"}}, &pattern{n: n}, w, nil)
			return err
		}},
		{"signed-env.ber", func(w io.Writer) error {
			_, err := streamclient.SignAndEnvelope(ctx, sc, saeOptions(), &pattern{n: n}, w, nil)
			return err
		}},
	} {
		f := create(mk.name)
		w := bufio.NewWriterSize(f, 1<<20)
		if err := mk.call(w); err != nil {
			t.Fatalf("making %s: %v", mk.name, err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	var out []timing
	for _, c := range calls(n) {
		tm := timing{call: c}
		if ceil != nil {
			r, done := input(c.input)
			start := time.Now()
			_, err := c.run(ctx, ceil.sc, r, nil)
			tm.ceiling = time.Since(start)
			done()
			if err != nil {
				t.Fatalf("%s through the ceiling: %v", c.name, err)
			}
		}
		r, done := input(c.input)
		start := time.Now()
		check, err := c.run(ctx, sc, r, io.Discard)
		tm.took = time.Since(start)
		done()
		if err == nil {
			err = check()
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: %d MiB in %v (%.0f MB/s); server VmHWM %d MiB", c.name, n>>20, tm.took.Round(time.Millisecond),
			float64(n)/tm.took.Seconds()/1e6, s.hwm(t)>>20)
		out = append(out, tm)
	}
	return out
}

// saeOptions are SignAndEnvelopeStream's: an ECDSA signature enveloped to RSA.
func saeOptions() *signsvrv1.SignAndEnvelopeStreamOptions {
	return &signsvrv1.SignAndEnvelopeStreamOptions{Key: "ecdsa-sign", RecipientKeys: []string{"rsa-enc"}}
}

// compare is an io.Writer that checks what it gets against want.
// With off (the ceiling's answer, which is not the content) it checks nothing.
type compare struct {
	want io.Reader
	off  bool
	buf  []byte
	n    int64
	bad  bool
}

func (c *compare) Write(p []byte) (int, error) {
	if c.off {
		return len(p), nil
	}
	if len(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	io.ReadFull(c.want, c.buf[:len(p)])
	if !bytes.Equal(c.buf[:len(p)], p) {
		c.bad = true
	}
	c.n += int64(len(p))
	return len(p), nil
}

// TestStreamMemoryBound: a large document through every streaming call leaves the
// server's peak resident memory under 64 MiB.
func TestStreamMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a server process")
	}
	n := envBytes(t, "SIGNSVR_STREAM_BYTES", 128<<20)
	// The server's default GC headroom (--gc-percent 400 under a 64 MiB soft limit)
	// lets any steady allocation, however small, grow the heap towards the limit;
	// with Go's default percentage the peak is what the calls hold. The benchmark
	// runs with the defaults.
	s := startServer(t, "--gc-percent", "100")
	t.Logf("server VmHWM before: %d MiB", s.hwm(t)>>20)
	pipeline(t, s, nil, n, t.TempDir())
	s.logRSS(t)
	if hwm := s.hwm(t); hwm >= maxHWM {
		t.Fatalf("server VmHWM %d MiB after %d MiB through each stream, want < %d MiB", hwm>>20, n>>20, maxHWM>>20)
	}
}

// bare measures the primitives on n bytes in 256 KiB pieces: SHA-256 (what
// SignStream and VerifyStream do per byte) and AES-256-GCM (EnvelopeStream,
// DecryptStream).
func bare(n int64) (digest, gcm time.Duration) {
	buf := make([]byte, streamclient.ChunkSize)
	start := time.Now()
	h := sha256.New()
	for done := int64(0); done < n; done += int64(len(buf)) {
		h.Write(buf)
	}
	h.Sum(nil)
	digest = time.Since(start)
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, 12)
	out := make([]byte, 0, len(buf)+16)
	start = time.Now()
	for done := int64(0); done < n; done += int64(len(buf)) {
		aead.Seal(out[:0], nonce, buf, nil)
	}
	return digest, time.Since(start)
}

// BenchmarkStream1GiB: 1 GiB (SIGNSVR_STREAM_BENCH_BYTES) through every streaming
// call of a server process, and through the same call of the ceiling (a
// StreamService that does no work, over the server's transport), just before. Each
// call's throughput is reported beside the bare primitive measured in the same run
// and beside the ceiling, with both ratios, and the server's VmHWM.
func BenchmarkStream1GiB(b *testing.B) {
	n := envBytes(b, "SIGNSVR_STREAM_BENCH_BYTES", 1<<30)
	// SIGNSVR_STREAM_SERVER_ARGS adds flags to the server's, e.g. --cpu-profile FILE.
	s := startServer(b, strings.Fields(os.Getenv("SIGNSVR_STREAM_SERVER_ARGS"))...)
	ceil := startCeiling(b)
	dir := b.TempDir()
	for b.Loop() {
		d0, g0 := bare(n)
		took := pipeline(b, s, ceil, n, dir)
		d1, g1 := bare(n)
		digest, gcm := (d0+d1)/2, (g0+g1)/2
		both := digest + gcm // the sign-then-envelope calls do both
		mbs := func(d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }
		b.Logf("bare SHA-256 %.0f MB/s, bare AES-256-GCM %.0f MB/s (the mean of before and after the calls: %.0f, %.0f and %.0f, %.0f)",
			mbs(digest), mbs(gcm), mbs(d0), mbs(d1), mbs(g0), mbs(g1))
		b.Logf("%-54s %8s %8s %8s %9s %9s %9s", "call", "bare", "ceiling", "call", "call/bare", "call/ceil", "ceil/bare")
		for _, tm := range took {
			base, baseName := digest, "SHA-256"
			if strings.Contains(tm.name, "GCM") {
				base, baseName = gcm, "AES-256-GCM"
			}
			if strings.Contains(tm.name, "SHA-256 + AES") {
				base, baseName = both, "SHA-256 + AES-256-GCM"
			}
			b.Logf("%-54s %8.0f %8.0f %8.0f %9.2f %9.2f %9.2f   (MB/s; bare %s, ceiling %s)", tm.name,
				mbs(base), mbs(tm.ceiling), mbs(tm.took), base.Seconds()/tm.took.Seconds(),
				tm.ceiling.Seconds()/tm.took.Seconds(), base.Seconds()/tm.ceiling.Seconds(), baseName, tm.shape)
			short := strings.Fields(tm.name)[0]
			b.ReportMetric(base.Seconds()/tm.took.Seconds(), short+"-ratio")
			b.ReportMetric(tm.ceiling.Seconds()/tm.took.Seconds(), short+"-of-ceiling")
		}
		s.logRSS(b)
		hwm := s.hwm(b)
		b.ReportMetric(float64(hwm>>20), "VmHWM-MiB")
		b.Logf("ceiling VmHWM %d MiB", ceil.hwm(b)>>20)
		if hwm >= maxHWM {
			b.Fatalf("server VmHWM %d MiB, want < %d MiB", hwm>>20, maxHWM>>20)
		}
	}
}

// ceiling is a process of bench/streambench/ceiling.
type ceiling struct {
	cmd *exec.Cmd
	sc  signsvrv1.StreamServiceClient
}

// startCeiling builds and starts the ceiling server on a free loopback port.
func startCeiling(t testing.TB) *ceiling {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ceiling")
	build := exec.Command("go", "build", "-o", bin, "signsvr.dev/signsvr/bench/streambench/ceiling")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c := &ceiling{cmd: exec.Command(bin, "--listen", "127.0.0.1:0")}
	c.cmd.Stderr = os.Stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.cmd.Process.Signal(os.Interrupt)
		c.cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("the ceiling said %q: %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c.sc = signsvrv1.NewStreamServiceClient(cc)
	return c
}

func (c *ceiling) hwm(t testing.TB) int64 { return procHWM(t, c.cmd.Process.Pid) }
