package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	clicmd "signsvr.dev/signsvr/internal/cli"
)

// shared is one development server for the tests that need a running server but
// not one of their own (the ghz smoke run; the production test borrows its
// development PKI's files), started by TestMain.
var shared struct {
	addr    string
	dataDir string
}

// runMainEnv, set to 1 in a process started from the test binary, makes that process
// the signsvr command itself (main with its arguments), so that tests can run real
// server processes, signal them and kill them, without building a second binary.
const runMainEnv = "SIGNSVR_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	if os.Getenv(childServeEnv) != "" {
		os.Exit(childServe())
	}
	os.Exit(testMain(m))
}

// childServeEnv makes the test binary `signsvr serve` with the arguments that follow
// "--", printing the address it listens on as the first line of its standard output
// (runMainEnv's processes need a port chosen beforehand): a server in a process of
// its own, whose memory a test can read from /proc.
const childServeEnv = "SIGNSVR_TEST_CHILD_SERVE"

func childServe() int {
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return runServe(ctx, args, os.Stderr, func(a net.Addr) { fmt.Println(a.String()) })
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "signsvr-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	shared.dataDir = filepath.Join(dir, "signsvr-data")
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan int, 1)
	var logs lockedBuffer
	go func() {
		done <- runServe(ctx, []string{"--data-dir", shared.dataDir, "--listen", "127.0.0.1:0", "--log-level", "warn"},
			&logs, func(a net.Addr) { addrc <- a.String() })
	}()
	select {
	case shared.addr = <-addrc:
	case <-done:
		fmt.Fprintf(os.Stderr, "shared server did not start:\n%s", logs.String())
		cancel()
		return 1
	}
	code := m.Run()
	cancel()
	if c := <-done; c != 0 {
		fmt.Fprintf(os.Stderr, "shared server exited with %d:\n%s", c, logs.String())
		return 1
	}
	return code
}

func devFile(parts ...string) string {
	return filepath.Join(append([]string{shared.dataDir}, parts...)...)
}

// TestRunDispatches: every command of the usage text reaches its implementation,
// and the usage text names every command.
func TestRunDispatches(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"frobnicate"}, nil, &stderr, &stderr); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"audit"}, nil, &stderr, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "signsvr audit verify") {
		t.Errorf("audit is not wired: exit %d %q", code, stderr.String())
	}
	usage := clicmd.Usage(append([]*clicmd.Command{serveCmd, configCheckCmd}, clicmd.Commands()...))
	for _, cmd := range []string{"serve", "sign", "verify", "envelope", "decrypt", "keys list", "keys generate", "keys csr",
		"keys import-cert", "login", "audit verify", "sign-raw", "verify-raw", "sign-and-envelope", "decrypt-and-verify",
		"timestamp", "cert validate", "cert parse", "version", "config check", "keys next-generation"} {
		if !strings.Contains(usage, "signsvr "+cmd+" ") {
			t.Errorf("the usage text does not list %q", cmd)
		}
	}
	// A command's own flags answer -h, which shows it is dispatched to.
	for _, args := range [][]string{{"serve", "-h"}, {"sign", "-h"}, {"verify", "-h"}, {"envelope", "-h"}, {"decrypt", "-h"},
		{"keys", "list", "-h"}, {"login", "-h"}} {
		stderr.Reset()
		if code := run(context.Background(), args, nil, &stderr, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "-") {
			t.Errorf("%s: exit %d %q", strings.Join(args, " "), code, stderr.String())
		}
	}
	for _, sub := range []string{"generate", "csr", "import-cert"} {
		stderr.Reset()
		if code := run(context.Background(), []string{"keys", sub, "-h"}, nil, &stderr, &stderr); code != exitOK ||
			!strings.Contains(stderr.String(), "-module") {
			t.Errorf("keys %s -h: exit %d %q", sub, code, stderr.String())
		}
	}
}
