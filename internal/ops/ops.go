// Package ops is the operations listener: one plaintext port, apart from the API's
// mutual-TLS port, for what runs a server rather than what uses it. On it:
//
//   - gRPC over HTTP/2 cleartext (prior knowledge, as gRPC clients and Kubernetes
//     gRPC probes speak it): grpc.health.v1 Health, the API server's own health
//     service, so a probe sees the status a client of the API port sees;
//   - HTTP/1.1 (and HTTP/2): GET /metrics (Prometheus), /healthz (200 while the
//     process serves: liveness), /readyz (200 only while the server is ready for
//     calls, 503 with the reason otherwise: readiness), and /debug/pprof/ when
//     enabled.
//
// The API port needs a client certificate, which probes and scrapers do not have;
// this port carries no key operation and no request data, so it needs none. It
// keeps serving while the API server drains, so that readiness and health say
// NOT_SERVING to the load balancers for as long as the drain lasts; it stops after.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Options configure the listener.
type Options struct {
	// Health is the grpc.health.v1 service to serve (the API server's).
	Health healthpb.HealthServer
	// Ready says whether the server is ready for calls, and why not.
	Ready func() (bool, string)
	// Metrics serves /metrics; nil answers 404 there.
	Metrics http.Handler
	// PProf serves net/http/pprof under /debug/pprof/.
	PProf bool
	// Logger receives the listener's failures; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running operations listener.
type Server struct {
	http *http.Server
	grpc *grpc.Server
	lis  net.Listener
	done chan error
}

// readHeaderTimeout bounds a request's headers: the port is unauthenticated, so a
// client that opens connections and sends nothing must not hold them.
const readHeaderTimeout = 10 * time.Second

// Start serves o on lis until Stop.
func Start(lis net.Listener, o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, o.Health)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, why := o.Ready()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				g.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		}),
		Protocols:         &protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s := &Server{http: hs, grpc: g, lis: lis, done: make(chan error, 1)}
	go func() {
		err := hs.Serve(lis)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil {
			log.Error("operations listener failed", slog.String("error", err.Error()))
		}
		s.done <- err
	}()
	return s
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Stop closes the listener and every connection: probes and scrapes have no work
// worth draining. Health watchers see their stream end.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.grpc.Stop()
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
	<-s.done
}
