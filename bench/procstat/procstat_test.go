package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    CPU
		wantErr bool
	}{
		{
			name: "plain",
			line: "1234 (signsvr) S 1 1234 1234 0 -1 4194560 3000 0 0 0 250 75 0 0 20 0 8 0 100 0 0",
			want: CPU{User: 2500 * time.Millisecond, System: 750 * time.Millisecond},
		},
		{
			name: "name with spaces and parentheses",
			line: "99 (a) b (c)) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0",
			want: CPU{User: 70 * time.Millisecond, System: 30 * time.Millisecond},
		},
		{name: "no name", line: "1 S 1 2 3", wantErr: true},
		{name: "short", line: "1 (x) S 1 2 3", wantErr: true},
		{name: "not a number", line: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 3 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	good := "Name:\tsignsvr\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t8\n"
	m, err := parseStatus([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.HWM != 40<<20 || m.RSS != 20<<20 {
		t.Errorf("got %+v", m)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t1 MB\nVmHWM:\t1 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseIO(t *testing.T) {
	good := "rchar: 8250\nwchar: 1201\nsyscr: 17\nsyscw: 9\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n"
	a, err := parseIO([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if a != (Activity{Reads: 17, Writes: 9}) {
		t.Errorf("got %+v", a)
	}
	for _, bad := range []string{"rchar: 1\n", "syscr: 1\n", "syscr: 1\nsyscr: 2\n", "syscr: x\nsyscw: 1\n", "syscr: -1\nsyscw: 1\n"} {
		if _, err := parseIO([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseSwitches(t *testing.T) {
	good := "Name:\tsignsvr\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n"
	n, err := parseSwitches([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if n != 127 {
		t.Errorf("got %d, want 127", n)
	}
	for _, bad := range []string{"Name:\tx\n", "voluntary_ctxt_switches:\t1\n", "voluntary_ctxt_switches:\t1\nvoluntary_ctxt_switches:\t2\n", "voluntary_ctxt_switches:\tx\nnonvoluntary_ctxt_switches:\t1\n",
		"voluntary_ctxt_switches:\t9223372036854775807\nnonvoluntary_ctxt_switches:\t1\n"} {
		if _, err := parseSwitches([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestSelfActivity counts this process's own write calls and context switches.
func TestSelfActivity(t *testing.T) {
	pid := os.Getpid()
	a0, err := ReadActivity(pid)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(t.TempDir() + "/w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 10 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // the thread sleeps: a voluntary switch
	}
	a1, err := ReadActivity(pid)
	if err != nil {
		t.Fatal(err)
	}
	d := a1.Sub(a0)
	if d.Writes < 10 {
		t.Errorf("%d write calls counted, want at least 10", d.Writes)
	}
	if d.Switches < 1 {
		t.Errorf("%d context switches counted, want some", d.Switches)
	}
	if d.Reads < 1 {
		t.Errorf("%d read calls counted, want at least the first sample's own reads", d.Reads)
	}
}

// TestSelf reads this process, which has certainly used some CPU and memory.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	c0, err := ReadCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn ~50 ms of CPU so the tick counter moves.
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	c1, err := ReadCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if d := c1.Sub(c0).Total(); d < 0 {
		t.Errorf("CPU went backwards: %v", d)
	}
	m, err := ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("memory %+v", m)
	}
	// The sampler reads once before it first waits, so even a sampler stopped at
	// once has a sample.
	s := StartSampler(pid, time.Millisecond)
	samples, err := s.Stop()
	if err != nil || len(samples) == 0 || MaxRSS(samples) <= 0 {
		t.Errorf("sampler: %d samples, err %v", len(samples), err)
	}
	_ = x
}
