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
	return []grpc.ServerOption{experimental.BufferPool(useBufferPool())}
}

// listener wraps lis as the tuning wants its connections.
func (s *Server) listener(lis net.Listener) net.Listener {
	if s.stockTransport {
		return lis
	}
	return coalesce.Listener{Listener: lis}
}
