package loadgen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signsvr.dev/signsvr/bench/loadgen"
	"signsvr.dev/signsvr/bench/serverbench"
)

// TestRunEveryOperation drives every operation briefly against the real server in
// process (closed loop, and one at a fixed rate), and checks the tallies.
func TestRunEveryOperation(t *testing.T) {
	dir := t.TempDir()
	srv, err := serverbench.StartDev(filepath.Join(dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns, err := loadgen.Dial(ctx, srv.Addr, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	cases := []struct {
		sc   loadgen.Scenario
		rate float64
	}{
		{sc: loadgen.Scenario{Op: loadgen.OpSign, Alg: "ecdsa", Size: 1024}},
		{sc: loadgen.Scenario{Op: loadgen.OpSign, Alg: "sm2", Size: 100, Batch: 4}},
		{sc: loadgen.Scenario{Op: loadgen.OpVerify, Alg: "sm2", Size: 1024}},
		{sc: loadgen.Scenario{Op: loadgen.OpVerify, Alg: "ecdsa", Size: 1024, Batch: 3}},
		{sc: loadgen.Scenario{Op: loadgen.OpSignRaw, Alg: "sm2", Size: 1024}},
		{sc: loadgen.Scenario{Op: loadgen.OpVerifyRaw, Alg: "ecdsa", Size: 1024}},
		{sc: loadgen.Scenario{Op: loadgen.OpEnvelope, Alg: "sm2", Size: 1024}},
		{sc: loadgen.Scenario{Op: loadgen.OpDecrypt, Alg: "ecdsa", Size: 1024}},
		{sc: loadgen.Scenario{Op: loadgen.OpSign, Alg: "sm2", Size: 1024}, rate: 200},
	}
	for _, tc := range cases {
		t.Run(tc.sc.Name(), func(t *testing.T) {
			p, err := loadgen.Prepare(ctx, conns[0], tc.sc)
			if err != nil {
				t.Fatal(err)
			}
			r, err := loadgen.Run(ctx, conns, p, loadgen.Config{
				Conns: 2, Streams: 2, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
				Rate: tc.rate, ServerPID: os.Getpid(), MaxCalls: 2000,
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Calls == 0 || r.FailedCalls != 0 || r.Items != r.Calls*int64(tc.sc.Items()) {
				t.Fatalf("calls %d items %d failed %d: %v %s", r.Calls, r.Items, r.FailedCalls, r.Codes, r.FirstError)
			}
			if r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 || r.ServerRSSMax <= 0 {
				t.Errorf("latency %+v rss %d", r.Latency, r.ServerRSSMax)
			}
			// Client and server share this process: every call reads and writes a socket.
			if r.ServerActivity == nil || r.ServerReadsPerCall <= 0 || r.ServerWritesPerCall <= 0 || r.ServerSwitchesPerCall < 0 {
				t.Errorf("server activity %+v: reads %.2f writes %.2f switches %.2f per call",
					r.ServerActivity, r.ServerReadsPerCall, r.ServerWritesPerCall, r.ServerSwitchesPerCall)
			}
			if tc.rate > 0 && (r.CallsPerSec > 2*tc.rate || r.CallsPerSec < tc.rate/3) {
				t.Errorf("rate %.0f/s, asked %.0f/s", r.CallsPerSec, tc.rate)
			}
		})
	}
}

func TestPrepareFailsClearly(t *testing.T) {
	srv, err := serverbench.StartDev(filepath.Join(t.TempDir(), "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conns, err := loadgen.Dial(ctx, srv.Addr, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conns[0].Close()
	_, err = loadgen.Prepare(ctx, conns[0], loadgen.Scenario{Op: loadgen.OpSign, Alg: "sm2", Size: 10, SignKey: "no-such-key"})
	if err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("unknown key: %v", err)
	}
	_, err = loadgen.Prepare(ctx, conns[0], loadgen.Scenario{Op: loadgen.OpDecrypt, Alg: "sm2", Size: 10, Batch: 2})
	if err == nil || !strings.Contains(err.Error(), "no batch RPC") {
		t.Errorf("decrypt batch: %v", err)
	}
	if _, err := loadgen.Dial(ctx, "10.1.2.3:50051", 1, nil); err == nil {
		t.Error("non-loopback address dialled")
	}
}
