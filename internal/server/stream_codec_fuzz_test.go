package server

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// FuzzChunkOnly: the pooled decoding of stream chunks accepts only what the proto
// codec decodes as a message holding that chunk alone.
func FuzzChunkOnly(f *testing.F) {
	for _, m := range []*signsvrv1.DecryptStreamRequest{
		{Msg: &signsvrv1.DecryptStreamRequest_Chunk{Chunk: []byte("hello")}},
		{Msg: &signsvrv1.DecryptStreamRequest_Chunk{Chunk: bytes.Repeat([]byte{7}, 300)}},
		{Msg: &signsvrv1.DecryptStreamRequest_End{End: &signsvrv1.StreamEnd{Size: 5}}},
		{Msg: &signsvrv1.DecryptStreamRequest_Options{Options: &signsvrv1.DecryptStreamOptions{Key: "k"}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		chunk, ok := chunkOnly(mem.BufferSlice{mem.SliceBuffer(in)})
		if !ok {
			return
		}
		var m signsvrv1.DecryptStreamRequest
		if err := proto.Unmarshal(in, &m); err != nil {
			t.Fatalf("chunkOnly accepted what proto refuses: %v", err)
		}
		if !bytes.Equal(m.GetChunk(), chunk) || m.GetEnd() != nil || m.GetOptions() != nil {
			t.Fatalf("chunkOnly decoded %d bytes, proto %d", len(chunk), len(m.GetChunk()))
		}
		releaseChunk(chunk)
	})
}
