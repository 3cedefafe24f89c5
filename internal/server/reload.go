package server

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"

	"google.golang.org/grpc"
)

// Reloading
//
// A Server is two things: the transport (the grpc server, its listener, codec,
// health service and limits), which lives as long as the process, and a state (the
// key store, certificate validators, policy, login, timestamps, the TLS certificate
// and client CAs, and the interceptors that use them), which Reload replaces whole.
// The state is an immutable *Server of its own; the running server points at the
// current one through an atomic pointer, and every call loads it once when it
// begins (wrapService) and uses that one to its end. A reload never waits for calls
// and never fails one: calls that began before it finish on the state they began on,
// calls after it get the new state, and a TLS handshake takes the certificate and
// client validation of the state current when the client says hello.
//
// Each state counts its users: one for being current, one per call in flight. The
// count reaches zero only after the state was replaced and its last call finished,
// and then its Release (Options.Release) frees what it held, such as HSM sessions.
// A state whose count reached zero is never taken again: acquire only increments a
// count that is above zero.
//
// What the transport fixed at New stays as it was: the listen address, message size
// and connection limits, reflection, and whether the server speaks TLS at all.

// stateFields are the parts of a Server that make it a state of a running server.
type stateFields struct {
	// root is the running server this state belongs to (itself for the first).
	root *Server
	// cur, on root, is the state calls use now.
	cur atomic.Pointer[Server]
	// refs counts the state's users: one while current, one per call in flight.
	refs    atomic.Int64
	release func()
	// chain is the state's interceptor chain (audit, authentication, authorization,
	// Options.Interceptors); impls are its service implementations by service name.
	chain grpc.UnaryServerInterceptor
	impls map[string]any
	// tlsConfig is the state's TLS configuration (certificate, client validation);
	// hasTLS, on root, says whether the transport speaks TLS.
	tlsConfig *tls.Config
	hasTLS    bool
}

// Reload replaces the state of a running server with the one o describes. o is
// checked as New checks it; on an error nothing changes (the caller still owns what
// o holds). The state it replaces is released once its calls have finished.
func (s *Server) Reload(o Options) error {
	root := s.root
	if (o.TLS != nil) != root.hasTLS {
		return errors.New("server: a reload cannot turn TLS on or off (restart the server)")
	}
	st, err := newState(o, root)
	if err != nil {
		return err
	}
	st.refs.Store(1)
	if old := root.cur.Swap(st); old != nil {
		old.unref()
	}
	return nil
}

// Check builds the state o describes without serving it, as New and Reload would,
// and reports what they would refuse. It leaves what o holds open.
func Check(o Options) error {
	_, err := newState(o, nil)
	return err
}

// Close releases the current state. Call it after Run has returned.
func (s *Server) Close() {
	if st := s.root.cur.Swap(nil); st != nil {
		st.unref()
	}
}

// acquire takes the current state for one call; the caller unrefs it when done.
func (s *Server) acquire() *Server {
	for {
		st := s.root.cur.Load()
		if st == nil {
			// Closed: the last state serves what still arrives (nothing should).
			return nil
		}
		for n := st.refs.Load(); n > 0; n = st.refs.Load() {
			if st.refs.CompareAndSwap(n, n+1) {
				return st
			}
		}
		// Released between the load and the increment: a newer state is current.
	}
}

// unref drops one use of the state and releases it after its last.
func (s *Server) unref() {
	if s.refs.Add(-1) == 0 && s.release != nil {
		s.release()
	}
}

// current is the state calls use now, for the parts of the server that run outside
// calls (the health poll). It may be released while used; only read it.
func (s *Server) current() *Server {
	if st := s.root.cur.Load(); st != nil {
		return st
	}
	return s
}

// reloadableTLS is the TLS configuration the transport is built with: each handshake
// takes the current state's.
func (s *Server) reloadableTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current().tlsConfig, nil
		},
	}
}

// chainUnary makes one interceptor of several, the first outermost, as
// grpc.ChainUnaryInterceptor does.
func chainUnary(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return ics[0](ctx, req, info, chainedHandler(ics[1:], info, handler))
	}
}

func chainedHandler(ics []grpc.UnaryServerInterceptor, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if len(ics) == 0 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return ics[0](ctx, req, info, chainedHandler(ics[1:], info, final))
	}
}

// outerThenState runs the transport's interceptors (ic, from grpc server options;
// nil when there are none) around the state's chain.
func outerThenState(ic, chain grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch {
	case ic == nil:
		return chain
	case chain == nil:
		return ic
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return ic(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return chain(ctx, req, info, handler)
		})
	}
}
