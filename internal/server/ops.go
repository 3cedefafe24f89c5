package server

import (
	"context"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// What the operations listener (internal/ops) and the metrics (internal/metrics) need
// of a server: its health service, its readiness, and what a finished call named.

// HealthServer is the server's grpc.health.v1 service, to serve on the operations
// listener as well: a probe there sees exactly what a client of the API port sees
// (NOT_SERVING while a key backend or the audit log is down, and from the start of a
// graceful stop on).
func (s *Server) HealthServer() healthpb.HealthServer { return s.health }

// Readiness is whether the server should be sent calls: not while a part it needs
// is down (an HSM token, a fail-closed audit log; the health poll watches them) nor
// once it is draining. Why says which, for a person reading /readyz.
func (s *Server) Readiness() (ready bool, why string) {
	r, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	switch {
	case err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING:
		return true, "serving"
	case s.serving.Load():
		// The poll says every part is up, yet health is NOT_SERVING: only Stop's
		// health.Shutdown does that.
		return false, "draining: the server is stopping"
	}
	return false, "a part the server needs is down (key backend or audit log): see the server's log"
}

// CallKey is the key the API call of ctx named, for Options.CallInterceptors once the
// call has returned; "" when it named none. The name is the client's: a call
// refused for an unknown key carries the unknown name.
func CallKey(ctx context.Context) string {
	if ri := requestFrom(ctx); ri != nil {
		return ri.key
	}
	return ""
}

// IsAPICall reports whether ctx is that of a unary call of the API (one that
// Options.CallInterceptors see), rather than health or reflection.
func IsAPICall(ctx context.Context) bool { return requestFrom(ctx) != nil }

// chainCall makes one interceptor of several, the first outermost; nil for none.
func chainCall(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		next := h
		for i := len(ics) - 1; i > 0; i-- {
			ic, inner := ics[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, inner) }
		}
		return ics[0](ctx, req, info, next)
	}
}
