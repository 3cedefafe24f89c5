package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"signsvr.dev/signsvr/bench/loadgen"
)

// Duration is a time.Duration written as "5s" in JSON.
type Duration time.Duration

// UnmarshalJSON reads "5s", "250ms", "5m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Load shapes the generator for a kind of scenario.
type Load struct {
	Conns   int `json:"conns"`
	Streams int `json:"streams"`
}

// Matrix expands to every combination that has an RPC (a batch mode applies only to
// operations with a batch RPC: Sign and Verify).
type Matrix struct {
	Ops   []string `json:"ops"`
	Algs  []string `json:"algs"`
	Sizes []int    `json:"sizes"`
	// Batches are the batch sizes besides unary (e.g. [64]).
	Batches []int `json:"batches"`
}

// GhzRun is one ghz run: either a checked-in ghz config file (users rerun it by hand),
// or a scenario whose call data the harness prepares from the server (Verify,
// Decrypt), or both (the config file gives the settings, the scenario the data).
type GhzRun struct {
	Scenario string `json:"scenario,omitempty"`
	Config   string `json:"config,omitempty"`
	// RateFraction, when set, runs ghz at --rps = fraction × the maximum our generator
	// measured for the scenario (latency at a fixed rate), else closed loop.
	RateFraction float64  `json:"rate_fraction,omitempty"`
	Concurrency  int      `json:"concurrency,omitempty"`
	Connections  int      `json:"connections,omitempty"`
	Duration     Duration `json:"duration,omitempty"`
}

// Soak is a long run at a fraction of the maximum load on a fresh server that watches
// its memory, threads and open files (report.go, SoakResult). Scenario is one
// scenario; Scenarios a mix, run at once, the load fraction split evenly between them
// (each at LoadFraction/N of its own maximum), so that the server's core carries about
// LoadFraction of what it can do in all. Options.SoakDuration overrides Duration.
type Soak struct {
	Scenario     string   `json:"scenario,omitempty"`
	Scenarios    []string `json:"scenarios,omitempty"`
	Duration     Duration `json:"duration"`
	LoadFraction float64  `json:"load_fraction"`
}

// names are the soak's scenarios.
func (s *Soak) names() []string {
	if len(s.Scenarios) > 0 {
		return s.Scenarios
	}
	if s.Scenario == "" {
		return nil
	}
	return []string{s.Scenario}
}

// Suite is a scenario file (bench/scenarios/*.json).
type Suite struct {
	Description string `json:"description"`
	// Backend is the key backend of the main phases: "soft", the development
	// default's keys. Keys in an HSM have their own phase (HSM).
	Backend string `json:"backend"`
	// SignKey and EncKey override the key names for every scenario ("<alg>" is replaced
	// by the family), e.g. "hsm-<alg>-sign".
	SignKey string `json:"sign_key,omitempty"`
	EncKey  string `json:"enc_key,omitempty"`

	Matrix    *Matrix  `json:"matrix,omitempty"`
	Scenarios []string `json:"scenarios,omitempty"`

	Warmup   Duration `json:"warmup"`
	Duration Duration `json:"duration"`
	// MaxCalls ends a window early (keeps slow scenarios such as RSA batches short).
	MaxCalls  int64 `json:"max_calls,omitempty"`
	UnaryLoad Load  `json:"unary_load"`
	BatchLoad Load  `json:"batch_load"`
	// PipelineLoad shapes pipelined scenarios (".../pipeN": streams per connection,
	// each with N items in flight); unset, it is UnaryLoad.
	PipelineLoad *Load `json:"pipeline_load,omitempty"`
	// BaselineDuration is spent on each bare primitive, on the server's core, right
	// before the scenario's load.
	BaselineDuration Duration `json:"baseline_duration"`

	// TwoCore scenarios run again with the server (and the generator) on both cores.
	TwoCore []string `json:"two_core,omitempty"`
	// Latency scenarios run at LatencyFraction of their maximum load (open loop). The
	// maximum is the highest fixed rate the server sustains on its core, found with
	// LatencyProbes fixed-rate runs of LatencyProbeDuration each (defaults 6 and 2s);
	// each scenario also runs at LatencyFraction of its closed-loop capacity, for
	// comparison (run.go, latencyRuns).
	Latency              []string `json:"latency,omitempty"`
	LatencyFraction      float64  `json:"latency_fraction,omitempty"`
	LatencyDuration      Duration `json:"latency_duration,omitempty"`
	LatencyProbes        int      `json:"latency_probes,omitempty"`
	LatencyProbeDuration Duration `json:"latency_probe_duration,omitempty"`

	Ghz []GhzRun `json:"ghz,omitempty"`

	// AllocsBenchtime, when set, runs bench/serverbench for every scenario with
	// -benchtime (e.g. "50x") to count allocations per operation.
	AllocsBenchtime string `json:"allocs_benchtime,omitempty"`
	// Profiles are scenarios whose CPU and allocation profiles are kept (pprof, from
	// bench/serverbench), each run for ProfileBenchtime.
	Profiles         []string `json:"profiles,omitempty"`
	ProfileBenchtime string   `json:"profile_benchtime,omitempty"`

	Soak *Soak `json:"soak,omitempty"`

	// HSM scenarios run against keys in a SoftHSM2 token (hsm.go).
	HSM *HSMSuite `json:"hsm,omitempty"`
}

