package server

import (
	"context"
	"net"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/tap"
)

// Limits bound what clients can hold of the server: connections, streams, idle
// connections, and requests whose body stops arriving. A zero field takes its default.
//
// They are what grpc-go offers, wired up with defaults that fit a small container:
// grpc-go's own defaults allow unlimited connections, unlimited streams per
// connection, and a request body that may take forever.
type Limits struct {
	// MaxConnections bounds the connections served at once; further clients wait in
	// the listen backlog until one closes.
	MaxConnections int
	// MaxStreamsPerConnection bounds the calls in flight on one connection (HTTP/2
	// SETTINGS_MAX_CONCURRENT_STREAMS).
	MaxStreamsPerConnection uint32
	// MaxCallDuration bounds a unary call of the API from the arrival of its headers to
	// its answer, the reading of its request included: a client that sends headers, or
	// half a message, and stops gets DEADLINE_EXCEEDED and its stream is reset, freeing
	// what it held. A client's own shorter deadline still applies.
	MaxCallDuration time.Duration
	// HandshakeTimeout bounds a new connection's TLS handshake and HTTP/2 preface.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that has had no call for that long.
	IdleTimeout time.Duration
	// KeepaliveMinInterval is the shortest interval between a client's keepalive
	// pings the server accepts; a client that pings more often is disconnected.
	KeepaliveMinInterval time.Duration
	// MaxConnectionAge closes a connection (GOAWAY, then the client reconnects)
	// once it is that old, give or take grpc-go's 10% jitter. A client keeps a
	// connection for as long as it works, and resolves the servers' addresses again
	// only when one closes: without an age limit, replicas added by a scale-out get
	// no traffic from clients already connected, and a replica's share never
	// rebalances after a restart.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long calls in flight on a connection past its age
	// may still finish before it is cut; new calls already go to the new connection.
	// The default, MaxCallDuration, lets every unary call finish.
	MaxConnectionAgeGrace time.Duration
	// MaxPipelineInFlight bounds the items in flight on one PipelineService stream,
	// from their arrival to the sending of their response (pipeline.go).
	MaxPipelineInFlight int
}

// Defaults for Limits.
const (
	DefaultMaxConnections          = 1024
	DefaultMaxStreamsPerConnection = 128
	DefaultMaxCallDuration         = 2 * time.Minute
	DefaultHandshakeTimeout        = 10 * time.Second
	DefaultIdleTimeout             = 15 * time.Minute
	DefaultKeepaliveMinInterval    = 10 * time.Second
	// DefaultMaxConnectionAge: a scaled-out replica receives its share within about
	// five minutes; a reconnect costs one TLS handshake per client connection, which
	// at the default 1024 connections is a few handshakes a second per replica.
	DefaultMaxConnectionAge    = 5 * time.Minute
	DefaultMaxPipelineInFlight = 64
)

func (l Limits) withDefaults() Limits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxStreamsPerConnection == 0 {
		l.MaxStreamsPerConnection = DefaultMaxStreamsPerConnection
	}
	if l.MaxCallDuration <= 0 {
		l.MaxCallDuration = DefaultMaxCallDuration
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.KeepaliveMinInterval <= 0 {
		l.KeepaliveMinInterval = DefaultKeepaliveMinInterval
	}
	if l.MaxConnectionAge <= 0 {
		l.MaxConnectionAge = DefaultMaxConnectionAge
	}
	if l.MaxConnectionAgeGrace <= 0 {
		l.MaxConnectionAgeGrace = l.MaxCallDuration
	}
	if l.MaxPipelineInFlight <= 0 {
		l.MaxPipelineInFlight = DefaultMaxPipelineInFlight
	}
	return l
}

// limitOptions are the grpc server options that enforce l.
func (s *Server) limitOptions() []grpc.ServerOption {
	l := s.limits
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(l.MaxStreamsPerConnection),
		grpc.ConnectionTimeout(l.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: l.IdleTimeout,
			MaxConnectionAge: l.MaxConnectionAge, MaxConnectionAgeGrace: l.MaxConnectionAgeGrace}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.KeepaliveMinInterval, PermitWithoutStream: true}),
		grpc.InTapHandle(s.boundCall),
	}
}

// limitListener bounds the connections served from lis at once.
func (s *Server) limitListener(lis net.Listener) net.Listener {
	return netutil.LimitListener(lis, s.limits.MaxConnections)
}

// boundCall runs when a call's headers arrive, before its request is read, and gives
// the unary calls of the API their MaxCallDuration. The deadline's timer needs no
// cancel: the stream's context, its parent, is cancelled when the call ends, which
// stops it. grpc-go runs this while holding its connection's lock, so it does no more
// than that.
func (s *Server) boundCall(ctx context.Context, info *tap.Info) (context.Context, error) {
	if !s.unary[info.FullMethodName] {
		return ctx, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.limits.MaxCallDuration)
	_ = cancel
	return ctx, nil
}
