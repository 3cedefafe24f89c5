package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitTimeoutProcess bounds every wait for a server process.
const waitTimeoutProcess = time.Minute

// process is a signsvr server running as a process of its own.
type process struct {
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
	exited chan error
}

var servingLine = regexp.MustCompile(`"msg":"serving","listen":"([^"]+)"`)

// reloadProcess starts `signsvr serve args...` as a process (the test binary itself)
// and waits until it listens (its JSON log says where). It is stopped with SIGTERM
// when the test ends.
func reloadProcess(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], append([]string{"serve"}, args...)...)
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	pollUntil(t, func() bool {
		if m := servingLine.FindStringSubmatch(p.stderr.String()); m != nil {
			p.addr = m[1]
			return true
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("the server exited before serving (%v):\n%s", err, p.stderr.String())
		default:
		}
		return false
	}, func() string { return "the server did not start:\n" + p.stderr.String() })
	return p
}

// signal sends sig to the server process.
func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// count is how often the log has a line with msg.
func (p *process) count(msg string) int {
	return strings.Count(p.stderr.String(), `"msg":"`+msg)
}

// stop ends the server with SIGTERM and checks it exits cleanly.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("the server exited with %v:\n%s", err, p.stderr.String())
		}
	case <-time.After(waitTimeoutProcess):
		p.cmd.Process.Kill()
		t.Errorf("the server did not stop on SIGTERM:\n%s", p.stderr.String())
	}
	p.cmd = nil
}

// pollUntil polls cond on a ticker until it holds, failing the test with failure()
// after waitTimeoutProcess.
func pollUntil(t *testing.T, cond func() bool, failure func() string) {
	t.Helper()
	deadline := time.NewTimer(waitTimeoutProcess)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatal(failure())
		case <-tick.C:
		}
	}
}
