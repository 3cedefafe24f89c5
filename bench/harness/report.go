package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"signsvr.dev/signsvr/bench/baseline"
	"signsvr.dev/signsvr/bench/loadgen"
)

// Environment describes the machine and its load, since the figures depend on both.
type Environment struct {
	GoVersion    string `json:"go_version"`
	NumCPU       int    `json:"num_cpu"`
	CPUModel     string `json:"cpu_model,omitempty"`
	Commit       string `json:"commit,omitempty"`
	LoadAvgStart string `json:"loadavg_start,omitempty"`
	LoadAvgEnd   string `json:"loadavg_end,omitempty"`
}

// ScenarioResult is one scenario with the server on one core.
type ScenarioResult struct {
	Name     string           `json:"name"`
	Scenario loadgen.Scenario `json:"scenario"`
	Error    string           `json:"error,omitempty"`
	Load     *loadgen.Result  `json:"load,omitempty"`
	Baseline *baseline.Result `json:"baseline,omitempty"`
	// BaselineTries is how many times the baseline was measured (more than once when
	// the whole primitive and its parts disagreed: runner.runBaseline), and
	// BaselineDisagreement how far apart they were in the one kept.
	BaselineTries        int     `json:"baseline_tries,omitempty"`
	BaselineDisagreement float64 `json:"baseline_disagreement"`
	// BaselineAfter is the whole primitive measured again right after the load run
	// (runner.baselineAfter); 0 when that failed.
	BaselineAfter time.Duration `json:"baseline_after_ns,omitempty"`
	// Unreliable says the primitive was disturbed (its whole and parts still disagreed
	// after the tries) or moved by more than baselineAgreement between before and
	// after the load: the machine's speed changed, so the efficiency is not a measure
	// of the server.
	Unreliable bool `json:"unreliable,omitempty"`
	// Efficiency is the bare primitive's CPU per operation divided by the server's
	// CPU per item (1 would be a server that costs nothing beyond the primitive).
	Efficiency float64 `json:"efficiency,omitempty"`
	// Target is the throughput targets' minimum efficiency for the scenario (0: none).
	Target     float64 `json:"target,omitempty"`
	TargetNote string  `json:"target_note,omitempty"`
	TargetMet  *bool   `json:"target_met,omitempty"`
	// From bench/serverbench (client and server in one process; per item).
	AllocsPerItem     float64 `json:"allocs_per_item,omitempty"`
	EchoAllocsPerItem float64 `json:"echo_allocs_per_item,omitempty"`
	BenchNsPerItem    float64 `json:"bench_ns_per_item,omitempty"`
	EchoNsPerItem     float64 `json:"echo_ns_per_item,omitempty"`
	AllocsError       string  `json:"allocs_error,omitempty"`
}

// drift is how far the primitive measured after the load run is from the one before,
// as a fraction of the one before (0 when there is no second measurement).
func (s *ScenarioResult) drift() float64 {
	if s.Baseline == nil {
		return 0
	}
	return drift(s.Baseline.Full.CPU, s.BaselineAfter)
}

// movedNote says that what (a primitive) cost before the load run and after it drift
// apart.
func movedNote(what string, before, after time.Duration) string {
	return fmt.Sprintf("%s moved from %s to %s µs around the load run (the machine's speed changed), efficiency unreliable",
		what, f1(us(before)), f1(us(after)))
}

// drift is how far after is from before, as a fraction of before; 0 when either is
// missing.
func drift(before, after time.Duration) float64 {
	if before <= 0 || after <= 0 {
		return 0
	}
	return math.Abs(float64(after-before)) / float64(before)
}

// target is the efficiency a scenario should reach: the project's throughput targets,
// written down here as the one place the report takes them from.
func target(sc loadgen.Scenario) (float64, string) {
	ec := sc.Alg == "sm2" || sc.Alg == "ecdsa"
	cms := sc.Op == loadgen.OpSign || sc.Op == loadgen.OpVerify
	switch {
	case cms && sc.Size >= 64<<10:
		return 0.80, "64 KiB: >= 0.80 of primitive + hashing"
	case sc.Op == loadgen.OpSign && sc.Alg == "rsa":
		return 0.90, "RSA-2048 Sign: >= 0.90"
	case sc.Op == loadgen.OpSign && ec && sc.Pipeline > 0 && sc.Size <= 1024:
		return 0.75, "1 KiB Sign pipelined: >= 0.75"
	case sc.Op == loadgen.OpVerify && ec && sc.Pipeline > 0 && sc.Size <= 1024:
		return 0.80, "1 KiB Verify pipelined: >= 0.80"
	case cms && ec && sc.Batch > 0:
		return 0.85, "batch of 64: >= 0.85"
	case sc.Op == loadgen.OpSign && ec && sc.Size <= 1024:
		return 0.50, "1 KiB Sign unary: >= 0.50"
	case sc.Op == loadgen.OpVerify && ec && sc.Size <= 1024:
		return 0.55, "1 KiB Verify unary: >= 0.55"
	}
	return 0, ""
}

