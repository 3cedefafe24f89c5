// Package procstat reads a process's CPU time and memory from Linux /proc.
//
// The harness measures the server from the outside, so that the figures do not depend
// on how fast the load generator is: CPU time per request is the growth of the
// server's utime+stime (all threads) over the measured window, divided by the requests
// completed in it; memory is VmRSS and VmHWM from /proc/PID/status.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. Linux fixes it
// at 100 on every architecture Go supports (getconf CLK_TCK), whatever the kernel's HZ.
const ClockTicks = 100

// CPU is a process's accumulated CPU time.
type CPU struct {
	User, System time.Duration
}

// Total is user plus system time.
func (c CPU) Total() time.Duration { return c.User + c.System }

// Sub is the CPU time spent between an earlier sample and c.
func (c CPU) Sub(earlier CPU) CPU {
	return CPU{User: c.User - earlier.User, System: c.System - earlier.System}
}

// ReadCPU reads utime and stime of every thread of pid from /proc/PID/stat.
func ReadCPU(pid int) (CPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return CPU{}, err
	}
	return parseStat(b)
}

// parseStat reads fields 14 (utime) and 15 (stime) of a /proc/PID/stat line. The
// command name (field 2) is in parentheses and may hold spaces and parentheses, so
// the fields are counted from the last ')'.
func parseStat(b []byte) (CPU, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return CPU{}, fmt.Errorf("procstat: malformed stat line")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return CPU{}, fmt.Errorf("procstat: stat line has %d fields after the name", len(f))
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return CPU{}, fmt.Errorf("procstat: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return CPU{}, fmt.Errorf("procstat: stime: %w", err)
	}
	tick := time.Second / ClockTicks
	// A count of ticks that does not fit a time.Duration is no real process's.
	if limit := uint64(math.MaxInt64 / int64(tick)); ut > limit || st > limit {
		return CPU{}, fmt.Errorf("procstat: CPU ticks out of range")
	}
	return CPU{User: time.Duration(ut) * tick, System: time.Duration(st) * tick}, nil
}

// Activity counts what a process asked of the kernel: the read and write system calls
// of all its threads (syscr and syscw in /proc/PID/io) and its threads' context
// switches, voluntary and not (/proc/PID/task/*/status). Per call, they show why the
// same call costs the server more CPU when calls arrive one at a time (each wakes the
// server, and nothing shares its reads and writes) than when many are in flight.
// Switches of threads that exited between two samples are lost; Go keeps its threads.
type Activity struct {
	Reads    int64 `json:"read_syscalls"`
	Writes   int64 `json:"write_syscalls"`
	Switches int64 `json:"context_switches"`
}

// Sub is the activity between an earlier sample and a.
func (a Activity) Sub(earlier Activity) Activity {
	return Activity{Reads: a.Reads - earlier.Reads, Writes: a.Writes - earlier.Writes, Switches: a.Switches - earlier.Switches}
}

// ReadActivity reads pid's system call and context switch counts. /proc/PID/io is
// readable only by the process's owner (or root).
func ReadActivity(pid int) (Activity, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return Activity{}, err
	}
	a, err := parseIO(b)
	if err != nil {
		return Activity{}, err
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		return Activity{}, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited since the listing
		}
		n, err := parseSwitches(b)
		if err != nil {
			return Activity{}, err
		}
		a.Switches += n
	}
	return a, nil
}

// parseIO reads syscr and syscw from /proc/PID/io.
func parseIO(b []byte) (Activity, error) {
	var a Activity
	var seen [2]bool
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		var dst *int64
		var i int
		switch {
		case !ok:
			continue
		case name == "syscr":
			dst, i = &a.Reads, 0
		case name == "syscw":
			dst, i = &a.Writes, 1
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil || n < 0 || seen[i] {
			return Activity{}, fmt.Errorf("procstat: malformed or repeated io line %q", line)
		}
		*dst, seen[i] = n, true
	}
	if !seen[0] || !seen[1] {
		return Activity{}, fmt.Errorf("procstat: syscr or syscw missing")
	}
	return a, nil
}

// parseSwitches sums voluntary_ctxt_switches and nonvoluntary_ctxt_switches of a
// thread's status file.
func parseSwitches(b []byte) (int64, error) {
	var sum int64
	var seen [2]bool
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(line, ":")
		i := 0
		switch {
		case !ok:
			continue
		case name == "voluntary_ctxt_switches":
		case name == "nonvoluntary_ctxt_switches":
			i = 1
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64-sum || seen[i] {
			return 0, fmt.Errorf("procstat: malformed or repeated status line %q", line)
		}
		sum, seen[i] = sum+n, true
	}
	if !seen[0] || !seen[1] {
		return 0, fmt.Errorf("procstat: context switch counts missing")
	}
	return sum, nil
}

// Memory is a process's resident memory.
type Memory struct {
	// RSS is VmRSS: resident now.
	RSS int64
	// HWM is VmHWM: the peak resident size since the process started.
	HWM int64
}

// ReadMemory reads VmRSS and VmHWM of pid from /proc/PID/status, in bytes.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.HWM
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			return Memory{}, fmt.Errorf("procstat: malformed status line %q", line)
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("procstat: %q: %w", line, err)
		}
		if kb < 0 || kb > math.MaxInt64>>10 {
			return Memory{}, fmt.Errorf("procstat: %q: size out of range", line)
		}
		*dst = kb << 10
		seen++
	}
	if seen != 2 {
		return Memory{}, fmt.Errorf("procstat: VmRSS or VmHWM missing")
	}
	return m, nil
}

// Sampler samples a process's memory at a fixed interval until stopped.
type Sampler struct {
	pid     int
	stop    chan struct{}
	done    chan struct{}
	samples []MemSample
	err     error
}

// MemSample is one memory sample, at an offset from the sampler's start.
type MemSample struct {
	At  time.Duration `json:"at_ns"`
	RSS int64         `json:"rss_bytes"`
}

// StartSampler samples pid's memory every interval until Stop. The clock is only used
// to time-stamp samples relative to the start.
func StartSampler(pid int, interval time.Duration) *Sampler {
	s := &Sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(interval)
	return s
}

func (s *Sampler) run(interval time.Duration) {
	defer close(s.done)
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m, err := ReadMemory(s.pid)
		if err != nil {
			s.err = err
			return
		}
		s.samples = append(s.samples, MemSample{At: time.Since(start), RSS: m.RSS})
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Stop ends sampling and returns the samples; err is set if the process could no
// longer be read (it exited).
func (s *Sampler) Stop() ([]MemSample, error) {
	close(s.stop)
	<-s.done
	return s.samples, s.err
}

// MaxRSS is the largest RSS among samples.
func MaxRSS(samples []MemSample) int64 {
	var m int64
	for _, s := range samples {
		m = max(m, s.RSS)
	}
	return m
}
