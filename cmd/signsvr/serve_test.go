package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// devServer is `signsvr serve` running in this process on a loopback port.
type devServer struct {
	addr   string
	stop   context.CancelFunc
	code   chan int
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs runServe with args plus a loopback port and waits until it listens.
func startServe(t *testing.T, args ...string) *devServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ds := &devServer{stop: cancel, code: make(chan int, 1), stderr: &lockedBuffer{}}
	addrc := make(chan string, 1)
	args = append(args, "--listen", "127.0.0.1:0")
	go func() {
		ds.code <- runServe(ctx, args, ds.stderr, func(a net.Addr) { addrc <- a.String() })
	}()
	select {
	case ds.addr = <-addrc:
	case code := <-ds.code:
		cancel()
		t.Fatalf("serve exited with %d before listening:\n%s", code, ds.stderr.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("serve did not start:\n%s", ds.stderr.String())
	}
	t.Cleanup(func() { ds.shutdown(t) })
	return ds
}

// shutdown stops the server as SIGTERM would and checks it exits cleanly.
func (ds *devServer) shutdown(t *testing.T) {
	t.Helper()
	if ds.stop == nil {
		return
	}
	ds.stop()
	ds.stop = nil
	select {
	case code := <-ds.code:
		if code != 0 {
			t.Errorf("serve exited with %d:\n%s", code, ds.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("serve did not stop")
	}
}

// cli runs a client command against the server and returns exit code, stdout, stderr.
func cli(t *testing.T, addr string, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	var stdout bytes.Buffer
	var stderr strings.Builder
	var full []string
	if args[0] == "keys" {
		full = append([]string{"keys", args[1], "--addr", addr}, args[2:]...)
	} else {
		full = append([]string{args[0], "--addr", addr}, args[1:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var in io.Reader = bytes.NewReader(stdin)
	code := run(ctx, full, in, &stdout, &stderr)
	return code, stdout.Bytes(), stderr.String()
}

func TestServeDevelopmentDefaultCreatesThenReusesPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "signsvr-data")
	ds := startServe(t, "--data-dir", dir)
	logs := ds.stderr.String()
	for _, want := range []string{"DEVELOPMENT SETUP", "NOT FOR PRODUCTION", "created a new development PKI", "serving"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the startup log does not say %q:\n%s", want, logs)
		}
	}
	code, out, errs := cli(t, ds.addr, nil, "keys", "list", "--json")
	if code != 0 {
		t.Fatalf("keys list: %d %s", code, errs)
	}
	first := keyChains(t, out)
	if len(first) != 6 {
		t.Fatalf("keys list shows %d keys, want 6: %s", len(first), out)
	}
	ds.shutdown(t)
	if !strings.Contains(ds.stderr.String(), "stopped") {
		t.Errorf("no clean stop in the log:\n%s", ds.stderr.String())
	}

	ds2 := startServe(t, "--data-dir", dir)
	if !strings.Contains(ds2.stderr.String(), "reusing the development PKI") {
		t.Errorf("the second start does not reuse the PKI:\n%s", ds2.stderr.String())
	}
	code, out, errs = cli(t, ds2.addr, nil, "keys", "list", "--json")
	if code != 0 {
		t.Fatalf("keys list: %d %s", code, errs)
	}
	second := keyChains(t, out)
	for name, chain := range first {
		if second[name] != chain {
			t.Errorf("key %s has a different certificate after a restart", name)
		}
	}
}

// keyChains reads `keys list --json` into name -> first certificate (base64).
func keyChains(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var resp struct {
		Keys []struct {
			Name             string   `json:"name"`
			CertificateChain []string `json:"certificateChain"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("keys list --json: %v\n%s", err, out)
	}
	m := map[string]string{}
	for _, k := range resp.Keys {
		if len(k.CertificateChain) == 0 {
			t.Fatalf("key %s has no certificate", k.Name)
		}
		m[k.Name] = k.CertificateChain[0]
	}
	return m
}

func TestServeRefusesBadFlags(t *testing.T) {
	var stderr strings.Builder
	if code := runServe(context.Background(), []string{"--config", "x.yaml", "--data-dir", "d"}, &stderr, nil); code != exitUsage {
		t.Errorf("--config with --data-dir: exit %d, want %d", code, exitUsage)
	}
	stderr.Reset()
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if code := runServe(context.Background(), []string{"--config", missing}, &stderr, nil); code != exitFailure ||
		!strings.Contains(stderr.String(), "missing.yaml") {
		t.Errorf("missing config: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:0\nkeystore:\n  soft:\n    keys: []\n"), 0o600)
	code := runServe(context.Background(), []string{"--config", bad}, &stderr, nil)
	if code != exitFailure || !strings.Contains(stderr.String(), "tls") {
		t.Errorf("config without TLS: exit %d, %q; want a refusal naming tls", code, stderr.String())
	}
}
