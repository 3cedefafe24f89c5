package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/pkg/keystore/soft"
	"signsvr.dev/signsvr/pkg/trust"
)

// pki is one development PKI shared by every test of the package (RSA key generation
// is the slow part of setting one up).
var pki *devpki.PKI

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "signsvr-server-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pki, err = devpki.Ensure(filepath.Join(dir, "pki"), time.Now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devpki:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// keyFile returns the development key file entry by name.
func keyFile(t testing.TB, name string) devpki.KeyFile {
	t.Helper()
	for _, k := range pki.Keys {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no development key %q", name)
	return devpki.KeyFile{}
}

// testServer is a real server on a loopback TCP port.
type testServer struct {
	addr   string
	conn   *grpc.ClientConn
	sign   signsvrv1.SignServiceClient
	env    signsvrv1.EnvelopeServiceClient
	keys   signsvrv1.KeyServiceClient
	health healthpb.HealthClient
	stop   context.CancelFunc
	done   chan error
	logs   *syncBuffer
	srv    *server.Server
}

type serverOption func(*server.Options)

func startServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	var keys []soft.KeyConfig
	for _, k := range pki.Keys {
		keys = append(keys, soft.KeyConfig{Name: k.Name, KeyFile: k.KeyPath, CertFile: k.CertPath,
			Usages: strings.Split(k.Usage.String(), ",")})
	}
	store, err := soft.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Config{Anchors: pki.Roots, Revocation: trust.RevocationConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	logs := &syncBuffer{}
	o := server.Options{
		Store: store, Backend: "soft", Validator: v, Development: true, Reflection: true, Authorizer: server.AllowAll,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := server.New(o)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{addr: lis.Addr().String(), stop: cancel, done: make(chan error, 1), logs: logs, srv: srv}
	go func() { ts.done <- srv.Run(ctx, lis, 2*time.Second) }()
	ts.conn, err = grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(128<<20), grpc.MaxCallSendMsgSize(128<<20)))
	if err != nil {
		t.Fatal(err)
	}
	ts.sign = signsvrv1.NewSignServiceClient(ts.conn)
	ts.env = signsvrv1.NewEnvelopeServiceClient(ts.conn)
	ts.keys = signsvrv1.NewKeyServiceClient(ts.conn)
	ts.health = healthpb.NewHealthClient(ts.conn)
	t.Cleanup(func() {
		ts.conn.Close()
		cancel()
		if err := <-ts.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// assertServing fails unless the health service says SERVING.
func (ts *testServer) assertServing(t *testing.T) {
	t.Helper()
	resp, err := ts.health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health check: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, want SERVING", resp.GetStatus())
	}
}

// eventually polls cond until it holds, failing the test with what after a minute (a
// bound only there to fail instead of hanging).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		<-poll.C
	}
}

// waitHealth polls the server's health until it reports want.
func (ts *testServer) waitHealth(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	eventually(t, "health never became "+want.String(), func() bool {
		resp, err := ts.health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == want
	})
}

// wantStatus checks a call's error: the code and the ErrorInfo reason.
func wantStatus(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %v / %s", code, reason)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a status error: %v", err)
	}
	if st.Code() != code {
		t.Fatalf("code = %v (%s), want %v", st.Code(), st.Message(), code)
	}
	info := errorInfo(st)
	if info == nil {
		t.Fatalf("status %v has no ErrorInfo", st)
	}
	if info.GetReason() != reason || info.GetDomain() != server.ErrorDomain {
		t.Fatalf("ErrorInfo = %s/%s, want %s/%s (message %q)", info.GetDomain(), info.GetReason(), server.ErrorDomain, reason, st.Message())
	}
	if info.GetMetadata()["request_id"] == "" {
		t.Errorf("ErrorInfo has no request_id")
	}
	return st
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// openssl runs the openssl binary; the tests need it and fail (not skip) without it.
func openssl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required for the interoperability tests (apt-get install openssl): %v", err)
	}
	cmd := exec.Command(bin, args...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
