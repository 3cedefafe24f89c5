package ops

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func start(t *testing.T, o Options) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(lis, o)
	t.Cleanup(s.Stop)
	return s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestEndpoints: one port answers HTTP/1.1 (healthz, readyz following Ready,
// metrics, pprof only when enabled) and gRPC health over cleartext HTTP/2.
func TestEndpoints(t *testing.T) {
	hs := health.NewServer()
	var ready atomic.Bool
	for _, pprofOn := range []bool{false, true} {
		addr := start(t, Options{
			Health: hs,
			Ready: func() (bool, string) {
				if ready.Load() {
					return true, "serving"
				}
				return false, "draining"
			},
			Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "m 1\n") }),
			PProf:   pprofOn,
		})
		base := "http://" + addr
		if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("/healthz: %d %q", code, body)
		}
		ready.Store(false)
		if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "draining") {
			t.Errorf("/readyz not ready: %d %q", code, body)
		}
		ready.Store(true)
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Errorf("/readyz ready: %d", code)
		}
		if code, body := get(t, base+"/metrics"); code != 200 || body != "m 1\n" {
			t.Errorf("/metrics: %d %q", code, body)
		}
		wantPProf := 404
		if pprofOn {
			wantPProf = 200
		}
		if code, _ := get(t, base+"/debug/pprof/"); code != wantPProf {
			t.Errorf("pprof %v: /debug/pprof/ answered %d, want %d", pprofOn, code, wantPProf)
		}

		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		hc := healthpb.NewHealthClient(conn)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		for _, want := range []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING} {
			hs.SetServingStatus("", want)
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil || r.GetStatus() != want {
				t.Errorf("gRPC health: %v %v, want %v", r.GetStatus(), err, want)
			}
		}
		cancel()
		conn.Close()
	}
}