func (s *ScenarioResult) compute() {
	if s.Load == nil || s.Baseline == nil || s.Load.ServerCPUPerItem <= 0 {
		return
	}
	s.Efficiency = float64(s.Baseline.Full.CPU) / float64(s.Load.ServerCPUPerItem)
	s.Unreliable = s.BaselineDisagreement > baselineAgreement || s.drift() > baselineAgreement
	s.Target, s.TargetNote = target(s.Scenario)
	if s.Target > 0 {
		met := s.Efficiency >= s.Target
		s.TargetMet = &met
	}
}

// Capacity is the calls per second one full core would serve, from the server's CPU
// per item: the "maximum load" that latency and soak runs take a fraction of. It does
// not depend on how much of its core the server was given during the closed-loop run
// (on a shared machine, other processes take some).
func (s *ScenarioResult) Capacity() float64 {
	if s.Load == nil || s.Load.ServerCPUPerItem <= 0 {
		return 0
	}
	return float64(time.Second) / float64(s.Load.ServerCPUPerItem*time.Duration(s.Scenario.Items()))
}

// loadEstimate is Capacity, or, when the server's CPU was not measured (a short run
// charged no scheduler tick), the calls per second the closed-loop run achieved: a
// lower bound, but a rate to start from.
func (s *ScenarioResult) loadEstimate() float64 {
	if c := s.Capacity(); c > 0 {
		return c
	}
	if s.Load == nil {
		return 0
	}
	return s.Load.CallsPerSec
}

// coreUse is the share of one core the server used over the window.
func coreUse(l *loadgen.Result) float64 {
	if l == nil || l.Window <= 0 {
		return 0
	}
	return float64(l.ServerCPU) / float64(l.Window)
}

func (s *ScenarioResult) failNote() string {
	if s.Load != nil && s.Load.FailedCalls > 0 {
		return fmt.Sprintf("  (%d failed calls: %s)", s.Load.FailedCalls, s.Load.FirstError)
	}
	if s.Unreliable && s.BaselineAfter > 0 {
		return fmt.Sprintf("  (unreliable: primitive %.1f µs before the load, %.1f after)", us(s.Baseline.Full.CPU), us(s.BaselineAfter))
	}
	if s.Unreliable {
		return "  (unreliable: primitive disturbed)"
	}
	return ""
}

// TwoCoreResult compares a scenario with the server on one core and on two.
type TwoCoreResult struct {
	Name    string          `json:"name"`
	Error   string          `json:"error,omitempty"`
	OneCore *loadgen.Result `json:"one_core,omitempty"`
	TwoCore *loadgen.Result `json:"two_core,omitempty"`
	// CPURatio is the two-core CPU per item over the one-core one (target <= 1.10).
	CPURatio float64 `json:"cpu_ratio,omitempty"`
	// Speedup is two-core items/s over one-core items/s: a lower bound, since the
	// generator shares the two cores.
	Speedup float64 `json:"speedup_lower_bound,omitempty"`
}

func (t *TwoCoreResult) compute() {
	if t.OneCore.ServerCPUPerItem > 0 {
		t.CPURatio = float64(t.TwoCore.ServerCPUPerItem) / float64(t.OneCore.ServerCPUPerItem)
	}
	if t.OneCore.ItemsPerSec > 0 {
		t.Speedup = t.TwoCore.ItemsPerSec / t.OneCore.ItemsPerSec
	}
}

