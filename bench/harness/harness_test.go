package harness

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signsvr.dev/signsvr/bench/baseline"
	"signsvr.dev/signsvr/bench/loadgen"
	"signsvr.dev/signsvr/bench/procstat"
)

func TestSuitesLoad(t *testing.T) {
	repo, err := FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	full, err := LoadSuite(filepath.Join(repo, "bench", "scenarios", "full.json"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := full.Expand()
	if err != nil {
		t.Fatal(err)
	}
	// 6 ops x 3 algs x 2 sizes unary, plus Sign and Verify x 3 x 2 in batches, plus 6
	// pipelined scenarios.
	if want := 6*3*2 + 2*3*2 + 6; len(sc) != want {
		t.Errorf("full suite: %d scenarios, want %d", len(sc), want)
	}
	for _, s := range sc {
		if s.Batch > 0 && s.Op != loadgen.OpSign && s.Op != loadgen.OpVerify {
			t.Errorf("%s: batch of an operation without a batch RPC", s.Name())
		}
		if s.Pipeline > 0 && full.PipelineLoad == nil {
			t.Errorf("%s: the full suite has no pipeline_load", s.Name())
		}
	}
	if full.Soak == nil || full.Soak.Duration.D() != 5*time.Minute {
		t.Errorf("full suite soak: %+v", full.Soak)
	}
	smoke, err := LoadSuite(filepath.Join(repo, "bench", "scenarios", "smoke.json"))
	if err != nil {
		t.Fatal(err)
	}
	if smoke.Soak != nil {
		t.Error("the smoke suite must not soak (make bench only)")
	}
	soak, err := LoadSuite(filepath.Join(repo, "bench", "scenarios", "soak.json"))
	if err != nil {
		t.Fatal(err)
	}
	if soak.Soak == nil || len(soak.Soak.names()) < 2 || soak.Soak.Duration.D() != 30*time.Minute || soak.Soak.LoadFraction != 0.8 {
		t.Errorf("soak suite: %+v", soak.Soak)
	}
}

func TestSuiteRejects(t *testing.T) {
	base := func() *Suite {
		return &Suite{Duration: Duration(time.Second), UnaryLoad: Load{1, 1}, BatchLoad: Load{1, 1},
			Scenarios: []string{"Sign/sm2/1KiB/unary"}}
	}
	if err := base().check(); err != nil {
		t.Fatalf("good suite: %v", err)
	}
	bad := map[string]func(*Suite){
		"backend":       func(s *Suite) { s.Backend = "tpm" },
		"no duration":   func(s *Suite) { s.Duration = 0 },
		"no streams":    func(s *Suite) { s.UnaryLoad.Streams = 0 },
		"bad scenario":  func(s *Suite) { s.Scenarios = []string{"Sign/sm2/1KiB/batch"} },
		"no scenarios":  func(s *Suite) { s.Scenarios = nil },
		"bad two-core":  func(s *Suite) { s.TwoCore = []string{"x"} },
		"bad fraction":  func(s *Suite) { s.Latency = []string{"Sign/sm2/1KiB/unary"}; s.LatencyFraction = 2 },
		"empty ghz run": func(s *Suite) { s.Ghz = []GhzRun{{}} },
		"bad soak":      func(s *Suite) { s.Soak = &Soak{Scenario: "Sign/sm2/1KiB/unary", Duration: Duration(time.Minute)} },
	}
	for name, f := range bad {
		s := base()
		f(s)
		if err := s.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s := base()
	s.SignKey = "hsm-<alg>-sign"
	if sk, ek := s.keyNames("ecdsa"); sk != "hsm-ecdsa-sign" || ek != "" {
		t.Errorf("key names %q %q", sk, ek)
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		name string
		want float64
	}{
		{"Sign/sm2/1KiB/unary", 0.50},
		{"Sign/ecdsa/1KiB/unary", 0.50},
		{"Verify/sm2/1KiB/unary", 0.55},
		{"Verify/ecdsa/1KiB/batch64", 0.85},
		{"Sign/sm2/1KiB/batch64", 0.85},
		{"Sign/rsa/1KiB/unary", 0.90},
		{"Sign/rsa/1KiB/batch64", 0.90},
		{"Sign/sm2/64KiB/unary", 0.80},
		{"Verify/rsa/64KiB/batch64", 0.80},
		{"Verify/rsa/1KiB/unary", 0},
		{"Envelope/sm2/1KiB/unary", 0},
		{"SignRaw/sm2/1KiB/unary", 0},
	}
	for _, tt := range tests {
		sc, err := loadgen.ParseName(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := target(sc); got != tt.want {
			t.Errorf("%s: target %.2f, want %.2f", tt.name, got, tt.want)
		}
	}
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
BenchmarkServer/Sign/sm2/1KiB/unary-2         	      30	    150123 ns/op	         1.000 items/op	   20480 B/op	     232 allocs/op
BenchmarkEcho/Verify/ecdsa/64KiB/batch64-2    	       5	  12345678 ns/op	        64.00 items/op	 9999999 B/op	   10304 allocs/op
BenchmarkOther 10 5 ns/op
PASS`
	got := parseBench(out)
	if len(got) != 3 {
		t.Fatalf("%d lines: %+v", len(got), got)
	}
	if got[0].Top != "BenchmarkServer" || got[0].Sub != "Sign/sm2/1KiB/unary" || got[0].AllocsPerOp != 232 || got[0].NsPerOp != 150123 {
		t.Errorf("line 0: %+v", got[0])
	}
	if got[1].Top != "BenchmarkEcho" || got[1].Sub != "Verify/ecdsa/64KiB/batch64" || got[1].AllocsPerOp != 10304 {
		t.Errorf("line 1: %+v", got[1])
	}
	sc, _ := loadgen.ParseName("Sign/sm2/1KiB/unary")
	if re := benchRegex("BenchmarkServer", sc); re != "^BenchmarkServer$/^Sign$/^sm2$/^1KiB$/^unary$" {
		t.Errorf("regex %s", re)
	}
}

func TestGhzParse(t *testing.T) {
	var g GhzResult
	err := g.parse([]byte(`{"count": 100, "rps": 50.5, "average": 2000000,
		"statusCodeDistribution": {"OK": 98, "Unavailable": 2},
		"latencyDistribution": [{"percentage": 50, "latency": 1500000}, {"percentage": 99, "latency": 9000000}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.Count != 100 || g.OK != 98 || g.P50 != 1500*time.Microsecond || g.P99 != 9*time.Millisecond || g.RPS != 50.5 {
		t.Errorf("%+v", g)
	}
	if err := g.parse([]byte("Summary: ...")); err == nil {
		t.Error("text accepted as JSON")
	}
}

func TestSoakGrowth(t *testing.T) {
	s := &SoakResult{Duration: 3 * time.Minute, Load: &loadgen.Result{}}
	for at := time.Duration(0); at <= soakWarmup+s.Duration; at += time.Second {
		rss := int64(40 << 20)
		if at >= soakWarmup+2*time.Minute {
			rss = 44 << 20
		}
		if at < soakWarmup {
			rss = 100 << 20 // warm-up samples are ignored
		}
		s.Load.MemSamples = append(s.Load.MemSamples, procstat.MemSample{At: at, RSS: rss})
	}
	s.compute()
	if s.RSSStart != 40<<20 || s.RSSEnd != 44<<20 || s.Growth < 0.099 || s.Growth > 0.101 {
		t.Errorf("start %d end %d growth %.3f", s.RSSStart, s.RSSEnd, s.Growth)
	}
}

func TestBaselineDisagreement(t *testing.T) {
	cost := func(us float64) baseline.Cost { return baseline.Cost{CPU: time.Duration(us * 1000)} }
	tests := []struct {
		name            string
		full, data, key float64
		want            float64
		withinAgreement bool
	}{
		{"sm2 sign, whole a little above its parts", 26.9, 3.0, 22.6, 0.0483, true},
		{"ecdsa batch, whole disturbed", 42.8, 0.7, 30.5, 0.271, false},
		{"rsa 64 KiB, key part disturbed", 1043.2, 37.2, 1362.2, 0.341, false},
		{"exact", 100, 40, 60, 0, true},
		{"no whole", 0, 1, 1, math.Inf(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &baseline.Result{Full: cost(tt.full), Data: cost(tt.data), Key: cost(tt.key)}
			got := disagreement(b)
			if math.Abs(got-tt.want) > 0.001 && !(math.IsInf(got, 1) && math.IsInf(tt.want, 1)) {
				t.Errorf("disagreement = %.4f, want %.4f", got, tt.want)
			}
			if (got <= baselineAgreement) != tt.withinAgreement {
				t.Errorf("disagreement %.3f: within %.2f = %v, want %v", got, baselineAgreement, got <= baselineAgreement, tt.withinAgreement)
			}
		})
	}
}

func TestUnreliableEfficiency(t *testing.T) {
	sc := loadgen.Scenario{Op: loadgen.OpSign, Alg: "sm2", Size: 1024}
	tests := []struct {
		name          string
		before, after time.Duration
		off           float64
		want          bool
	}{
		{"steady", 26900, 27500, 0.05, false},
		{"no second measurement", 26900, 0, 0.05, false},
		{"machine slowed before the load (the first full run of 2026-11-27 16:24)", 36900, 27000, 0.05, true},
		{"machine slowed after", 26900, 33000, 0.05, true},
		{"parts disagree", 26900, 26900, 0.2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &ScenarioResult{Scenario: sc, Baseline: &baseline.Result{Full: baseline.Cost{CPU: tt.before}},
				BaselineAfter: tt.after, BaselineDisagreement: tt.off, Load: &loadgen.Result{ServerCPUPerItem: 60000}}
			s.compute()
			if s.Unreliable != tt.want {
				t.Errorf("unreliable = %v, want %v (drift %.2f)", s.Unreliable, tt.want, s.drift())
			}
			if s.TargetMet == nil {
				t.Fatal("no target verdict")
			}
			if tt.want && !strings.Contains(s.failNote(), "unreliable") {
				t.Errorf("log note %q does not say unreliable", s.failNote())
			}
		})
	}
}

func TestDrift(t *testing.T) {
	tests := []struct {
		before, after time.Duration
		want          float64
	}{
		{598 * time.Microsecond, 883 * time.Microsecond, 0.4766}, // direct C_Sign, 16:06 vs 16:41
		{1000, 1000, 0},
		{1000, 850, 0.15},
		{0, 1000, 0},
		{1000, 0, 0},
	}
	for _, tt := range tests {
		if got := drift(tt.before, tt.after); math.Abs(got-tt.want) > 0.0001 {
			t.Errorf("drift(%v, %v) = %.4f, want %.4f", tt.before, tt.after, got, tt.want)
		}
	}
}

// TestSoakVerdict: the soak is flat only with no failed call, RSS that neither
// grew between its end segments nor climbed steadily, and threads and open files
// that stayed put.
func TestSoakVerdict(t *testing.T) {
	const mb = 1 << 20
	run := func(rss func(at time.Duration) int64, threads, files func(at time.Duration) int, failed int64) *SoakResult {
		s := &SoakResult{Duration: 30 * time.Minute, Load: &loadgen.Result{Calls: 1000, FailedCalls: failed}}
		s.Loads = []*loadgen.Result{s.Load}
		for at := time.Duration(0); at <= soakWarmup+s.Duration; at += 5 * time.Second {
			s.Load.MemSamples = append(s.Load.MemSamples, procstat.MemSample{At: at, RSS: rss(at)})
			s.Proc = append(s.Proc, ProcSample{At: at, Threads: threads(at), Files: files(at)})
		}
		s.compute()
		return s
	}
	steady := func(time.Duration) int64 { return 60 * mb }
	same := func(time.Duration) int { return 12 }
	for _, tc := range []struct {
		name    string
		rss     func(time.Duration) int64
		threads func(time.Duration) int
		files   func(time.Duration) int
		failed  int64
		flat    bool
	}{
		{"steady", steady, same, same, 0, true},
		{"noise", func(at time.Duration) int64 { return 60*mb + int64(at/time.Second%7)*mb }, same, same, 0, true},
		{"a failed call", steady, same, same, 1, false},
		{"leak", func(at time.Duration) int64 { return 60*mb + int64(at.Minutes()*mb/2) }, same, same, 0, false},
		{"thread leak", steady, func(at time.Duration) int { return 12 + int(at.Minutes()) }, same, 0, false},
		{"connection leak", steady, same, func(at time.Duration) int { return 12 + int(at.Minutes()) }, 0, false},
	} {
		s := run(tc.rss, tc.threads, tc.files, tc.failed)
		if s.Flat != tc.flat {
			t.Errorf("%s: flat %v, want %v (RSS %d -> %d, slope %.0f MiB/h, threads %d -> %d, files %d -> %d)", tc.name, s.Flat, tc.flat,
				s.RSSStart/mb, s.RSSEnd/mb, s.RSSSlopePerHour/mb, s.ThreadsStart, s.ThreadsEnd, s.FilesStart, s.FilesEnd)
		}
	}
}
