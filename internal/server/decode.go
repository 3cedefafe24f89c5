package server

import (
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec requestCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
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