// LatencyResult is a scenario at a fixed fraction of its maximum load, open loop.
type LatencyResult struct {
	Name     string  `json:"name"`
	Error    string  `json:"error,omitempty"`
	Fraction float64 `json:"fraction"`
	// MaxCallsPerSec is the maximum load: the highest fixed rate the server sustained
	// (OpenLoopProbe), found from Probes. CapacityCallsPerSec is one core's capacity
	// from the closed-loop CPU per call (ScenarioResult.Capacity) and
	// ClosedLoopCallsPerSec what the closed-loop run reached.
	MaxCallsPerSec        float64 `json:"max_calls_per_sec"`
	CapacityCallsPerSec   float64 `json:"capacity_calls_per_sec"`
	ClosedLoopCallsPerSec float64 `json:"closed_loop_calls_per_sec"`
	Probes                []Probe `json:"probes,omitempty"`
	// TargetRate is Fraction of MaxCallsPerSec; Load the run at that rate.
	TargetRate float64         `json:"target_rate"`
	Load       *loadgen.Result `json:"load,omitempty"`
	// AtCapacity is the run at Fraction of CapacityCallsPerSec, the earlier definition
	// of the maximum, kept for comparison.
	AtCapacityRate float64         `json:"at_capacity_rate,omitempty"`
	AtCapacity     *loadgen.Result `json:"at_capacity,omitempty"`
	// ClosedLoopScenario names the one-core closed-loop result of the scenario (under
	// scenarios), for the table's comparison.
	ClosedLoopScenario string `json:"closed_loop_scenario,omitempty"`
}

// Probe is one fixed-rate run of the search for the open-loop maximum.
type Probe struct {
	Rate      float64       `json:"rate"`
	Achieved  float64       `json:"achieved_calls_per_sec"`
	CoreUse   float64       `json:"server_core_use"`
	P99       time.Duration `json:"p99_ns"`
	Sustained bool          `json:"sustained"`
	Error     string        `json:"error,omitempty"`
}

// Sustained says whether the server kept up with a fixed rate without saturating its
// core: every call served and answered on time, at least 97 % of the rate achieved,
// and at most 95 % of the core used. At a rate the core cannot serve, calls queue and
// latency measures the queue's growth, not the server.
func Sustained(res *loadgen.Result, rate float64) bool {
	return res != nil && res.FailedCalls == 0 && res.Missed == 0 &&
		res.CallsPerSec >= 0.97*rate && coreUse(res) <= 0.95
}

// GhzResult is one ghz run.
type GhzResult struct {
	Name        string  `json:"name"`
	Config      string  `json:"config,omitempty"`
	Call        string  `json:"call,omitempty"`
	Error       string  `json:"error,omitempty"`
	TargetRate  float64 `json:"target_rate,omitempty"`
	Concurrency int     `json:"concurrency"`
	Connections int     `json:"connections"`

	Count int64            `json:"count"`
	OK    int64            `json:"ok"`
	Codes map[string]int64 `json:"codes,omitempty"`
	RPS   float64          `json:"rps"`
	P50   time.Duration    `json:"p50_ns"`
	P99   time.Duration    `json:"p99_ns"`
	Mean  time.Duration    `json:"mean_ns"`
	// ServerCPUPerReq is the server's CPU over the whole ghz run divided by requests.
	ServerCPUPerReq time.Duration `json:"server_cpu_per_req_ns"`
}

