package app

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100MiB", 100 << 20, true}, {"1GiB", 1 << 30, true}, {"512KiB", 512 << 10, true},
		{"4096", 4096, true}, {"10B", 10, true}, {"0", 0, true}, {" 2 MiB ", 2 << 20, true},
		{"", 0, false}, {"-1MiB", 0, false}, {"1TB", 0, false}, {"MiB", 0, false},
		{"99999999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestGCSettings(t *testing.T) {
	oldPct := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPct); debug.SetMemoryLimit(oldLimit) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	noEnv := func(string) string { return "" }

	if err := gcSettings(400, "100MiB", noEnv, log); err != nil {
		t.Fatal(err)
	}
	if p := debug.SetGCPercent(400); p != 400 {
		t.Errorf("gc percent %d, want 400", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 100<<20 {
		t.Errorf("memory limit %d, want 100 MiB", l)
	}

	// The environment wins: the runtime read GOGC/GOMEMLIMIT itself.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(7 << 20)
	env := func(k string) string { return map[string]string{"GOGC": "150", "GOMEMLIMIT": "7MiB"}[k] }
	if err := gcSettings(400, "100MiB", env, log); err != nil {
		t.Fatal(err)
	}
	if p := debug.SetGCPercent(150); p != 150 {
		t.Errorf("GOGC set: gc percent changed to %d", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 7<<20 {
		t.Errorf("GOMEMLIMIT set: memory limit changed to %d", l)
	}

	for _, bad := range []struct {
		pct   int
		limit string
	}{{0, "100MiB"}, {-5, "100MiB"}, {400, "lots"}} {
		if err := gcSettings(bad.pct, bad.limit, noEnv, log); err == nil {
			t.Errorf("gcSettings(%d, %q) accepted", bad.pct, bad.limit)
		}
	}
}
