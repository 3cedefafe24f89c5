package app

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// GC settings of `signsvr serve`.
//
// A request allocates a few KiB that die with it, and the live heap is small (keys,
// certificate and verdict caches: a few MiB), so with Go's default GOGC=100 the
// collector runs every few MiB of requests: a measured share of the CPU per call. A
// higher GC percentage lets the heap grow further between collections, and a soft
// memory limit keeps the total in check: near the limit the runtime collects more
// often, whatever the percentage. Defaults: 400% and 64 MiB, which keep the server's
// RSS under 128 MiB through the benchmark suite.
//
// The standard environment variables win over the flags: GOGC (including GOGC=off)
// and GOMEMLIMIT, read by the Go runtime itself, are left alone when set.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = "64MiB"
)

// gcSettings applies gcPercent and memoryLimit ("100MiB", "1GiB", "0" for none)
// unless the environment (getenv) sets GOGC or GOMEMLIMIT, and logs what is in force.
func gcSettings(gcPercent int, memoryLimit string, getenv func(string) string, log *slog.Logger) error {
	limit, err := ParseBytes(memoryLimit)
	if err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	if gcPercent <= 0 && gcPercent != -1 {
		return fmt.Errorf("--gc-percent %d: give a positive percentage, or -1 to turn the collector off below the memory limit", gcPercent)
	}
	gcFrom, limitFrom := "flag", "flag"
	if getenv("GOGC") != "" {
		gcFrom = "GOGC"
	} else {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		limitFrom = "GOMEMLIMIT"
	} else if limit > 0 {
		debug.SetMemoryLimit(limit)
	} else {
		debug.SetMemoryLimit(math.MaxInt64)
	}
	cur := debug.SetGCPercent(-1)
	debug.SetGCPercent(cur)
	log.Info("garbage collector", slog.Int("gc_percent", cur), slog.String("gc_percent_from", gcFrom),
		slog.Int64("memory_limit_bytes", debug.SetMemoryLimit(-1)), slog.String("memory_limit_from", limitFrom))
	return nil
}

// ParseBytes reads a size: a number of bytes, optionally with a B, KiB, MiB or GiB
// suffix (GOMEMLIMIT's units); "0" means no limit.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mul = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q is not a size (e.g. 100MiB, 1GiB, 0 for none)", s)
	}
	return n * mul, nil
}