// parse reads ghz's JSON report (--format json).
func (g *GhzResult) parse(b []byte) error {
	var rep struct {
		Count       int64            `json:"count"`
		Rps         float64          `json:"rps"`
		Average     int64            `json:"average"`
		Codes       map[string]int64 `json:"statusCodeDistribution"`
		LatencyDist []struct {
			Percentage int   `json:"percentage"`
			Latency    int64 `json:"latency"`
		} `json:"latencyDistribution"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("ghz printed no JSON report: %v", err)
	}
	g.Count, g.RPS, g.Mean, g.Codes = rep.Count, rep.Rps, time.Duration(rep.Average), rep.Codes
	g.OK = rep.Codes["OK"]
	for _, l := range rep.LatencyDist {
		switch l.Percentage {
		case 50:
			g.P50 = time.Duration(l.Latency)
		case 99:
			g.P99 = time.Duration(l.Latency)
		}
	}
	return nil
}

// SoakResult is the soak: a long run at a fraction of the maximum load (a mix of
// scenarios, when the suite gives several), with the server's RSS, threads and open
// files watched for growth.
type SoakResult struct {
	Name       string        `json:"name"`
	Error      string        `json:"error,omitempty"`
	Fraction   float64       `json:"fraction"`
	Duration   time.Duration `json:"duration_ns"`
	TargetRate float64       `json:"target_rate"`
	// Load is the first scenario's run (it sampled the RSS); Loads every scenario's.
	Load  *loadgen.Result   `json:"load,omitempty"`
	Loads []*loadgen.Result `json:"loads,omitempty"`
	// RSSStart and RSSEnd are the mean RSS over the first and the last minute of the
	// window (a third of it, if shorter); Growth is (end - start) / start.
	RSSStart int64   `json:"rss_start_bytes"`
	RSSEnd   int64   `json:"rss_end_bytes"`
	RSSMax   int64   `json:"rss_max_bytes"`
	Growth   float64 `json:"growth"`
	// RSSSlopePerHour is the least-squares slope of the RSS over the window, in bytes
	// per hour: a leak shows as a steady slope where the two means could be noise.
	RSSSlopePerHour float64 `json:"rss_slope_bytes_per_hour"`
	// Proc are the server's threads and open files, sampled through the run; the
	// start and end figures are means over the same segments as the RSS's.
	Proc         []ProcSample `json:"proc,omitempty"`
	ThreadsStart int          `json:"threads_start"`
	ThreadsEnd   int          `json:"threads_end"`
	FilesStart   int          `json:"files_start"`
	FilesEnd     int          `json:"files_end"`
	// Calls and Failed add up every scenario's calls; Flat says the soak passed:
	// no failed call, and RSS, threads and open files did not grow (soakFlat).
	Calls  int64 `json:"calls"`
	Failed int64 `json:"failed"`
	Flat   bool  `json:"flat"`
}

// soakWarmup is the soak's warm-up before its window (see soakPhase).
const soakWarmup = 10 * time.Second

func (s *SoakResult) compute() {
	samples := s.Load.MemSamples
	seg := min(time.Minute, s.Duration/3)
	end := soakWarmup + s.Duration
	inStart := func(at time.Duration) bool { return at >= soakWarmup && at < soakWarmup+seg }
	inEnd := func(at time.Duration) bool { return at >= end-seg && at <= end }
	var a, b []int64
	var xs, ys []float64
	for _, m := range samples {
		switch {
		case inStart(m.At):
			a = append(a, m.RSS)
		case inEnd(m.At):
			b = append(b, m.RSS)
		}
		if m.At >= soakWarmup && m.At <= end {
			xs, ys = append(xs, m.At.Hours()), append(ys, float64(m.RSS))
		}
		s.RSSMax = max(s.RSSMax, m.RSS)
	}
	s.RSSStart, s.RSSEnd = mean(a), mean(b)
	if s.RSSStart > 0 {
		s.Growth = float64(s.RSSEnd-s.RSSStart) / float64(s.RSSStart)
	}
	s.RSSSlopePerHour = slope(xs, ys)
	var ta, tb, fa, fb []int64
	for _, p := range s.Proc {
		switch {
		case inStart(p.At):
			ta, fa = append(ta, int64(p.Threads)), append(fa, int64(p.Files))
		case inEnd(p.At):
			tb, fb = append(tb, int64(p.Threads)), append(fb, int64(p.Files))
		}
	}
	s.ThreadsStart, s.ThreadsEnd = int(mean(ta)), int(mean(tb))
	s.FilesStart, s.FilesEnd = int(mean(fa)), int(mean(fb))
	for _, l := range s.Loads {
		if l != nil {
			s.Calls += l.Calls
			s.Failed += l.FailedCalls
		}
	}
	s.Flat = soakFlat(s)
}

// soakFlat is the soak's verdict: no call failed; the RSS grew by at most a tenth
// (and 8 MiB) over the window, by both the end means and the slope; threads and open
// files ended within a few of where they started (the Go runtime may start a thread
// or two late; a leak of connections or goroutines blocked in system calls grows
// with the calls).
func soakFlat(s *SoakResult) bool {
	allowed := max(float64(s.RSSStart)/10, 8<<20)
	grown := float64(s.RSSEnd - s.RSSStart)
	bySlope := s.RSSSlopePerHour * s.Duration.Hours()
	return s.Failed == 0 && s.Calls > 0 && s.RSSStart > 0 && grown <= allowed && bySlope <= allowed &&
		s.ThreadsEnd <= s.ThreadsStart+4 && s.FilesEnd <= s.FilesStart+4
}

// slope is the least-squares slope of ys over xs (0 for fewer than two points).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func mean(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	var t int64
	for _, x := range v {
		t += x
	}
	return t / int64(len(v))
}

// Profile names the pprof files of one scenario, relative to the results directory.
type Profile struct {
	Scenario string `json:"scenario"`
	CPU      string `json:"cpu"`
	Alloc    string `json:"alloc"`
	Error    string `json:"error,omitempty"`
}

// Report is everything one run measured.
type Report struct {
	Name        string    `json:"name"`
	Suite       string    `json:"suite"`
	Description string    `json:"description,omitempty"`
	Backend     string    `json:"backend"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Env         Environment
	ServerCPUs  string `json:"server_cpus"`
	ClientCPUs  string `json:"client_cpus"`
	BothCPUs    string `json:"both_cpus"`

	Scenarios []*ScenarioResult `json:"scenarios"`
	TwoCore   []*TwoCoreResult  `json:"two_core,omitempty"`
	Latency   []*LatencyResult  `json:"latency,omitempty"`
	HSM       []*HSMResult      `json:"hsm,omitempty"`
	Ghz       []*GhzResult      `json:"ghz,omitempty"`
	Soak      *SoakResult       `json:"soak,omitempty"`
	Profiles  []Profile         `json:"profiles,omitempty"`
	// PeakRSS is the one-core server's VmHWM at the end of its phase: the most it was
	// resident through every scenario, latency and ghz run.
	PeakRSS int64    `json:"peak_rss_bytes"`
	Notes   []string `json:"notes,omitempty"`
}

func (r *Report) finish() {
	r.Notes = append(r.Notes,
		"Efficiency = bare primitive CPU per operation (bench/baseline, pinned to the server's core, measured right before the scenario) ÷ server CPU per item (utime+stime of the server process from /proc over the measured window ÷ good items). Both are CPU time, so other load on the machine disturbs them less than it disturbs requests/s; ratios measured side by side are what matter.",
		"Envelope, Decrypt, SignRaw and VerifyRaw have no batch RPC: they run unary only.",
		"Allocations per item come from bench/serverbench (go test -bench, client and server in one process, so they include the client's); 'echo' is the same call against a server that returns a canned response, the gRPC floor for these messages. The server's own share is roughly the difference.",
		"The real server binary has no pprof endpoint; profiles come from bench/serverbench (go test -bench -cpuprofile/-memprofile, in-process client included).",
		"Two-core throughput is a lower bound: the load generator shares the two cores with the server.",
	)
	if r.Env.LoadAvgStart != "" {
		r.Notes = append(r.Notes, fmt.Sprintf("Machine load average at start %s, at end %s (on %d CPUs): when it is above the CPU count, other work shared the cores and absolute rates are low and noisy.", r.Env.LoadAvgStart, r.Env.LoadAvgEnd, r.Env.NumCPU))
	}
}

// Write writes <stamp>-<name>.json and .md into dir, and latest.json/.md when latest.
func (r *Report) Write(dir string, latest bool) error {
	stamp := r.Started.Format("20060102T150405Z")
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	md := []byte(r.Markdown())
	files := map[string][]byte{
		stamp + "-" + r.Name + ".json": j,
		stamp + "-" + r.Name + ".md":   md,
	}
	if latest {
		files["latest.json"] = j
		files["latest.md"] = md
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

// scenario is the one-core result named name, or nil.
func (r *Report) scenario(name string) *ScenarioResult {
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// activity is a run's read and write system calls and context switches per call, or
// "—" when they could not be read.
func activity(res *loadgen.Result) string {
	if res.ServerActivity == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f", res.ServerReadsPerCall, res.ServerWritesPerCall, res.ServerSwitchesPerCall)
}

func fdur(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# signsvr benchmark: %s\n\n", r.Name)
	w("%s\n\n", r.Description)
	w("- started %s, finished %s (%s)\n", r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second))
	w("- %s, %d CPUs (%s), commit %s, key backend %s\n", r.Env.GoVersion, r.Env.NumCPU, r.Env.CPUModel, r.Env.Commit, r.Backend)
	w("- load average at start %s, at end %s\n", r.Env.LoadAvgStart, r.Env.LoadAvgEnd)
	w("- one core: server pinned to CPU %s, load generator to CPU %s (taskset); two cores: both on CPUs %s\n", r.ServerCPUs, r.ClientCPUs, r.BothCPUs)
	w("- server peak RSS (VmHWM) through the one-core phase: %.1f MiB (target < 128 MiB)\n\n", mib(r.PeakRSS))

	w("## Server on one core\n\n")
	w("| scenario | calls/s | items/s | server core use | server CPU µs/item | primitive µs | efficiency | target | p50 ms | p99 ms | allocs/item (echo) | RSS max MiB | notes |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|\n")
	for _, s := range r.Scenarios {
		allocs := "—"
		if s.AllocsPerItem > 0 {
			allocs = fmt.Sprintf("%.0f (%.0f)", s.AllocsPerItem, s.EchoAllocsPerItem)
		}
		if s.Load == nil {
			prim := "—"
			if s.Baseline != nil {
				prim = f1(us(s.Baseline.Full.CPU))
			}
			w("| %s | — | — | — | — | %s | — | — | — | — | %s | — | ERROR: %s |\n", s.Name, prim, allocs, cell(s.Error))
			continue
		}
		l := s.Load
		tgt := "—"
		if s.Target > 0 {
			mark := "no"
			if s.TargetMet != nil && *s.TargetMet {
				mark = "yes"
			}
			if s.Unreliable {
				mark += " (unreliable)"
			}
			tgt = fmt.Sprintf("%.2f %s", s.Target, mark)
		}
		note := ""
		if l.FailedCalls > 0 {
			note = fmt.Sprintf("%d failed calls: %s", l.FailedCalls, cell(l.FirstError))
		}
		if s.AllocsError != "" {
			note = strings.TrimSpace(note + " allocs: " + cell(tailString(s.AllocsError, 200)))
		}
		if d := s.drift(); d > baselineAgreement {
			note = strings.TrimSpace(note + " " + movedNote("primitive", s.Baseline.Full.CPU, s.BaselineAfter))
		}
		if b := s.Baseline; b != nil && s.BaselineDisagreement > baselineAgreement {
			note = strings.TrimSpace(note + fmt.Sprintf(" primitive disturbed: whole %s µs vs parts %s µs after %d measurements, efficiency unreliable",
				f1(us(b.Full.CPU)), f1(us(b.Data.CPU+b.Key.CPU)), s.BaselineTries))
		} else if s.BaselineTries > 1 {
			note = strings.TrimSpace(note + fmt.Sprintf(" primitive measured %d times (the first disturbed)", s.BaselineTries))
		}
		w("| %s | %.0f | %.0f | %.0f%% | %s | %s | %.2f | %s | %s | %s | %s | %.1f | %s |\n",
			s.Name, l.CallsPerSec, l.ItemsPerSec, 100*coreUse(l), f1(us(l.ServerCPUPerItem)), f1(us(s.Baseline.Full.CPU)),
			s.Efficiency, tgt, fdur(l.Latency.P50), fdur(l.Latency.P99), allocs, mib(l.ServerRSSMax), note)
	}
	w("\n'Server core use' is the server's CPU time over the window ÷ the window: below ~95%% with the server on its own core, other processes took part of that core (or the generator could not keep up), so calls/s understate the server; CPU per item still holds.\n")
	w("\nPrimitive parts (CPU µs per operation, on the server's core): the data part is the hash (sign, verify) or the content cipher (envelope, decrypt); the key part is the public-key operation alone.\n\n")
	w("| scenario | primitive | data part | key part |\n|---|---:|---:|---:|\n")
	for _, s := range r.Scenarios {
		if s.Baseline == nil {
			continue
		}
		w("| %s | %s | %s | %s |\n", s.Name, f1(us(s.Baseline.Full.CPU)), f1(us(s.Baseline.Data.CPU)), f1(us(s.Baseline.Key.CPU)))
	}

	if len(r.HSM) > 0 {
		w("\n## Keys in SoftHSM2 (server with a configuration file: mutual TLS, audit log, PKCS#11 session pool)\n\n" +
			"Target: through the server, at least 90 %% of what the same token does with direct C_Sign calls. Direct C_Sign: one session, SHA-256 of the content then C_SignInit + C_Sign, pinned to the server's core. " +
			"SoftHSM2 computes inside the server process, so both CPU figures include the token's work, and every µs the server path spends is taken from the token's core: the ratio is at most T ÷ (T + O), T the token's CPU per signature and O the server path's (gRPC, TLS, CMS, audit).\n\n")
		w("| scenario | sessions | items/s | server µs/item | direct C_Sign µs | efficiency | ≥ 0.90 | notes |\n|---|---:|---:|---:|---:|---:|---|---|\n")
		for _, h := range r.HSM {
			if h.Load == nil || h.Direct == nil {
				w("| %s | %d | — | — | — | — | — | ERROR: %s |\n", h.Name, h.Sessions, cell(h.Error))
				continue
			}
			ok, note := "no", ""
			if h.Efficiency >= 0.90 {
				ok = "yes"
			}
			if h.Unreliable {
				ok += " (unreliable)"
				note = movedNote("direct C_Sign", h.Direct.Full.CPU, h.DirectAfter)
			}
			w("| %s | %d | %.0f | %s | %s | %.2f | %s | %s |\n", h.Name, h.Sessions, h.Load.ItemsPerSec,
				f1(us(h.Load.ServerCPUPerItem)), f1(us(h.Direct.Full.CPU)), h.Efficiency, ok, note)
		}
	}

	if len(r.TwoCore) > 0 {
		w("\n## Server on two cores\n\nThroughput is a lower bound (the load generator shares the cores). Target: CPU per item within 10%% of one core.\n\n")
		w("| scenario | 1-core items/s | 2-core items/s (lower bound) | 1-core µs/item | 2-core µs/item | ratio | within 10%% | notes |\n|---|---:|---:|---:|---:|---:|---|---|\n")
		for _, t := range r.TwoCore {
			if t.TwoCore == nil {
				w("| %s | — | — | — | — | — | — | ERROR: %s |\n", t.Name, cell(t.Error))
				continue
			}
			ok := "no"
			if t.CPURatio <= 1.10 {
				ok = "yes"
			}
			w("| %s | %.0f | %.0f | %s | %s | %.2f | %s | |\n", t.Name, t.OneCore.ItemsPerSec, t.TwoCore.ItemsPerSec,
				f1(us(t.OneCore.ServerCPUPerItem)), f1(us(t.TwoCore.ServerCPUPerItem)), t.CPURatio, ok)
		}
	}

	if len(r.Latency) > 0 {
		w("\n## Latency at a fixed rate (our generator, open loop, latency counted from when each call was due)\n\n" +
			"Target: p99 below 5 ms at 80%% of the maximum load, for the EC algorithms. The maximum load is the highest fixed rate the server sustains on its one core " +
			"(every call answered, ≥ 97 %% of the rate achieved, ≤ 95 %% of the core used), found by bisection with fixed-rate probes (listed in the JSON). " +
			"It is lower than the closed-loop capacity (1 s ÷ closed-loop CPU per call): calls that arrive one at a time cost the server more CPU each than calls that arrive while others are in flight " +
			"(the idle server is woken for each, and nothing shares its reads and writes). The last columns are the run at 80%% of the closed-loop capacity, the earlier definition, where the core saturates and p99 measures a queue.\n\n")
		w("'Reads / writes / switches' are the server's read and write system calls and its threads' context switches per call (/proc/PID/io, /proc/PID/task/*/status), at the fixed rate and in the closed-loop run of the same scenario: they show what a call that arrives alone costs.\n\n")
		w("| scenario | closed-loop capacity calls/s | open-loop max calls/s | rate (80 %%) | achieved calls/s | server core use | server µs/call | p50 ms | p99 ms | p99.9 ms | missed | p99 < 5 ms | reads / writes / switches per call | closed loop: µs/call, reads / writes / switches | at 80 %% of capacity: rate, core use, p99 ms | notes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|\n")
		for _, l := range r.Latency {
			capCell, closedCell := "—", "—"
			if c := r.scenario(l.ClosedLoopScenario); c != nil && c.Load != nil {
				closedCell = f1(us(c.Load.ServerCPUPerItem)) + ", " + activity(c.Load)
			}
			if a := l.AtCapacity; a != nil {
				capCell = fmt.Sprintf("%.0f, %.0f%%, %s", l.AtCapacityRate, 100*coreUse(a), fdur(a.Latency.P99))
			}
			if l.Load == nil {
				w("| %s | %.0f | %.0f | %.0f | — | — | — | — | — | — | — | — | — | %s | %s | ERROR: %s |\n", l.Name, l.CapacityCallsPerSec, l.MaxCallsPerSec, l.TargetRate, closedCell, capCell, cell(l.Error))
				continue
			}
			ok := "no"
			if l.Load.Latency.P99 < 5*time.Millisecond {
				ok = "yes"
			}
			w("| %s | %.0f | %.0f | %.0f | %.0f | %.0f%% | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", l.Name, l.CapacityCallsPerSec, l.MaxCallsPerSec, l.TargetRate,
				l.Load.CallsPerSec, 100*coreUse(l.Load), f1(us(l.Load.ServerCPUPerItem)), fdur(l.Load.Latency.P50), fdur(l.Load.Latency.P99), fdur(l.Load.Latency.P999), l.Load.Missed, ok,
				activity(l.Load), closedCell, capCell, cell(l.Error))
		}
	}

	if len(r.Ghz) > 0 {
		w("\n## ghz (through server reflection)\n\nghz spends far more CPU per request than the server, so its requests/s show ghz's limit, not the server's; the server CPU per request is still the server's.\n\n")
		w("| run | call | rate | concurrency × connections | requests | OK | req/s | p50 ms | p99 ms | server CPU µs/req | notes |\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|\n")
		for _, g := range r.Ghz {
			rate := "max"
			if g.TargetRate > 0 {
				rate = fmt.Sprintf("%.0f", g.TargetRate)
			}
			note := cell(g.Error)
			if g.Config != "" {
				note = strings.TrimSpace("config scenarios/" + g.Config + " " + note)
			}
			w("| %s | %s | %s | %d × %d | %d | %d | %.0f | %s | %s | %s | %s |\n", g.Name, g.Call, rate, g.Concurrency, g.Connections,
				g.Count, g.OK, g.RPS, fdur(g.P50), fdur(g.P99), f1(us(g.ServerCPUPerReq)), note)
		}
	}

	if s := r.Soak; s != nil {
		w("\n## Memory soak\n\n")
		if s.Load == nil {
			w("%s at %.0f%% of its maximum: ERROR: %s\n", s.Name, 100*s.Fraction, s.Error)
		} else {
			verdict := "flat"
			if !s.Flat {
				verdict = "NOT FLAT"
			}
			w("%s at %.0f calls/s in all (%.0f%% of the maximum) for %s on a fresh one-core server: RSS %.1f MiB over the first minute, %.1f MiB over the last (%+.1f%%, slope %+.1f MiB/h), max %.1f MiB, VmHWM %.1f MiB; threads %d → %d, open files %d → %d; p50 %s ms, p99 %s ms (first scenario); %d calls, %d failed: %s.\n",
				s.Name, s.TargetRate, 100*s.Fraction, s.Duration, mib(s.RSSStart), mib(s.RSSEnd), 100*s.Growth, s.RSSSlopePerHour/(1<<20), mib(s.RSSMax),
				mib(s.Load.ServerHWM), s.ThreadsStart, s.ThreadsEnd, s.FilesStart, s.FilesEnd,
				fdur(s.Load.Latency.P50), fdur(s.Load.Latency.P99), s.Calls, s.Failed, verdict)
		}
	}

	if len(r.Profiles) > 0 {
		w("\n## Profiles\n\n`go tool pprof -top bench/results/<file>`; in-process client included (focus on signsvr.dev/signsvr/internal/server and pkg/).\n\n")
		for _, p := range r.Profiles {
			if p.Error != "" {
				w("- %s: ERROR %s\n", p.Scenario, cell(tailString(p.Error, 300)))
				continue
			}
			w("- %s: `%s`, `%s`\n", p.Scenario, p.CPU, p.Alloc)
		}
	}
	w("\n## Notes\n\n")
	for _, n := range r.Notes {
		w("- %s\n", n)
	}
	return b.String()
}

// Failed counts the scenarios that produced no figures.
func (r *Report) Failed() int {
	n := 0
	for _, s := range r.Scenarios {
		if s.Load == nil {
			n++
		}
	}
	return n
}

// Render rewrites the markdown beside a JSON report (same name, .md), e.g. after the
// report layout changed.
func Render(jsonPath string) error {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", jsonPath, err)
	}
	md := strings.TrimSuffix(jsonPath, filepath.Ext(jsonPath)) + ".md"
	return os.WriteFile(md, []byte(r.Markdown()), 0o644)
}
