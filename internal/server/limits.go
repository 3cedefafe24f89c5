package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/tap"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
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
	// MaxInflightBytes is the server-wide budget of request bytes in flight: every
	// call of the API holds streamWindow bytes of it from the arrival of its headers
	// to its end (what the client may send before the server reads), and the size of
	// its request message from the moment the message's length prefix arrives, before
	// its body is read, until the call's answer is written; a StreamService call
	// holds what it buffers (streamHeldBytes) from its start to its end. A call that cannot have
	// its share at once is refused with RESOURCE_EXHAUSTED: nothing waits for the
	// budget, so nothing queues. An eighth of it is kept for requests that fit in
	// streamWindow, so that large requests cannot starve small ones. It must leave
	// room for one request of the largest size (Options.MaxMessageBytes).
	//
	// The default fits a 512 MiB container. A request costs up to three times its
	// size while it is decoded (the received frames, one contiguous copy, the decoded
	// message) and about as much while it is answered (decoded message, result,
	// encoded response), so requests take at most 3 × 96 MiB = 288 MiB; each
	// connection costs up to about 100 KiB of its own (read buffer, HPACK tables, TLS
	// records, three goroutines), 100 MiB for the default 1024; the process itself
	// (code, caches, pools) about 40 MiB: 428 MiB in all.
	MaxInflightBytes int64
	// RequestReadTimeout bounds the arrival of a request, from its headers to the
	// last byte of its message: a client that sends headers only, or part of its
	// message, and stops gets DEADLINE_EXCEEDED and gives back its share of
	// MaxInflightBytes then, not at MaxCallDuration.
	RequestReadTimeout time.Duration
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
	DefaultMaxInflightBytes        = 96 << 20
	DefaultRequestReadTimeout      = 15 * time.Second
	// DefaultMaxConnectionAge: a scaled-out replica receives its share within about
	// five minutes; a reconnect costs one TLS handshake per client connection, which
	// at the default 1024 connections is a few handshakes a second per replica.
	DefaultMaxConnectionAge    = 5 * time.Minute
	DefaultMaxPipelineInFlight = 64
)

// streamWindow is the HTTP/2 flow-control window of every stream (static: grpc-go's
// dynamic window estimation is off): what a client may send on a call before the
// server asks for more. A 64 KiB document (or a batch of them) arrives in one flight.
// It is also what each call of the API holds of MaxInflightBytes before its message's
// length is known. The connection window is larger, so one call's window never
// holds up the other calls of its connection; it bounds nothing, since grpc-go
// grants it again as data arrives, whether or not the call has read it.
const (
	streamWindow     = 128 << 10
	connectionWindow = 8 << 20
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
	if l.MaxInflightBytes <= 0 {
		l.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if l.RequestReadTimeout <= 0 {
		l.RequestReadTimeout = DefaultRequestReadTimeout
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

// check refuses a budget that could never admit a request of the largest size.
func (l Limits) check(maxMsg int) error {
	if large := l.MaxInflightBytes - smallShare(l.MaxInflightBytes); large < int64(maxMsg)+streamWindow {
		return fmt.Errorf("server: limits: max_inflight_bytes %d leaves %d bytes for large requests, less than max_message_bytes %d plus %d",
			l.MaxInflightBytes, large, maxMsg, streamWindow)
	}
	return nil
}

// smallShare is the part of a budget only requests that fit in streamWindow may use.
func smallShare(budget int64) int64 { return budget / 8 }

// byteBudget is a count of bytes reserved against a limit. It never waits: take
// either reserves at once or refuses.
type byteBudget struct {
	limit, small int64
	used         atomic.Int64
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, small: smallShare(limit)}
}

// take reserves n bytes if they fit, keeping the small share free unless small.
func (b *byteBudget) take(n int64, small bool) bool {
	limit := b.limit
	if !small {
		limit -= b.small
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *byteBudget) give(n int64) { b.used.Add(-n) }

// InflightBytes is how much of Limits.MaxInflightBytes calls hold now.
func (s *Server) InflightBytes() int64 { return s.budget.used.Load() }

// errBusy is the answer to a call refused for want of budget.
func errBusy(what string) *Error {
	return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_BACKEND_BUSY,
		"server busy: request bytes in flight at limit; retry later", errors.New(what))
}

// errBodyTimeout is the cause of a call's context when its request did not arrive
// within RequestReadTimeout.
var errBodyTimeout = errors.New("the request did not arrive within the read timeout")

// admission is what boundCall gave a call: its read timer, stopped once the request
// has arrived.
type admission struct{ read *time.Timer }

type admissionKey struct{}

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
// the unary calls of the API their MaxCallDuration, their RequestReadTimeout and
// their streamWindow of the budget, which the call gives back when its stream ends,
// however it ends. A call refused here is answered RESOURCE_EXHAUSTED before any of
// its message is read. The timers need no cancel: the stream's context, their parent,
// is cancelled when the call ends, which stops them. grpc-go runs this while holding
// its connection's lock, so it does no more than that.
func (s *Server) boundCall(ctx context.Context, info *tap.Info) (context.Context, error) {
	if !s.unary[info.FullMethodName] {
		return ctx, nil
	}
	if !s.budget.take(streamWindow, true) {
		return nil, errBusy("no budget for a new call's window").status("")
	}
	stream := ctx
	ctx, cancel := context.WithTimeout(ctx, s.limits.MaxCallDuration)
	_ = cancel
	ctx, cancelRead := context.WithCancelCause(ctx)
	a := &admission{read: time.AfterFunc(s.limits.RequestReadTimeout, func() { cancelRead(errBodyTimeout) })}
	context.AfterFunc(stream, func() {
		a.read.Stop()
		s.budget.give(streamWindow)
	})
	return context.WithValue(ctx, admissionKey{}, a), nil
}
