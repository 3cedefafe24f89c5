package server

// Received chunks without garbage.
//
// The proto codec copies a message's bytes fields into new slices, so a stream of
// 1 GiB in 256 KiB chunks leaves 4096 such slices to the collector, and the heap
// grows with them up to the memory limit. The request messages of StreamService
// that carry only a chunk (all but the first and the last) are decoded here
// instead, into buffers from a pool that the chunkReader gives back once the chunk
// is used (every consumer copies what it keeps). Anything else goes to the proto
// codec as before.

import (
	"sync"

	"google.golang.org/grpc/mem"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// streamCodec is the server's codec: requestCodec, with pooled stream chunks.
type streamCodec struct{ *requestCodec }

// chunkClasses are the capacities of the pooled chunk buffers; each holds a chunk
// of up to its size and the few bytes of its field header.
var chunkClasses = [...]int{64<<10 + 16, 256<<10 + 16, 1<<20 + 16}

var chunkPools [len(chunkClasses)]sync.Pool

func chunkClass(n int) int {
	for i, c := range chunkClasses {
		if n <= c {
			return i
		}
	}
	return -1
}

// releaseChunk gives a pooled chunk buffer back; others are left to the collector.
func releaseChunk(b []byte) {
	for i, c := range chunkClasses {
		if cap(b) == c {
			b = b[:0]
			chunkPools[i].Put(&b)
			return
		}
	}
}

// chunkOnly decodes data as a message whose only field is a chunk (field 2, bytes),
// into a pooled buffer; ok is false for any other message.
func chunkOnly(data mem.BufferSlice) ([]byte, bool) {
	n := data.Len()
	class := chunkClass(n)
	if n < 2 || class < 0 {
		return nil, false
	}
	var buf []byte
	if p, _ := chunkPools[class].Get().(*[]byte); p != nil {
		buf = (*p)[:n]
	} else {
		buf = make([]byte, n, chunkClasses[class])
	}
	data.CopyTo(buf)
	if buf[0] != 0x12 { // field 2, length-delimited
		releaseChunk(buf)
		return nil, false
	}
	var l, hdr int
	for i, shift := 1, 0; i < len(buf) && i < 6; i, shift = i+1, shift+7 {
		l |= int(buf[i]&0x7f) << shift
		if buf[i]&0x80 == 0 {
			hdr = i + 1
			break
		}
	}
	if hdr == 0 || hdr+l != n || l == 0 {
		releaseChunk(buf)
		return nil, false
	}
	copy(buf, buf[hdr:])
	return buf[:l], true
}

func (c streamCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *signsvrv1.SignStreamRequest:
		if b, ok := chunkOnly(data); ok {
			m.Msg = &signsvrv1.SignStreamRequest_Chunk{Chunk: b}
			return nil
		}
	case *signsvrv1.VerifyStreamRequest:
		if b, ok := chunkOnly(data); ok {
			m.Msg = &signsvrv1.VerifyStreamRequest_Chunk{Chunk: b}
			return nil
		}
	case *signsvrv1.EnvelopeStreamRequest:
		if b, ok := chunkOnly(data); ok {
			m.Msg = &signsvrv1.EnvelopeStreamRequest_Chunk{Chunk: b}
			return nil
		}
	case *signsvrv1.DecryptStreamRequest:
		if b, ok := chunkOnly(data); ok {
			m.Msg = &signsvrv1.DecryptStreamRequest_Chunk{Chunk: b}
			return nil
		}
	case *signsvrv1.SignAndEnvelopeStreamRequest:
		if b, ok := chunkOnly(data); ok {
			m.Msg = &signsvrv1.SignAndEnvelopeStreamRequest_Chunk{Chunk: b}
			return nil
		}
	case *signsvrv1.DecryptAndVerifyStreamRequest:
		if b, ok := chunkOnly(data); ok {
			m.Msg = &signsvrv1.DecryptAndVerifyStreamRequest_Chunk{Chunk: b}
			return nil
		}
	}
	return c.requestCodec.Unmarshal(data, v)
}