// LoadSuite reads a scenario file.
func LoadSuite(path string) (*Suite, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Suite
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

func (s *Suite) check() error {
	switch s.Backend {
	case "", "soft":
	case "pkcs11":
		return errors.New(`backend "pkcs11": keys in an HSM have their own phase, the "hsm" section`)
	default:
		return fmt.Errorf("backend %q: want soft", s.Backend)
	}
	if s.HSM != nil {
		if err := s.HSM.check(); err != nil {
			return err
		}
	}
	if s.Duration <= 0 {
		return fmt.Errorf("duration must be positive")
	}
	for _, l := range []Load{s.UnaryLoad, s.BatchLoad} {
		if l.Conns < 1 || l.Streams < 1 {
			return fmt.Errorf("unary_load and batch_load need conns and streams of at least 1")
		}
	}
	if l := s.PipelineLoad; l != nil && (l.Conns < 1 || l.Streams < 1) {
		return fmt.Errorf("pipeline_load needs conns and streams of at least 1")
	}
	all := map[string]bool{}
	sc, err := s.Expand()
	if err != nil {
		return err
	}
	if len(sc) == 0 {
		return fmt.Errorf("no scenarios")
	}
	for _, x := range sc {
		all[x.Name()] = true
	}
	lists := map[string][]string{"two_core": s.TwoCore, "latency": s.Latency, "profiles": s.Profiles}
	for _, g := range s.Ghz {
		if g.Scenario == "" && g.Config == "" {
			return fmt.Errorf("a ghz run needs a scenario or a config")
		}
		if g.Scenario != "" {
			lists["ghz"] = append(lists["ghz"], g.Scenario)
		}
	}
	if s.Soak != nil {
		lists["soak"] = s.Soak.names()
		if s.Soak.LoadFraction <= 0 || s.Soak.LoadFraction > 1 || s.Soak.Duration <= 0 || len(s.Soak.names()) == 0 {
			return fmt.Errorf("soak needs a scenario (or scenarios), a duration and a load_fraction in (0, 1]")
		}
		if s.Soak.Scenario != "" && len(s.Soak.Scenarios) > 0 {
			return fmt.Errorf("soak: give scenario or scenarios, not both")
		}
	}
	for what, names := range lists {
		for _, n := range names {
			if _, err := loadgen.ParseName(n); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	if s.LatencyProbes < 0 {
		return fmt.Errorf("latency_probes %d: want 0 (default 6) or more", s.LatencyProbes)
	}
	if len(s.Latency) > 0 && (s.LatencyFraction <= 0 || s.LatencyFraction > 1) {
		return fmt.Errorf("latency_fraction must be in (0, 1]")
	}
	return nil
}

// Expand lists the suite's scenarios: the matrix, then the named ones, without
// duplicates, with the suite's key names applied.
func (s *Suite) Expand() ([]loadgen.Scenario, error) {
	var out []loadgen.Scenario
	seen := map[string]bool{}
	add := func(sc loadgen.Scenario) {
		if !seen[sc.Name()] {
			seen[sc.Name()] = true
			out = append(out, sc)
		}
	}
	if m := s.Matrix; m != nil {
		for _, op := range m.Ops {
			for _, alg := range m.Algs {
				for _, size := range m.Sizes {
					for _, batch := range append([]int{0}, m.Batches...) {
						sc := loadgen.Scenario{Op: op, Alg: alg, Size: size, Batch: batch}
						if err := sc.Validate(); err != nil {
							if batch > 0 && (op != loadgen.OpSign && op != loadgen.OpVerify) {
								continue // no batch RPC: unary only (see bench/README.md)
							}
							return nil, err
						}
						add(sc)
					}
				}
			}
		}
	}
	for _, n := range s.Scenarios {
		sc, err := loadgen.ParseName(n)
		if err != nil {
			return nil, err
		}
		add(sc)
	}
	return out, nil
}

// keyNames is the key name overrides for a family ("" when none).
func (s *Suite) keyNames(alg string) (sign, enc string) {
	r := func(v string) string {
		if v == "" {
			return ""
		}
		return strings.ReplaceAll(v, "<alg>", alg)
	}
	return r(s.SignKey), r(s.EncKey)
}
