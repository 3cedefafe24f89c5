package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/metrics"
	"signsvr.dev/signsvr/internal/server"
)

// TestCallInterceptorsSeeTheClientsStatus: Options.CallInterceptors run around whole
// API calls, in order, and see the status the client gets (decoding failures and
// unknown keys included) and the key the call named; health calls are not API calls.
func TestCallInterceptorsSeeTheClientsStatus(t *testing.T) {
	type seen struct {
		method, key string
		code        codes.Code
		api         bool
	}
	var (
		mu    sync.Mutex
		calls []seen
		order []string
	)
	record := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			resp, err := h(ctx, req)
			if name == "outer" {
				mu.Lock()
				calls = append(calls, seen{info.FullMethod, server.CallKey(ctx), status.Code(err), server.IsAPICall(ctx)})
				mu.Unlock()
			}
			return resp, err
		}
	}
	ts := startServer(t, func(o *server.Options) {
		o.CallInterceptors = []grpc.UnaryServerInterceptor{record("outer"), record("inner")}
	})
	ctx := ctxT(t)
	if _, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	_, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "no-such-key", Data: []byte("x")})
	wantStatus(t, err, codes.NotFound, "KEY_NOT_FOUND")
	_, err = ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: []byte{0x30, 0x81}})
	wantStatus(t, err, codes.InvalidArgument, "MALFORMED_INPUT")
	ts.assertServing(t) // a health call: not seen

	mu.Lock()
	defer mu.Unlock()
	want := []seen{
		{"/signsvr.v1.SignService/Sign", "ecdsa-sign", codes.OK, true},
		{"/signsvr.v1.SignService/Sign", "no-such-key", codes.NotFound, true},
		{"/signsvr.v1.SignService/Verify", "", codes.InvalidArgument, true},
	}
	if len(calls) != len(want) {
		t.Fatalf("seen %+v, want %+v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d: %+v, want %+v", i, calls[i], want[i])
		}
	}
	if len(order) != 6 || order[0] != "outer" || order[1] != "inner" {
		t.Errorf("interceptor order %v, want outer then inner for each call", order)
	}
}

// BenchmarkMetrics is a Sign call through a real loopback connection without and
// with the metrics of internal/metrics: what the operations listener's metrics cost
// a call.
func BenchmarkMetrics(b *testing.B) {
	data := make([]byte, 1024)
	for _, on := range []bool{false, true} {
		name := "off"
		opts := []serverOption{}
		if on {
			name = "on"
			m := metrics.New()
			opts = append(opts, func(o *server.Options) {
				o.CallInterceptors = append(o.CallInterceptors, m.CallInterceptor())
				o.ServerOptions = append(o.ServerOptions, m.ServerOptions()...)
			})
		}
		b.Run(name, func(b *testing.B) {
			ts := startServer(b, opts...)
			req := &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ts.sign.Sign(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConnectionsAge: a connection older than Limits.MaxConnectionAge is told to go
// away (HTTP/2 GOAWAY, no error), so that its client connects again and resolves the
// servers anew; the read deadline of the raw connection bounds the wait.
func TestConnectionsAge(t *testing.T) {
	ts := startServer(t, func(o *server.Options) {
		o.Limits.MaxConnectionAge = 50 * time.Millisecond
		o.Limits.MaxConnectionAgeGrace = time.Minute
	})
	r := dialRawH2(t, ts.addr)
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				r.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY with %v, want NO_ERROR", f.ErrCode)
			}
			ts.assertServing(t) // other connections are served
			return
		}
	}
}
