package server

import (
	"testing"

	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// FuzzPipelineFrame: any bytes as a pipeline frame decode without panicking, into
// either a request or an error; the id read from bytes that decode is the request's,
// and a request that decodes maps to an operation or to none, never to a panic.
func FuzzPipelineFrame(f *testing.F) {
	for _, m := range []*signsvrv1.PipelineRequest{
		{Id: 1, Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "sm2-sign", Data: []byte("x")}}},
		{Id: 1 << 40, Request: &signsvrv1.PipelineRequest_Verify{Verify: &signsvrv1.VerifyRequest{Cms: []byte{0x30, 0x81}}}},
		{Id: 3, Request: &signsvrv1.PipelineRequest_Decrypt{Decrypt: &signsvrv1.DecryptRequest{Key: "k"}}},
		{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x08, 0x07, 0x52, 0x01, 0xff})
	f.Add([]byte{0x08, 0x07, 0x08, 0x09, 0x0a})
	f.Add([]byte{0x08})
	p := &pipelineService{}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr pipelineFrame
		fr.decode(b)
		if fr.err != nil {
			if fr.id != scanPipelineID(b) {
				t.Fatalf("id %d, scan %d", fr.id, scanPipelineID(b))
			}
			return
		}
		if fr.id != fr.req.GetId() {
			t.Fatalf("id %d, request's %d", fr.id, fr.req.GetId())
		}
		if s := scanPipelineID(b); s != fr.id {
			t.Fatalf("scan %d of a request with id %d", s, fr.id)
		}
		op, req := p.target(fr.req)
		if (op == nil) != (req == nil) || (op == nil) != (fr.req.GetRequest() == nil) {
			t.Fatalf("target of %v: %v %v", fr.req, op, req)
		}
	})
}
