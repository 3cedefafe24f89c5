package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

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

// startServer builds a server from o (on a loopback port), runs it until the test
// ends and returns its address.
func startServer(t *testing.T, o Options) string {
	t.Helper()
	logs := &lockedBuffer{}
	o.Listen, o.Log = "127.0.0.1:0", logs
	if o.GCPercent == 0 {
		o.GCPercent, o.MemoryLimit = DefaultGCPercent, DefaultMemoryLimit
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- s.Run(ctx, func(a net.Addr) { addrc <- a.String() }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v\n%s", err, logs.String())
		}
		s.Close()
	})
	select {
	case addr := <-addrc:
		return addr
	case err := <-done:
		done <- err
		t.Fatalf("Run returned before listening: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not start:\n%s", logs.String())
	}
	return ""
}

// TestDevelopmentListensOnLoopbackOnly: the development default refuses an address
// beyond this machine before it creates anything, and takes every loopback form.
func TestDevelopmentListensOnLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		listen string
		ok     bool
	}{
		{"", true}, {"127.0.0.1:0", true}, {"127.0.0.2:0", true}, {"[::1]:0", true}, {"localhost:0", true},
		{"0.0.0.0:50051", false}, {":50051", false}, {"[::]:50051", false}, {"192.0.2.10:50051", false},
		{"example.com:50051", false}, {"no-port", false},
	} {
		err := developmentListen("--listen", tc.listen)
		if (err == nil) != tc.ok {
			t.Errorf("--listen %q: %v, want ok=%v", tc.listen, err, tc.ok)
		}
	}
	dataDir := filepath.Join(t.TempDir(), "signsvr-data")
	if _, err := New(Options{DataDir: dataDir, Listen: "0.0.0.0:0", Log: io.Discard}); err == nil ||
		!strings.Contains(err.Error(), "loopback only") {
		t.Fatalf("New with --listen 0.0.0.0:0: %v, want the loopback refusal", err)
	}
	if _, err := New(Options{DataDir: dataDir, OpsListen: "0.0.0.0:9090", Log: io.Discard}); err == nil ||
		!strings.Contains(err.Error(), "--ops-listen 0.0.0.0:9090: the development server listens on loopback only") {
		t.Fatalf("New with --ops-listen 0.0.0.0:9090: %v, want the loopback refusal", err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused server created its data directory: %v", err)
	}
}
