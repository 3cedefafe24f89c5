package protocodec_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/protocodec"
)

// stock is grpc-go's own proto codec, the reference.
var stock = encoding.GetCodecV2("proto")

// apiMessages is every message of the API's generated code.
func apiMessages(t testing.TB) []protoreflect.MessageType {
	var out []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if strings.HasPrefix(string(mt.Descriptor().FullName()), "signsvr.v1.") {
			out = append(out, mt)
		}
		return true
	})
	if len(out) < 50 {
		t.Fatalf("only %d API messages registered", len(out))
	}
	return out
}

// fill sets every field of m to a value that is not the default, taking for each
// oneof the member at index variant (modulo its size), down to depth 4.
func fill(m protoreflect.Message, r *rand.Rand, variant, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if od.Fields().Get(variant%od.Fields().Len()) != fd {
				continue
			}
		}
		if fd.Message() != nil && depth >= 4 {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 1 + r.IntN(3) {
				if fd.Message() != nil {
					e := l.NewElement()
					fill(e.Message(), r, variant+1, depth+1)
					l.Append(e)
				} else {
					l.Append(scalar(fd, r))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range 1 + r.IntN(3) {
				k := scalar(fd.MapKey(), r).MapKey()
				if fd.MapValue().Message() != nil {
					v := mp.NewValue()
					fill(v.Message(), r, variant+1, depth+1)
					mp.Set(k, v)
				} else {
					mp.Set(k, scalar(fd.MapValue(), r))
				}
			}
		case fd.Message() != nil:
			fill(m.Mutable(fd).Message(), r, variant+1, depth+1)
		default:
			m.Set(fd, scalar(fd, r))
		}
	}
}

// scalar is a random non-default value of fd's kind.
func scalar(fd protoreflect.FieldDescriptor, r *rand.Rand) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(r.IntN(vals.Len())).Number() | 0)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(r.Uint32()) | 1)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(r.Uint64()) | 1)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(r.Uint32() | 1)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(r.Uint64() | 1)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(r.Float32() + 1)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(r.Float64() + 1)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("s-%d-é", r.IntN(1000)))
	case protoreflect.BytesKind:
		b := make([]byte, 1+r.IntN(300))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return protoreflect.ValueOfBytes(b)
	}
	panic(fmt.Sprintf("kind %v", fd.Kind()))
}

// maxOneof is the size of the largest oneof of md, to try each member.
func maxOneof(md protoreflect.MessageDescriptor) int {
	n := 1
	for i := range md.Oneofs().Len() {
		n = max(n, md.Oneofs().Get(i).Fields().Len())
	}
	return n
}

// TestRoundTrip: every API message, filled in every oneof member and left empty, has
// the generated methods, encodes to the size it reports, and comes back equal through
// each pairing of this codec and grpc-go's (either one encoding, either decoding).
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	codec := protocodec.New()
	for _, mt := range apiMessages(t) {
		name := string(mt.Descriptor().FullName())
		if _, ok := mt.New().Interface().(protocodec.Message); !ok {
			t.Errorf("%s has no generated vtproto methods", name)
			continue
		}
		for variant := range maxOneof(mt.Descriptor()) + 1 {
			m := mt.New()
			if variant > 0 {
				fill(m, r, variant-1, 0)
			}
			msg := m.Interface()
			if got, want := msg.(protocodec.Message).SizeVT(), proto.Size(msg); got != want {
				t.Errorf("%s/%d: SizeVT %d, proto.Size %d", name, variant, got, want)
			}
			for _, pair := range []struct {
				name     string
				enc, dec encoding.CodecV2
			}{{"vt-vt", codec, codec}, {"vt-stock", codec, stock}, {"stock-vt", stock, codec}} {
				data, err := pair.enc.Marshal(msg)
				if err != nil {
					t.Fatalf("%s/%d %s: marshal: %v", name, variant, pair.name, err)
				}
				got := mt.New().Interface()
				err = pair.dec.Unmarshal(data, got)
				data.Free()
				if err != nil {
					t.Fatalf("%s/%d %s: unmarshal: %v", name, variant, pair.name, err)
				}
				if !proto.Equal(got, msg) {
					t.Errorf("%s/%d %s: round trip differs:\n got %v\nwant %v", name, variant, pair.name, got, msg)
				}
			}
		}
	}
}

// TestLargeMessage: a message above grpc-go's buffer pooling threshold is encoded into
// a pooled buffer and decodes equal.
func TestLargeMessage(t *testing.T) {
	msg := &signsvrv1.SignRequest{Key: "k", Data: make([]byte, 256<<10)}
	msg.Data[0], msg.Data[len(msg.Data)-1] = 1, 2
	data, err := protocodec.New().Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := data.Materialize(); string(got) != string(want) {
		t.Fatalf("encoding differs from proto.Marshal (%d vs %d bytes)", len(got), len(want))
	}
	var got signsvrv1.SignRequest
	if err := protocodec.New().Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	data.Free()
	if !proto.Equal(&got, msg) {
		t.Fatal("decoded message differs")
	}
}

// TestRefusals: what grpc-go's codec refuses, this codec refuses, and leaves the
// message empty.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  func() proto.Message
		b    []byte
	}{
		{"invalid UTF-8 in a string", func() proto.Message { return new(signsvrv1.SignRequest) }, []byte{0x0a, 0x02, 0xc3, 0x28}},
		{"invalid UTF-8 nested", func() proto.Message { return new(signsvrv1.PipelineRequest) }, []byte{0x08, 0x01, 0x52, 0x04, 0x0a, 0x02, 0xff, 0xfe}},
		{"invalid UTF-8 in a batch item", func() proto.Message { return new(signsvrv1.SignBatchRequest) }, []byte{0x0a, 0x03, 0x0a, 0x01, 0x80}},
		{"truncated length", func() proto.Message { return new(signsvrv1.SignRequest) }, []byte{0x0a, 0x05, 'a'}},
		{"truncated varint", func() proto.Message { return new(signsvrv1.PipelineRequest) }, []byte{0x08, 0x80}},
		{"field number 0", func() proto.Message { return new(signsvrv1.PipelineRequest) }, []byte{0x00, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := proto.Unmarshal(tc.b, tc.msg()); err == nil {
				t.Fatalf("protobuf-go accepts % x", tc.b)
			}
			got := tc.msg()
			if err := protocodec.UnmarshalVT(tc.b, got.(protocodec.Message)); err == nil {
				t.Fatalf("accepted % x: %v", tc.b, got)
			}
			if !proto.Equal(got, tc.msg()) {
				t.Fatalf("not reset after a refusal: %v", got)
			}
		})
	}
}

// TestFallback: a message without generated methods goes to grpc-go's codec.
func TestFallback(t *testing.T) {
	msg := durationpb.New(3 * time.Second)
	if _, ok := any(msg).(protocodec.Message); ok {
		t.Fatal("durationpb has vtproto methods: pick another message")
	}
	data, err := protocodec.New().Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Free()
	var got durationpb.Duration
	if err := protocodec.New().Unmarshal(data, &got); err != nil || !proto.Equal(&got, msg) {
		t.Fatalf("%v %v", &got, err)
	}
}
