package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ProcSample is what the soak watches of the server besides its memory: OS threads
// (a goroutine blocked in a system call holds one) and open files (connections
// included). Goroutines themselves are not visible from outside the process.
type ProcSample struct {
	At      time.Duration `json:"at_ns"`
	Threads int           `json:"threads"`
	Files   int           `json:"files"`
}

// sampleProc samples pid every interval until ctx ends; At counts from the call.
func sampleProc(ctx context.Context, pid int, interval time.Duration) []ProcSample {
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	var out []ProcSample
	for {
		if p, err := readProc(pid); err == nil {
			p.At = time.Since(start)
			out = append(out, p)
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

func readProc(pid int) (ProcSample, error) {
	var p ProcSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	p.Threads = -1
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			p.Threads, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return p, fmt.Errorf("/proc/%d/status: Threads: %w", pid, err)
			}
		}
	}
	if p.Threads < 0 {
		return p, fmt.Errorf("/proc/%d/status has no Threads line", pid)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return p, err
	}
	p.Files = len(fds)
	return p, nil
}
