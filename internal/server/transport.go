package server

import (
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"

	"signsvr.dev/signsvr/internal/coalesce"
)

// The transport tuning: the two pieces of the server that reach below grpc-go's
// public, stable API, kept here and behind one switch (Options.StockTransport) so
// that each can be measured against stock grpc-go and removed when it stops paying.
//
//   - Request and response buffers come from bufferPool (bufpool.go), which has a
//     tier at every power of two and does not clear what it hands out; grpc-go's
//     default pool has five coarse tiers and clears a buffer's whole capacity on
//     every Get. It is installed with experimental.BufferPool and, because grpc-go's
//     proto codec reads only the process default, experimental.SetDefaultBufferPool:
//     once one tuned server starts, the whole process uses it. BenchmarkBufferPool
//     compares the two pools.
//   - Accepted connections are coalesce.Conn, which joins the responses that
//     handlers finish together into one write system call. BenchmarkWrites in
//     internal/coalesce compares it with writing to the connection directly.
//
// grpc.SharedWriteBuffer, once part of this list, is left out: grpc-go shares write
// buffers by default now and has deprecated the option.

// transportOptions are the grpc server options of the tuning.
func (s *Server) transportOptions() []grpc.ServerOption {
	if s.stockTransport {
		return nil
	}
	return tunedOptions()
}

func tunedOptions() []grpc.ServerOption {
	return []grpc.ServerOption{experimental.BufferPool(useBufferPool())}
}

// listener wraps lis as the tuning wants its connections.
func (s *Server) listener(lis net.Listener) net.Listener {
	if s.stockTransport {
		return lis
	}
	return tunedListener(lis)
}

func tunedListener(lis net.Listener) net.Listener { return coalesce.Listener{Listener: lis} }

// wireOptions shape how a call's bytes move, tuning or not: the HTTP/2 windows, the
// message sizes and the codec.
func wireOptions(maxMsg int, codec *requestCodec) []grpc.ServerOption {
	return []grpc.ServerOption{
		// Static HTTP/2 windows (limits.go): what a call may send before the server
		// reads it is part of the budget of request bytes in flight.
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connectionWindow),
		grpc.MaxRecvMsgSize(maxMsg),
		// A response may be a little larger than its request (an envelope around a
		// document, a verification carrying content and certificates).
		grpc.MaxSendMsgSize(maxMsg + 1<<20),
		grpc.ForceServerCodecV2(pipelineCodec{streamCodec{codec}}), // stream_codec.go, pipeline.go
	}
}

// Bare is the transport of a server New makes from default Options, without the
// server: the grpc options that move bytes (windows, message sizes, stream workers,
// the codec with its pooled stream chunks, the buffer pool), the wrapper of its
// listener, and the release of a received chunk to the codec's pool. A grpc server
// built with them and a StreamService that does no work measures the ceiling the
// real StreamService can reach on a machine (bench/streambench).
type Bare struct {
	Options  []grpc.ServerOption
	Listener func(net.Listener) net.Listener
	// ReleaseChunk gives back the chunk of a request message once it is used.
	ReleaseChunk func([]byte)
}

// BareTransport returns the server's transport alone.
func BareTransport() Bare {
	opts := append([]grpc.ServerOption{grpc.NumStreamWorkers(streamWorkers())},
		wireOptions(DefaultMaxMessageBytes, newRequestCodec(nil))...)
	return Bare{Options: append(opts, tunedOptions()...), Listener: tunedListener, ReleaseChunk: releaseChunk}
}
