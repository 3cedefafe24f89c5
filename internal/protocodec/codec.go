// Package protocodec is a gRPC codec for protobuf messages that uses the
// reflection-free methods protoc-gen-go-vtproto generates (gen/…/*_vtproto.pb.go)
// where a message has them, and grpc-go's own proto codec for every other message.
//
// Why: grpc-go's codec marshals and unmarshals through protobuf-go's table-driven
// reflection; the generated methods do the same work in straight-line code, with
// fewer allocations on the server's hot requests and responses. The encoding is the
// same (the codec registers under grpc-go's name, "proto"); only the CPU spent
// differs.
//
// Decoding differs from protobuf-go in one respect, which Unmarshal closes: the
// generated code does not check that string fields hold valid UTF-8, which proto3
// requires and protobuf-go enforces. Unmarshal checks it after decoding, so a message
// is accepted or refused as grpc-go's codec would, with one exception: the generated
// code refuses a known field sent with a wire type other than its own, which
// protobuf-go keeps as an unknown field. Such a message is malformed; the server
// answers it INVALID_ARGUMENT like any other.
package protocodec

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the fallback for messages without generated methods
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Name is the codec's content subtype, that of grpc-go's proto codec.
const Name = "proto"

// Message is what protoc-gen-go-vtproto generates for a message (features marshal,
// unmarshal and size).
type Message interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
}

// Codec is the codec; its zero value is ready to use.
type Codec struct{}

var fallback = encoding.GetCodecV2(Name)

// New returns the codec.
func New() encoding.CodecV2 { return Codec{} }

// Name implements encoding.CodecV2.
func (Codec) Name() string { return Name }

// Marshal implements encoding.CodecV2: as grpc-go's codec, a message below grpc-go's
// pooling threshold gets a buffer of its own, a larger one a buffer from the default
// pool.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(Message)
	if !ok {
		return fallback.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal implements encoding.CodecV2. The message's bytes fields are copies: data
// may be reused as soon as it returns.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(Message)
	if !ok {
		return fallback.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return UnmarshalVT(buf.ReadOnlyData(), m)
}

// UnmarshalVT decodes b into m, which must be empty, as proto.Unmarshal would: on
// failure m is reset.
func UnmarshalVT(b []byte, m Message) error {
	err := m.UnmarshalVT(b)
	pm, isProto := m.(proto.Message)
	if err == nil && isProto {
		err = checkUTF8(b, pm.ProtoReflect().Descriptor(), 0)
	}
	if err != nil {
		if isProto {
			proto.Reset(pm)
		}
		return fmt.Errorf("proto: %w", err)
	}
	return nil
}

var errUTF8 = errors.New("string field contains invalid UTF-8")

// maxDepth bounds the recursion of checkUTF8 as protobuf-go bounds its decoding.
const maxDepth = 10000

// checkUTF8 reports a proto3 string field in the encoding b of a message md (or of a
// message within it) that is not valid UTF-8. It walks the encoding, which the
// generated code has just decoded without error, rather than the decoded message:
// that allocates nothing and skips bytes fields by their length.
func checkUTF8(b []byte, md protoreflect.MessageDescriptor, depth int) error {
	if depth > maxDepth {
		return errors.New("exceeded maximum recursion depth")
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd == nil {
			continue
		}
		if fd.IsMap() {
			if err := checkUTF8(v, fd.Message(), depth+1); err != nil {
				return err
			}
			continue
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			if fd.Syntax() == protoreflect.Proto3 && !utf8.Valid(v) {
				return fmt.Errorf("field %s: %w", fd.FullName(), errUTF8)
			}
		case protoreflect.MessageKind:
			if err := checkUTF8(v, fd.Message(), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
