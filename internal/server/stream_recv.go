package server

// Receiving a stream's messages within what the stream holds of the budget.
//
// grpc-go's own receive grants the client flow-control window for a whole message
// (up to MaxMessageBytes) as soon as its length prefix arrives, and buffers it
// before the handler sees it: a stream whose holding of the budget covers one chunk
// could still make the server buffer a message of 64 MiB, and many streams many
// times that. streamRecv reads the prefix first, as readRequest does for a unary
// call: a message after the options larger than a chunk is refused before its body
// is asked for, and the options message (which may carry a detached SignedData or
// recipient certificates) holds its own size of the budget, as a unary request
// does, until the call ends.

import (
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// maxStreamMessage is the largest request message of a stream after its options:
// a chunk and its field header.
const maxStreamMessage = MaxStreamChunk + 16

// streamRecv returns the receive of ss's request messages, of type *M. Without a
// messageReader (another grpc-go, a compressed stream) it is grpc-go's receive,
// and the chunk bound holds only once a message has arrived.
func streamRecv[M any, PM interface {
	*M
	proto.Message
}](c *streamCall, ss grpc.ServerStream) func() (PM, error) {
	r, ok := directReader(ss.Context())
	first := true
	return func() (PM, error) {
		m := PM(new(M))
		if !ok {
			if err := ss.RecvMsg(m); err != nil {
				return nil, err
			}
			return m, nil
		}
		var hdr [5]byte
		if err := r.ReadMessageHeader(hdr[:]); err != nil {
			if err == io.EOF {
				return nil, io.EOF // the client half-closed
			}
			return nil, c.s.readFailed(c.ctx, err)
		}
		n, err := messageLength(hdr)
		if err != nil {
			return nil, err
		}
		switch {
		case first && n > int64(c.s.maxMsg):
			return nil, newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
				fmt.Sprintf("the options message of %d bytes is larger than the server's limit of %d", n, c.s.maxMsg), nil)
		case first:
			if !c.hold.add(n) {
				return nil, errBusy(fmt.Sprintf("no budget for a stream's options of %d bytes (%d in flight)", n, c.s.budget.used.Load()))
			}
		case n > maxStreamMessage:
			return nil, errStreamOrder("a message of %d bytes; a chunk is at most %d", n, MaxStreamChunk)
		}
		first = false
		data, err := r.Read(int(n))
		if err != nil {
			data.Free()
			return nil, c.s.readFailed(c.ctx, err)
		}
		err = streamCodec{c.s.codec}.Unmarshal(data, m)
		data.Free()
		if err != nil {
			return nil, malformedRequest(err)
		}
		return m, nil
	}
}
