package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec requestCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// requestCodec is grpc-go's proto codec, except for the requests of the server's own
// unary methods: a request that does not decode is left empty and its error kept for
// the method wrapper (call), which answers it as it answers every other failure, with
// INVALID_ARGUMENT, a reason and the request id.
//
// Why a codec: grpc-go's server stream writes a bare INTERNAL status of its own the
// moment its codec fails, before the handler returns, so whatever status the handler
// returns afterwards never reaches the client. Only a codec that does not fail lets
// the server give the client the answer it logs.
type requestCodec struct {
	encoding.CodecV2
	// deferred are the request messages whose decoding errors go to the wrapper.
	deferred map[protoreflect.FullName]bool
	// failed maps a request message (a pointer, new for every call) to its error;
	// pending counts its entries, so that a call finds nothing to look up cheaply.
	failed  sync.Map
	pending atomic.Int64
}

// newRequestCodec defers the decoding errors of the requests of the API's unary
// methods.
func newRequestCodec(api []protoreflect.MethodDescriptor) *requestCodec {
	c := &requestCodec{CodecV2: encoding.GetCodecV2("proto"), deferred: map[protoreflect.FullName]bool{}}
	for _, m := range api {
		c.deferred[m.Input().FullName()] = true
	}
	return c
}

// unaryMethods lists the unary methods of the named services, from the registered
// descriptors of the generated code.
func unaryMethods(services ...string) []protoreflect.MethodDescriptor {
	var out []protoreflect.MethodDescriptor
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			panic("server: service " + name + " is not registered: " + err.Error())
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			if m := methods.Get(i); !m.IsStreamingClient() && !m.IsStreamingServer() {
				out = append(out, m)
			}
		}
	}
	return out
}

// Unmarshal decodes data into v; for a deferred request that does not decode, it
// resets v, keeps the error for takeFailure and reports success.
func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok || !c.deferred[m.ProtoReflect().Descriptor().FullName()] {
		return err
	}
	proto.Reset(m)
	c.failed.Store(v, err)
	c.pending.Add(1)
	return nil
}

// takeFailure returns, once, the decoding error kept for v, or nil.
func (c *requestCodec) takeFailure(v any) error {
	if c.pending.Load() == 0 {
		return nil
	}
	if err, ok := c.failed.LoadAndDelete(v); ok {
		c.pending.Add(-1)
		return err.(error)
	}
	return nil
}

// messageReader is what grpc-go's server transport stream offers below
// grpc.ServerTransportStream: the 5-byte prefix of a message (compressed flag and
// length), then its bytes. grpc-go's own receive reads both in one step, granting the
// client flow-control window for the whole message as soon as the prefix is in; a
// client can then make the server buffer a message of up to MaxMessageBytes however
// slowly it sends it. Reading the two steps here lets the server reserve the message's
// size of the budget between them, and refuse before the body is asked for.
type messageReader interface {
	ReadMessageHeader(header []byte) error
	Read(n int) (mem.BufferSlice, error)
	RecvCompress() string
}

// directReader returns the call's transport stream as a messageReader when its
// messages can be read in the two steps: grpc-go's own stream, and no compression.
func directReader(ctx context.Context) (messageReader, bool) {
	r, ok := grpc.ServerTransportStreamFromContext(ctx).(messageReader)
	if !ok {
		return nil, false
	}
	if c := r.RecvCompress(); c != "" && c != "identity" {
		return nil, false
	}
	return r, true
}

// messageLength is the length a message's 5-byte prefix announces. A message marked
// compressed on a call that names no compression is refused as malformed.
func messageLength(hdr [5]byte) (int64, error) {
	if hdr[0] != 0 {
		return 0, newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_MALFORMED_INPUT,
			"a message is marked compressed but the call names no compression", fmt.Errorf("compressed flag %d without grpc-encoding", hdr[0]))
	}
	return int64(binary.BigEndian.Uint32(hdr[1:])), nil
}

// readRequest decodes the request of a call of the API into v, holding its size of
// the budget in *held (the caller gives it back when the call ends). Without a
// messageReader (another grpc-go, a compressed request) it lets grpc-go read, then
// reserves what the message decoded to.
func (s *Server) readRequest(ctx context.Context, v any, dec func(any) error, held *int64) error {
	a, _ := ctx.Value(admissionKey{}).(*admission)
	r, ok := directReader(ctx)
	if ri := requestFrom(ctx); ri != nil && ri.decoded {
		ok = false
	}
	if !ok {
		err := dec(v)
		if a != nil {
			a.read.Stop()
		}
		if err != nil {
			return err
		}
		if err := s.codec.takeFailure(v); err != nil {
			return malformedRequest(err)
		}
		m, _ := v.(proto.Message)
		n := int64(proto.Size(m))
		if !s.budget.take(n, n <= streamWindow) {
			return errBusy(fmt.Sprintf("no budget for a decoded request of %d bytes", n))
		}
		*held = n
		return nil
	}
	var hdr [5]byte
	if err := r.ReadMessageHeader(hdr[:]); err != nil {
		return s.readFailed(ctx, err)
	}
	n, err := messageLength(hdr)
	if err != nil {
		return err
	}
	if n > int64(s.maxMsg) {
		return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
			fmt.Sprintf("the request of %d bytes is larger than the server's limit of %d", n, s.maxMsg), nil)
	}
	if !s.budget.take(n, n+5 <= streamWindow) {
		return errBusy(fmt.Sprintf("no budget for a request of %d bytes (%d in flight)", n, s.budget.used.Load()))
	}
	*held = n
	data, err := r.Read(int(n))
	if a != nil {
		a.read.Stop()
	}
	if err != nil {
		data.Free()
		return s.readFailed(ctx, err)
	}
	err = s.codec.CodecV2.Unmarshal(data, v)
	data.Free()
	if err != nil {
		if m, ok := v.(proto.Message); ok {
			proto.Reset(m)
		}
		return malformedRequest(err)
	}
	return nil
}

// readFailed is the answer to a request whose message did not arrive whole.
func (s *Server) readFailed(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errBodyTimeout) {
		return newError(codes.DeadlineExceeded, signsvrv1.ErrorReason_ERROR_REASON_DEADLINE,
			fmt.Sprintf("the request did not arrive within %v", s.limits.RequestReadTimeout), err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_MALFORMED_INPUT,
			"the request ended before its message did", err)
	}
	return err
}
