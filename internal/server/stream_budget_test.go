package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
	"signsvr.dev/signsvr/internal/streamclient"
)

// TestStreamsHoldTheirBuffersOfTheBudget: every stream call holds what it buffers
// of the server's budget of request bytes in flight for its whole life; a stream
// beyond the budget is refused RESOURCE_EXHAUSTED at once, as a unary call is,
// while small unary calls keep their share; the budget comes back when the streams
// end, and the server stays SERVING.
func TestStreamsHoldTheirBuffersOfTheBudget(t *testing.T) {
	ts := startServer(t, func(o *server.Options) {
		o.MaxMessageBytes = 4 << 20
		o.Limits.MaxInflightBytes = 8 << 20 // 7 MiB for large requests: two streams
	})
	if 2*server.StreamHeldBytes > 7<<20 || 3*server.StreamHeldBytes <= 7<<20 {
		t.Fatalf("a stream holds %d bytes: the test's budget does not fit two exactly", server.StreamHeldBytes)
	}
	sc := ts.streams()
	// Two streams that sent their options and a chunk, and wait.
	var held []context.CancelFunc
	for range 2 {
		ctx, cancel := context.WithCancel(ctxT(t))
		t.Cleanup(cancel)
		st, err := sc.SignStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Options{Options: &signsvrv1.SignStreamOptions{Key: "ecdsa-sign"}}}); err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Chunk{Chunk: streamContent(1 << 20)}}); err != nil {
			t.Fatal(err)
		}
		held = append(held, cancel)
	}
	eventually(t, "the two streams hold their buffers", func() bool { return ts.srv.InflightBytes() >= 2*server.StreamHeldBytes })

	// A third one is refused, whatever it carries.
	_, err := streamclient.Sign(ctxT(t), sc, &signsvrv1.SignStreamOptions{Key: "ecdsa-sign"}, bytes.NewReader([]byte("small")), io.Discard, nil)
	wantStatus(t, err, codes.ResourceExhausted, "BACKEND_BUSY")
	_, err = streamclient.Decrypt(ctxT(t), sc, &signsvrv1.DecryptStreamOptions{Key: "rsa-enc"}, bytes.NewReader([]byte("small")), io.Discard, nil)
	wantStatus(t, err, codes.ResourceExhausted, "BACKEND_BUSY")
	// Small unary calls keep their share.
	if _, err := ts.sign.Sign(ctxT(t), &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: []byte("x")}); err != nil {
		t.Fatalf("a small call while streams fill the budget: %v", err)
	}
	ts.assertServing(t)

	for _, cancel := range held {
		cancel()
	}
	eventually(t, "the streams give their buffers back", func() bool { return ts.srv.InflightBytes() == 0 })
	data := streamContent(3 << 20)
	var sig bytes.Buffer
	if _, err := streamclient.Sign(ctxT(t), sc, &signsvrv1.SignStreamOptions{Key: "ecdsa-sign"}, bytes.NewReader(data), &sig, nil); err != nil {
		t.Fatalf("a stream once the budget is back: %v", err)
	}
	eventually(t, "a finished stream gives its buffers back", func() bool { return ts.srv.InflightBytes() == 0 })
	ts.assertServing(t)
}

// TestStreamMessagesAreBoundedBeforeTheirBody: a stream message after the options
// that announces more than a chunk, and an options message over the server's
// message limit, are refused as soon as their length prefix arrives, before their
// body is asked for (the server would otherwise grant the window for the whole
// message and buffer it); what the calls held comes back.
func TestStreamMessagesAreBoundedBeforeTheirBody(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.MaxMessageBytes = 4 << 20 })
	r := dialRawH2(t, ts.addr)
	r.waitSettings(t)
	opts, err := proto.Marshal(&signsvrv1.SignStreamRequest{Msg: &signsvrv1.SignStreamRequest_Options{Options: &signsvrv1.SignStreamOptions{Key: "ecdsa-sign"}}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := func(n int) []byte {
		b := make([]byte, 5)
		binary.BigEndian.PutUint32(b[1:], uint32(n))
		return b
	}
	r.startCall(t, 1, "/signsvr.v1.StreamService/SignStream", 0, 0)
	if err := r.fr.WriteData(1, false, append(append(prefix(len(opts)), opts...), prefix(3<<20)...)); err != nil {
		t.Fatal(err)
	}
	r.startCall(t, 3, "/signsvr.v1.StreamService/SignStream", 0, 0)
	if err := r.fr.WriteData(3, false, prefix(5<<20)); err != nil {
		t.Fatal(err)
	}
	if got := r.waitEnd(t, 1, 3); got[1] != "3" || got[3] != "8" { // INVALID_ARGUMENT, RESOURCE_EXHAUSTED
		t.Fatalf("the calls ended with grpc-status %v, want 3 (a chunk over 1 MiB) and 8 (options over the limit)", got)
	}
	eventually(t, "the budget is given back", func() bool { return ts.srv.InflightBytes() == 0 })
	ts.assertServing(t)
}
