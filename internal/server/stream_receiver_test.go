package server

import (
	"context"
	"io"
	"testing"
	"testing/synctest"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// TestReceiverReadsAheadOnlyChunks: the receiver reads up to readAhead chunks
// before they are asked for, and nothing past a message that is not a chunk of at
// most MaxStreamChunk bytes until asked.
func TestReceiverReadsAheadOnlyChunks(t *testing.T) {
	chunk := func(n int) *signsvrv1.SignStreamRequest {
		return &signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Chunk{Chunk: make([]byte, n)}}
	}
	opts := &signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Options{Options: &signsvrv1.SignStreamOptions{}}}
	end := &signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_End{End: &signsvrv1.StreamEnd{}}}
	for _, tc := range []struct {
		name string
		msgs []*signsvrv1.SignStreamRequest
		// reads[i] is how many messages the receiver has read once the handler
		// took i of them and the goroutines rest.
		reads []int
	}{
		{"options wait to be asked", []*signsvrv1.SignStreamRequest{opts, chunk(10), chunk(10)}, []int{0, 1}},
		{"chunks are read ahead", []*signsvrv1.SignStreamRequest{opts, chunk(10), chunk(10), chunk(10), chunk(10), chunk(10), chunk(10), chunk(10), end},
			// after the first chunk, readAhead more
			[]int{0, 1, 2 + readAhead}},
		{"nothing after the end", []*signsvrv1.SignStreamRequest{opts, chunk(10), end, chunk(10)}, []int{0, 1, 3, 3, 4}},
		{"nothing after an oversized chunk", []*signsvrv1.SignStreamRequest{opts, chunk(10), chunk(MaxStreamChunk + 1), chunk(10)}, []int{0, 1, 3, 3, 4}},
		{"nothing after an empty chunk", []*signsvrv1.SignStreamRequest{opts, chunk(10), chunk(0), chunk(10)}, []int{0, 1, 3, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				read := 0
				recv := receiver(&streamCall{ctx: ctx}, func() (*signsvrv1.SignStreamRequest, error) {
					if read == len(tc.msgs) {
						<-ctx.Done()
						return nil, io.EOF
					}
					read++
					return tc.msgs[read-1], nil
				})
				for i, want := range tc.reads {
					if i > 0 {
						m, err := recv()
						if err != nil || m != tc.msgs[i-1] {
							t.Fatalf("message %d: %v, %v; want %v", i-1, m, err, tc.msgs[i-1])
						}
					}
					synctest.Wait()
					if read != want {
						t.Fatalf("after %d messages taken: %d read, want %d", i, read, want)
					}
				}
				cancel()
			})
		})
	}
}
