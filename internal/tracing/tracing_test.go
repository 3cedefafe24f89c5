package tracing

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// collector is an OTLP gRPC trace receiver that keeps the span names it got.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (c *collector) Export(_ context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range r.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.names = append(c.names, s.GetName())
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func serve(t *testing.T, g *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// TestExportsSpans: a traced server's call reaches an OTLP collector as a span named
// for the method; tracing off adds no server option.
func TestExportsSpans(t *testing.T) {
	off, err := New(Config{})
	if err != nil || len(off.ServerOptions()) != 0 || off.Close() != nil {
		t.Fatalf("tracing off: %v, %d options", err, len(off.ServerOptions()))
	}

	col := &collector{}
	cs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(cs, col)
	colAddr := serve(t, cs)

	tr, err := New(Config{Endpoint: colAddr, Insecure: true, SampleRatio: 1, ServiceName: "signsvr", InstanceID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The server ends its span after the answer is sent, so the client can see the
	// answer first: stopping the server with WaitForHandlers waits for that end.
	s := grpc.NewServer(append(tr.ServerOptions(), grpc.WaitForHandlers(true))...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	addr := serve(t, s)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := tr.Close(); err != nil { // flushes
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.names) != 1 || col.names[0] != "grpc.health.v1.Health/Check" {
		t.Errorf("spans %v, want one for grpc.health.v1.Health/Check", col.names)
	}
}

func TestRefusesBadRatio(t *testing.T) {
	for _, r := range []float64{0, -1, 1.5} {
		if _, err := New(Config{Endpoint: "127.0.0.1:4317", SampleRatio: r}); err == nil {
			t.Errorf("ratio %v accepted", r)
		}
	}
}
