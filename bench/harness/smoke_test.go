package harness

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole pipeline for a few seconds: it builds and starts the real
// server pinned with taskset, runs the baseline, our generator, ghz (installing it if
// missing; failing if that is impossible), the two-core phase, a fixed-rate run and the
// Go benchmarks with a profile, and checks that the report has its shape and that
// every scenario ran with no error. The numbers themselves are far too short to mean
// anything, and CPU time comes from /proc in scheduler ticks: a short run on cores
// that other processes hold can be charged no tick at all. So a CPU figure is checked
// only when it was measured (non-zero), and then only for its unit; nothing here
// fails because the machine is busy.
func TestSmoke(t *testing.T) {
	repo, err := FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var log strings.Builder
	rep, err := Run(ctx, Options{
		Repo: repo, SuitePath: filepath.Join(repo, "bench", "scenarios", "smoke.json"),
		Name: "smoke", OutDir: out, Latest: true, WorkDir: t.TempDir(), Log: &log,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}

	if len(rep.Scenarios) != 4 {
		t.Fatalf("%d scenarios, want 4", len(rep.Scenarios))
	}
	pipelined := false
	for _, s := range rep.Scenarios {
		if s.Load == nil || s.Baseline == nil {
			t.Errorf("%s: no figures: %s", s.Name, s.Error)
			continue
		}
		l := s.Load
		if l.Method == "/signsvr.v1.PipelineService/Pipeline" {
			pipelined = true
		}
		if l.Calls <= 0 || l.ItemsPerSec <= 0 || l.FailedCalls != 0 {
			t.Errorf("%s: calls %d, items/s %.0f, failed %d (%s)", s.Name, l.Calls, l.ItemsPerSec, l.FailedCalls, l.FirstError)
		}
		if l.ServerCPUPerItem < 0 || l.ServerCPUPerItem > time.Second {
			t.Errorf("%s: server CPU per item %v", s.Name, l.ServerCPUPerItem)
		}
		if l.Latency.P50 <= 0 || l.Latency.P99 < l.Latency.P50 || l.Latency.Max < l.Latency.P99 {
			t.Errorf("%s: latency %+v", s.Name, l.Latency)
		}
		if l.ServerRSSMax < 1<<20 || l.ServerRSSMax > 4<<30 {
			t.Errorf("%s: server RSS %d", s.Name, l.ServerRSSMax)
		}
		// The server reads each request and writes each response (writes of calls that
		// finish together may be shared, so below 1 per call is possible, not 0).
		if l.ServerReadsPerCall <= 0 || l.ServerWritesPerCall <= 0 || l.ServerReadsPerCall > 50 || l.ServerWritesPerCall > 50 {
			t.Errorf("%s: server system calls per call: reads %.2f, writes %.2f", s.Name, l.ServerReadsPerCall, l.ServerWritesPerCall)
		}
		if s.BaselineAfter <= 0 {
			t.Errorf("%s: no primitive measured after the load run", s.Name)
		}
		if s.Baseline.Full.CPU <= 0 || s.Baseline.Key.CPU <= 0 || s.Baseline.Data.CPU <= 0 {
			t.Errorf("%s: baseline %+v", s.Name, s.Baseline)
		}
		// The efficiency exists when the server's CPU was measured; a few ticks over
		// many items make it noisy, so only its presence is checked.
		if (l.ServerCPUPerItem > 0) != (s.Efficiency > 0) {
			t.Errorf("%s: efficiency %.3f with server CPU per item %v", s.Name, s.Efficiency, l.ServerCPUPerItem)
		}
		// bench/serverbench has no pipelined benchmark.
		if s.Scenario.Pipeline == 0 && (s.AllocsPerItem <= 0 || s.EchoAllocsPerItem <= 0) {
			t.Errorf("%s: allocations %.1f (echo %.1f): %s", s.Name, s.AllocsPerItem, s.EchoAllocsPerItem, s.AllocsError)
		}
	}
	if !pipelined {
		t.Error("no scenario ran on PipelineService")
	}
	if len(rep.TwoCore) != 1 || rep.TwoCore[0].TwoCore == nil || rep.TwoCore[0].TwoCore.Calls <= 0 ||
		rep.TwoCore[0].TwoCore.FailedCalls != 0 || rep.TwoCore[0].CPURatio < 0 {
		t.Errorf("two-core phase: %+v", rep.TwoCore)
	}
	// The search for the open-loop maximum ran its probes, each with calls answered;
	// whether a rate was sustained depends on what else the machine runs (make test
	// runs other packages beside this one), so a found maximum must have its run.
	if len(rep.Latency) != 1 {
		t.Fatalf("%d latency results, want 1", len(rep.Latency))
	}
	l := rep.Latency[0]
	if len(l.Probes) < 2 || (l.CapacityCallsPerSec > 0) != (l.AtCapacity != nil) {
		t.Errorf("latency search: %+v", l)
	}
	// Each probe must have run at a rate; a probe may answer no call in its half
	// second when the machine is loaded by other tests (that is a measurement, not a
	// fault), but one that never answers anything means the open-loop path is broken.
	answered := false
	for _, p := range l.Probes {
		if p.Rate <= 0 {
			t.Errorf("latency probe: %+v", p)
		}
		if p.Achieved > 0 && p.Error == "" {
			answered = true
		}
	}
	if !answered {
		t.Errorf("no latency probe answered a call: %+v", l.Probes)
	}
	if l.MaxCallsPerSec > 0 && (l.Load == nil || l.TargetRate != l.Fraction*l.MaxCallsPerSec) {
		t.Errorf("latency run at %.0f of a maximum of %.0f: %+v", l.TargetRate, l.MaxCallsPerSec, l.Load)
	}
	if len(rep.HSM) != 1 {
		t.Fatalf("%d HSM results, want 1", len(rep.HSM))
	}
	if h := rep.HSM[0]; h.Error != "" || h.Load == nil || h.Load.Calls == 0 || h.Load.FailedCalls != 0 ||
		h.Direct == nil || h.Direct.Full.CPU <= 0 || h.Efficiency < 0 || h.DirectAfter <= 0 {
		t.Errorf("HSM scenario: %+v", h)
	}
	if len(rep.Ghz) != 2 {
		t.Fatalf("%d ghz runs, want 2", len(rep.Ghz))
	}
	for _, g := range rep.Ghz {
		if g.Error != "" || g.OK <= 0 || g.RPS <= 0 || g.ServerCPUPerReq < 0 {
			t.Errorf("ghz %s: %+v", g.Name, g)
		}
	}
	if rep.PeakRSS <= 0 {
		t.Error("no peak RSS")
	}
	if len(rep.Profiles) != 1 || rep.Profiles[0].Error != "" {
		t.Fatalf("profiles: %+v", rep.Profiles)
	}
	for _, p := range []string{rep.Profiles[0].CPU, rep.Profiles[0].Alloc} {
		if st, err := os.Stat(filepath.Join(out, p)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", p, err)
		}
	}

	md, err := os.ReadFile(filepath.Join(out, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| scenario | calls/s |", "Sign/sm2/1KiB/unary", "Verify/ecdsa/1KiB/batch64",
		"Decrypt/sm2/1KiB/unary", "Sign/ecdsa/1KiB/pipe16", "## Server on two cores", "## ghz", "## Latency", "## Keys in SoftHSM2", "Sign/ecdsa/1KiB/unary/keys=hsm-ecdsa-sign"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("latest.md lacks %q", want)
		}
	}
	// An open-loop search that found no sustained rate is the machine's business, not
	// an error of the pipeline; any other error is.
	for _, line := range strings.Split(string(md), "\n") {
		if strings.Contains(line, "ERROR") && !strings.Contains(line, "no probe rate was sustained") {
			t.Errorf("latest.md reports an error: %s", line)
		}
	}
	var back Report
	b, err := os.ReadFile(filepath.Join(out, "latest.json"))
	if err == nil {
		err = json.Unmarshal(b, &back)
	}
	if err != nil || len(back.Scenarios) != 4 {
		t.Errorf("latest.json: %v, %d scenarios", err, len(back.Scenarios))
	}
	// The JSON holds everything the table shows: rendering it again gives the same file.
	if err := Render(filepath.Join(out, "latest.json")); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(out, "latest.md")); string(again) != string(md) {
		t.Error("markdown rendered from latest.json differs from the run's")
	}
	stamped, _ := filepath.Glob(filepath.Join(out, "*-smoke.md"))
	if len(stamped) != 1 {
		t.Errorf("time-stamped report files: %v", stamped)
	}
}
