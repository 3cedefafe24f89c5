package server

import (
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"

	"signsvr.dev/signsvr/internal/coalesce"
)

// The transport tuning: the pieces of the server that reach below grpc-go's public,
// stable API or change its defaults, kept here and behind one switch
// (Options.StockTransport) so that each can be measured against stock grpc-go and
// removed when it stops paying.
// Each was measured again with the pipelined stream in place, on the real server
// pinned to one core, with loadgen (bench/cmd/loadgen) on the other, 1 KiB P-256
// Sign and Verify unary, in batches of 64 and pipelined (4 streams of 32 items in
// flight), and 64 KiB unary Sign; the variants were run interleaved, seven to
// fifteen times each, on a machine other work shared.
// Each pays on some paths only, and costs nothing measurable on the others:
//
//   - Request and response buffers come from bufferPool (bufpool.go), which has a
//     tier at every power of two and does not clear what it hands out; grpc-go's
//     default pool has five coarse tiers and clears a buffer's whole capacity on
//     every Get. It is installed with experimental.BufferPool and, because grpc-go's
//     proto codec reads only the process default, experimental.SetDefaultBufferPool:
//     once one tuned server starts, the whole process uses it. It pays on large
//     messages: a 64 KiB Sign costs 55–123 µs (median 80, a third) less server CPU
//     with it, a batch of 64 1 KiB documents (a 70 KiB message) up to 10 µs an item
//     less (median 1); on 1 KiB unary and pipelined items the difference is within
//     noise.
//     BenchmarkBufferPool compares the two pools.
//   - Accepted connections are coalesce.Conn, which joins the responses that
//     handlers finish together into one write system call. It pays on pipelined
//     streams: 0.09 write calls per item instead of 0.72, and 3–6 µs (a tenth) less
//     server CPU per pipelined Sign in six runs of seven; on unary calls it saves a quarter of the writes
//     (0.31 a call instead of 0.43) with CPU and p99 within noise, and on batches and
//     64 KiB documents, whose writes are large, it changes nothing. The coalesce
//     package doc has the figures; BenchmarkWrites there counts the system calls.
//   - The transport's write buffer is writeBufferSize instead of grpc-go's 32 KiB, so
//     a 64 KiB response leaves in one write instead of three (1.15 write calls a
//     64 KiB Sign instead of 2.7, 2.0 a batch of 64 instead of 5.2). A 64 KiB Sign
//     costs about 5 % less server CPU with it (-17 to +7 µs, median -12, lower in 6
//     runs of 8) and its p99 was lower in 6 of 8; 1 KiB unary, batched and pipelined
//     items are within noise. grpc-go takes the buffer from a shared pool only while a
//     connection writes, so idle connections hold none (the server's RSS did not move).
//     A larger read buffer (grpc.ReadBufferSize) was measured too and left out: it
//     saves read calls but no CPU, and grpc-go keeps one per connection.
//
// grpc.SharedWriteBuffer, once part of this list, is left out: grpc-go shares write
// buffers by default now and has deprecated the option.

// writeBufferSize is the transport's write buffer: a 64 KiB document and its framing
// in one write.
const writeBufferSize = 128 << 10

// transportOptions are the grpc server options of the tuning.
func (s *Server) transportOptions() []grpc.ServerOption {
	if s.stockTransport {
		return nil
	}
	return tunedOptions()
}

func tunedOptions() []grpc.ServerOption {
	return []grpc.ServerOption{experimental.BufferPool(useBufferPool()), grpc.WriteBufferSize(writeBufferSize)}
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
// the codec with its pooled stream chunks, the buffer pool, the write buffer), the wrapper of its
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
