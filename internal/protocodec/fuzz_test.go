package protocodec_test

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/protocodec"
)

// requests are the messages the server decodes from clients on its hot paths.
var requests = []func() proto.Message{
	func() proto.Message { return new(signsvrv1.SignRequest) },
	func() proto.Message { return new(signsvrv1.VerifyRequest) },
	func() proto.Message { return new(signsvrv1.SignRawRequest) },
	func() proto.Message { return new(signsvrv1.VerifyRawRequest) },
	func() proto.Message { return new(signsvrv1.EnvelopeRequest) },
	func() proto.Message { return new(signsvrv1.DecryptRequest) },
	func() proto.Message { return new(signsvrv1.SignBatchRequest) },
	func() proto.Message { return new(signsvrv1.VerifyBatchRequest) },
	func() proto.Message { return new(signsvrv1.PipelineRequest) },
	func() proto.Message { return new(signsvrv1.SignAndEnvelopeRequest) },
	func() proto.Message { return new(signsvrv1.DecryptAndVerifyRequest) },
}

// FuzzUnmarshal: any bytes, decoded as any request message by the generated code,
// never panic; what it accepts, protobuf-go accepts too and decodes to an equal
// message, and what protobuf-go refuses it refuses (leaving the message empty). The
// generated code may refuse more: a known field sent with another wire type, which
// protobuf-go keeps as an unknown field.
func FuzzUnmarshal(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for kind, newMsg := range requests {
		m := newMsg()
		for variant := range maxOneof(m.ProtoReflect().Descriptor()) {
			m := newMsg()
			fill(m.ProtoReflect(), r, variant, 1)
			b, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(kind), b)
		}
	}
	f.Add(uint8(8), []byte{0x08, 0x07, 0x52, 0x01, 0xff})
	f.Add(uint8(0), []byte{0x0a, 0x02, 0xc3, 0x28})
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		newMsg := requests[int(kind)%len(requests)]
		ref, got := newMsg(), newMsg()
		refErr := proto.Unmarshal(b, ref)
		err := protocodec.UnmarshalVT(b, got.(protocodec.Message))
		switch {
		case err == nil && refErr != nil:
			t.Fatalf("%T: accepted what protobuf-go refuses (%v): %v", got, refErr, got)
		case err == nil && !proto.Equal(got, ref):
			t.Fatalf("%T: decoded\n%v\nprotobuf-go decoded\n%v", got, got, ref)
		case err != nil && !proto.Equal(got, newMsg()):
			t.Fatalf("%T: not reset after %v: %v", got, err, got)
		}
	})
}
