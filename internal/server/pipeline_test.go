package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/durationpb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/internal/server"
)

// rawFrame is a message sent on a pipeline as it is: bytes that need not be a
// PipelineRequest.
type rawFrame []byte

// frameCodec is the proto codec, except that it sends rawFrame as is.
type frameCodec struct{ encoding.CodecV2 }

func (c frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawFrame); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// pipe is the client side of one pipeline stream.
type pipe struct {
	t      *testing.T
	stream grpc.ClientStream
	cancel context.CancelFunc
}

func openPipe(t *testing.T, ctx context.Context, cc *grpc.ClientConn) *pipe {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	desc := &signsvrv1.PipelineService_ServiceDesc.Streams[0]
	st, err := cc.NewStream(ctx, desc, signsvrv1.PipelineService_Pipeline_FullMethodName,
		grpc.ForceCodecV2(frameCodec{encoding.GetCodecV2("proto")}))
	if err != nil {
		t.Fatal(err)
	}
	return &pipe{t: t, stream: st, cancel: cancel}
}

func (p *pipe) send(m any) {
	p.t.Helper()
	if err := p.stream.SendMsg(m); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *pipe) recv() *signsvrv1.PipelineResponse {
	p.t.Helper()
	r := new(signsvrv1.PipelineResponse)
	if err := p.stream.RecvMsg(r); err != nil {
		p.t.Fatalf("recv: %v", err)
	}
	return r
}

// closeOK half-closes the stream and expects its end with OK.
func (p *pipe) closeOK() {
	p.t.Helper()
	if err := p.stream.CloseSend(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.stream.RecvMsg(new(signsvrv1.PipelineResponse)); !errors.Is(err, io.EOF) {
		p.t.Fatalf("stream end: %v, want OK", err)
	}
}

// itemStatus checks a response's error status as wantStatus checks a call's.
func itemStatus(t *testing.T, r *signsvrv1.PipelineResponse, code codes.Code, reason string) {
	t.Helper()
	if r.GetError() == nil {
		t.Fatalf("item %d succeeded (%v), want %v / %s", r.GetId(), r.GetResult(), code, reason)
	}
	wantStatus(t, status.FromProto(r.GetError()).Err(), code, reason)
}

// denyKey refuses every key operation with one key and allows everything else.
type denyKey string

func (d denyKey) Authorize(_ context.Context, _ *server.Identity, op server.Operation, key string) error {
	if server.IsKeyOperation(op) && key == string(d) {
		return &server.Error{Code: codes.PermissionDenied, Reason: signsvrv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			Msg: "the caller may not " + string(op) + " with key " + key}
	}
	return nil
}

// TestPipelineMixed: many items on one stream, of every kind, some failing for every
// sort of reason; each is answered once under its id with its own result or status,
// and the stream goes on.
func TestPipelineMixed(t *testing.T) {
	ts := startServer(t, func(o *server.Options) { o.Authorizer = denyKey("rsa-sign") })
	ctx := ctxT(t)
	data := []byte("pipelined declaration")
	signed, err := ts.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ts.sign.SignRaw(ctx, &signsvrv1.SignRawRequest{Key: "sm2-sign", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	env, err := ts.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"sm2-enc"}})
	if err != nil {
		t.Fatal(err)
	}

	type check func(t *testing.T, r *signsvrv1.PipelineResponse)
	fails := func(code codes.Code, reason string) check {
		return func(t *testing.T, r *signsvrv1.PipelineResponse) { itemStatus(t, r, code, reason) }
	}
	signs := func(t *testing.T, r *signsvrv1.PipelineResponse) {
		if len(r.GetSign().GetCms()) == 0 {
			t.Errorf("item %d: %v, want a signature", r.GetId(), r.GetResult())
			return
		}
		v, err := ts.sign.Verify(ctx, &signsvrv1.VerifyRequest{Cms: r.GetSign().GetCms()})
		if err != nil || !v.GetVerified() {
			t.Errorf("item %d: its signature does not verify: %v %v", r.GetId(), err, v)
		}
	}
	items := map[uint64]struct {
		req   any
		check check
	}{
		1: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "sm2-sign", Data: data}}}, signs},
		2: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "no-such-key", Data: data}}},
			fails(codes.NotFound, "KEY_NOT_FOUND")},
		3: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "rsa-sign", Data: data}}},
			fails(codes.PermissionDenied, "PERMISSION_DENIED")},
		4: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Verify{Verify: &signsvrv1.VerifyRequest{Cms: signed.GetCms()}}},
			func(t *testing.T, r *signsvrv1.PipelineResponse) {
				if !r.GetVerify().GetVerified() || string(r.GetVerify().GetContent()) != string(data) {
					t.Errorf("item 4: %v, want verified", r.GetResult())
				}
			}},
		5: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Verify{Verify: &signsvrv1.VerifyRequest{Cms: []byte{0x30, 0x81}}}},
			fails(codes.InvalidArgument, "MALFORMED_INPUT")},
		6: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_SignRaw{SignRaw: &signsvrv1.SignRawRequest{Key: "ecdsa-sign", Data: data}}},
			func(t *testing.T, r *signsvrv1.PipelineResponse) {
				if len(r.GetSignRaw().GetSignature()) == 0 {
					t.Errorf("item 6: %v, want a signature", r.GetResult())
				}
			}},
		7: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_VerifyRaw{VerifyRaw: &signsvrv1.VerifyRawRequest{Key: "sm2-sign", Data: data, Signature: raw.GetSignature()}}},
			func(t *testing.T, r *signsvrv1.PipelineResponse) {
				if !r.GetVerifyRaw().GetSignature().GetValid() {
					t.Errorf("item 7: %v, want a valid signature", r.GetResult())
				}
			}},
		8: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Envelope{Envelope: &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"ecdsa-enc"}}}},
			func(t *testing.T, r *signsvrv1.PipelineResponse) {
				d, err := ts.env.Decrypt(ctx, &signsvrv1.DecryptRequest{Key: "ecdsa-enc", Cms: r.GetEnvelope().GetCms()})
				if err != nil || string(d.GetData()) != string(data) {
					t.Errorf("item 8: its envelope does not open: %v", err)
				}
			}},
		9: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Decrypt{Decrypt: &signsvrv1.DecryptRequest{Key: "sm2-enc", Cms: env.GetCms()}}},
			func(t *testing.T, r *signsvrv1.PipelineResponse) {
				if string(r.GetDecrypt().GetData()) != string(data) {
					t.Errorf("item 9: %v, want the plaintext", r.GetResult())
				}
			}},
		10: {&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Decrypt{Decrypt: &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: env.GetCms()}}},
			fails(codes.InvalidArgument, "DECRYPTION_FAILED")},
		// Not a PipelineRequest: id 11, then a sign field whose message is cut short.
		11: {rawFrame(protowire.AppendBytes(protowire.AppendTag(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 11),
			10, protowire.BytesType), []byte{0xff})),
			fails(codes.InvalidArgument, "MALFORMED_INPUT")},
		12: {&signsvrv1.PipelineRequest{}, fails(codes.InvalidArgument, "INVALID_REQUEST")},
		13: {&signsvrv1.PipelineRequest{Timeout: durationpb.New(-time.Second), Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "sm2-sign", Data: data}}},
			fails(codes.InvalidArgument, "INVALID_REQUEST")},
	}
	const many = 200 // and as many plain signatures around them
	for i := uint64(100); i < 100+many; i++ {
		items[i] = struct {
			req   any
			check check
		}{&signsvrv1.PipelineRequest{Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: fmt.Appendf(nil, "doc %d", i)}}},
			func(t *testing.T, r *signsvrv1.PipelineResponse) {
				if len(r.GetSign().GetCms()) == 0 {
					t.Errorf("item %d: %v", r.GetId(), r.GetResult())
				}
			}}
	}

	p := openPipe(t, ctx, ts.conn)
	// The reader runs first: the answers need not fit in any socket buffer.
	got := make(chan *signsvrv1.PipelineResponse, len(items)+1)
	recvErr := make(chan error, 1)
	go func() {
		for {
			r := new(signsvrv1.PipelineResponse)
			if err := p.stream.RecvMsg(r); err != nil {
				recvErr <- err
				return
			}
			got <- r
		}
	}()
	for id, it := range items {
		if m, ok := it.req.(*signsvrv1.PipelineRequest); ok {
			m.Id = id
		}
		p.send(it.req)
	}
	// The stream is still good after every failure: one more item, then the end.
	p.send(&signsvrv1.PipelineRequest{Id: 1000, Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "sm2-sign", Data: data}}})
	items[1000] = struct {
		req   any
		check check
	}{nil, signs}
	if err := p.stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := <-recvErr; !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v, want OK", err)
	}
	close(got)
	seen := map[uint64]bool{}
	for r := range got {
		it, ok := items[r.GetId()]
		if !ok || seen[r.GetId()] {
			t.Fatalf("unexpected or repeated answer for id %d", r.GetId())
		}
		seen[r.GetId()] = true
		it.check(t, r)
	}
	if len(seen) != len(items) {
		t.Fatalf("%d answers for %d items", len(seen), len(items))
	}
	ts.assertServing(t)
}

// gate is an interceptor that holds every call until released, counting them.
type gate struct {
	release                                 chan struct{}
	entered, running, maxRunning, cancelled atomic.Int64
	mu                                      sync.Mutex
	methods                                 []string
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, "/signsvr.v1.") {
		return h(ctx, req) // health checks
	}
	g.entered.Add(1)
	n := g.running.Add(1)
	defer g.running.Add(-1)
	for {
		m := g.maxRunning.Load()
		if n <= m || g.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	g.mu.Lock()
	g.methods = append(g.methods, info.FullMethod)
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		g.cancelled.Add(1)
		return nil, ctx.Err()
	}
	return h(ctx, req)
}

func signItem(id uint64) *signsvrv1.PipelineRequest {
	return &signsvrv1.PipelineRequest{Id: id, Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: fmt.Appendf(nil, "item %d", id)}}}
}

// TestPipelineInFlightBound: with a limit of 4, the server reads a fifth item only
// once an answer has been sent, and never runs more than 4 at once.
func TestPipelineInFlightBound(t *testing.T) {
	const limit, total = 4, 12
	g := newGate()
	ts := startServer(t, func(o *server.Options) {
		o.Limits.MaxPipelineInFlight = limit
		o.Interceptors = append(o.Interceptors, g.intercept)
	})
	ctx := ctxT(t)
	p := openPipe(t, ctx, ts.conn)
	for i := uint64(1); i <= total; i++ {
		p.send(signItem(i))
	}
	read := func() int64 { _, r := ts.srv.PipelineCounts(); return r }
	eventually(t, "the first items never reached the handler", func() bool { return g.entered.Load() == limit })
	if r := read(); r != limit {
		t.Fatalf("%d items read with %d in flight, want %d", r, limit, limit)
	}
	answered := map[uint64]bool{}
	for released := int64(1); released <= total; released++ {
		g.release <- struct{}{}
		r := p.recv()
		if r.GetSign() == nil || answered[r.GetId()] {
			t.Fatalf("answer %v", r)
		}
		answered[r.GetId()] = true
		want := min(limit+released, total)
		eventually(t, "the next item was not read", func() bool { return read() >= want })
		if r := read(); r > limit+released {
			t.Fatalf("%d items read after %d answers, limit %d", r, released, limit)
		}
	}
	if m := g.maxRunning.Load(); m > limit {
		t.Errorf("%d items ran at once, limit %d", m, limit)
	}
	p.closeOK()
}

// TestPipelineDuplicateID: an item whose id is in flight is answered ALREADY_EXISTS
// and not run; the first is answered as usual, and the id may then be used again.
func TestPipelineDuplicateID(t *testing.T) {
	g := newGate()
	ts := startServer(t, func(o *server.Options) { o.Interceptors = append(o.Interceptors, g.intercept) })
	p := openPipe(t, ctxT(t), ts.conn)
	p.send(signItem(5))
	eventually(t, "the item never reached the handler", func() bool { return g.entered.Load() == 1 })
	p.send(signItem(5))
	itemStatus(t, p.recv(), codes.AlreadyExists, "INVALID_REQUEST")
	g.release <- struct{}{}
	if r := p.recv(); r.GetId() != 5 || r.GetSign() == nil {
		t.Fatalf("first item: %v", r)
	}
	p.send(signItem(5))
	g.release <- struct{}{}
	if r := p.recv(); r.GetId() != 5 || r.GetSign() == nil {
		t.Fatalf("id reused: %v", r)
	}
	if n := g.entered.Load(); n != 2 {
		t.Errorf("%d items ran, want 2 (the duplicate must not run)", n)
	}
	p.closeOK()
}

// TestPipelineItemDeadline: an item's timeout is its deadline: a handler that waits
// for its context ends with DEADLINE_EXCEEDED, and the stream goes on.
func TestPipelineItemDeadline(t *testing.T) {
	g := newGate()
	ts := startServer(t, func(o *server.Options) { o.Interceptors = append(o.Interceptors, g.intercept) })
	p := openPipe(t, ctxT(t), ts.conn)
	it := signItem(1)
	it.Timeout = durationpb.New(20 * time.Millisecond)
	p.send(it)
	itemStatus(t, p.recv(), codes.DeadlineExceeded, "DEADLINE")
	p.send(signItem(2))
	g.release <- struct{}{}
	if r := p.recv(); r.GetId() != 2 || r.GetSign() == nil {
		t.Fatalf("after the deadline: %v", r)
	}
	p.closeOK()
}

// TestPipelineCancel: cancelling the stream ends the items running (their context
// ends) and drops the ones not started; the stream's handler returns.
func TestPipelineCancel(t *testing.T) {
	workers := server.PipelineWorkers(1 << 20)
	limit := workers + 4 // more items in flight than workers: some wait in the queue
	g := newGate()
	ts := startServer(t, func(o *server.Options) {
		o.Limits.MaxPipelineInFlight = limit
		o.Interceptors = append(o.Interceptors, g.intercept)
	})
	p := openPipe(t, ctxT(t), ts.conn)
	for i := uint64(1); i <= uint64(limit); i++ {
		p.send(signItem(i))
	}
	eventually(t, "the items never reached the workers", func() bool {
		_, read := ts.srv.PipelineCounts()
		return g.entered.Load() == int64(workers) && read == int64(limit)
	})
	p.cancel()
	eventually(t, "the stream's handler did not return", func() bool {
		active, _ := ts.srv.PipelineCounts()
		return active == 0
	})
	if c, e := g.cancelled.Load(), g.entered.Load(); c != int64(workers) || e != int64(workers) {
		t.Errorf("%d items ran and %d saw their context end, want %d and %d: the queued ones must not run", e, c, workers, workers)
	}
	ts.assertServing(t)
}

// TestPipelineAuditMatchesUnary: the audit record of each item is the record of the
// same request made as a unary call (same operation, key, caller, algorithms, input,
// code and reason; the output is that of the item's own answer).
func TestPipelineAuditMatchesUnary(t *testing.T) {
	as := startAuditedServer(t, nil, func(o *server.Options) { o.Authorizer = denyKey("rsa-sign") })
	ctx := ctxT(t)
	data := []byte("audited item")
	signed, err := as.sign.Sign(ctx, &signsvrv1.SignRequest{Key: "sm2-sign", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	env, err := as.env.Envelope(ctx, &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"rsa-enc"}})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*signsvrv1.PipelineRequest{
		{Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "ecdsa-sign", Data: data}}},
		{Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "rsa-sign", Data: data}}},
		{Request: &signsvrv1.PipelineRequest_Sign{Sign: &signsvrv1.SignRequest{Key: "nope", Data: data}}},
		{Request: &signsvrv1.PipelineRequest_Verify{Verify: &signsvrv1.VerifyRequest{Cms: signed.GetCms()}}},
		{Request: &signsvrv1.PipelineRequest_SignRaw{SignRaw: &signsvrv1.SignRawRequest{Key: "rsa-sign", Data: data}}},
		{Request: &signsvrv1.PipelineRequest_SignRaw{SignRaw: &signsvrv1.SignRawRequest{Key: "sm2-sign", Data: data}}},
		{Request: &signsvrv1.PipelineRequest_VerifyRaw{VerifyRaw: &signsvrv1.VerifyRawRequest{Key: "sm2-sign", Data: data, Signature: []byte{1}}}},
		{Request: &signsvrv1.PipelineRequest_Envelope{Envelope: &signsvrv1.EnvelopeRequest{Data: data, RecipientKeys: []string{"sm2-enc"}}}},
		{Request: &signsvrv1.PipelineRequest_Decrypt{Decrypt: &signsvrv1.DecryptRequest{Key: "rsa-enc", Cms: env.GetCms()}}},
		{Request: &signsvrv1.PipelineRequest_Decrypt{Decrypt: &signsvrv1.DecryptRequest{Key: "sm2-enc", Cms: env.GetCms()}}},
	}
	// Unary, with request ids u.<i>.
	for i, r := range reqs {
		cctx := metadata.AppendToOutgoingContext(ctx, "x-request-id", fmt.Sprintf("u.%d", i))
		var err error
		switch x := r.GetRequest().(type) {
		case *signsvrv1.PipelineRequest_Sign:
			_, err = as.sign.Sign(cctx, x.Sign)
		case *signsvrv1.PipelineRequest_Verify:
			_, err = as.sign.Verify(cctx, x.Verify)
		case *signsvrv1.PipelineRequest_SignRaw:
			_, err = as.sign.SignRaw(cctx, x.SignRaw)
		case *signsvrv1.PipelineRequest_VerifyRaw:
			_, err = as.sign.VerifyRaw(cctx, x.VerifyRaw)
		case *signsvrv1.PipelineRequest_Envelope:
			_, err = as.env.Envelope(cctx, x.Envelope)
		case *signsvrv1.PipelineRequest_Decrypt:
			_, err = as.env.Decrypt(cctx, x.Decrypt)
		}
		_ = err // failures are part of the comparison
	}
	// Pipelined on one stream whose request id is p: items get p.<id>.
	p := openPipe(t, metadata.AppendToOutgoingContext(ctx, "x-request-id", "p"), as.conn)
	for i, r := range reqs {
		r.Id = uint64(i)
		p.send(r)
	}
	outs := map[string]string{} // request id -> digest of the item's main output
	for range reqs {
		r := p.recv()
		var out []byte
		switch {
		case r.GetSign() != nil:
			out = signerInfosOf(t, r.GetSign().GetCms())
		case r.GetSignRaw() != nil:
			out = r.GetSignRaw().GetSignature()
		case r.GetEnvelope() != nil:
			out = r.GetEnvelope().GetCms()
		case r.GetDecrypt() != nil:
			out = r.GetDecrypt().GetData()
		case r.GetVerify() != nil:
			out = verifyOut(t, r.GetVerify())
		case r.GetVerifyRaw() != nil:
			out, _ = protoDeterministic(t, r.GetVerifyRaw())
		}
		if out != nil {
			outs[fmt.Sprintf("p.%d", r.GetId())] = sha(out)
		}
	}
	p.closeOK()

	recs := map[string]map[string]any{}
	for _, rec := range as.stopAndRead(t) {
		id, _ := rec["request_id"].(string)
		recs[id] = rec
	}
	for i := range reqs {
		u, pl := recs[fmt.Sprintf("u.%d", i)], recs[fmt.Sprintf("p.%d", i)]
		if u == nil || pl == nil {
			t.Fatalf("item %d: records unary %v, pipelined %v", i, u, pl)
		}
		for _, f := range []string{"op", "key", "caller", "algs", "in", "code", "reason"} {
			if fmt.Sprint(u[f]) != fmt.Sprint(pl[f]) {
				t.Errorf("item %d: %s is %v pipelined, %v unary", i, f, pl[f], u[f])
			}
		}
		if want, ok := outs[fmt.Sprintf("p.%d", i)]; ok {
			if pl["out"] != want {
				t.Errorf("item %d: out %v, want the digest of its answer %s", i, pl["out"], want)
			}
		} else if fmt.Sprint(u["out"]) != fmt.Sprint(pl["out"]) {
			t.Errorf("item %d: out %v pipelined, %v unary", i, pl["out"], u["out"])
		}
		if strings.HasPrefix(fmt.Sprint(pl["op"]), "pipeline") {
			t.Errorf("item %d recorded as %v", i, pl["op"])
		}
	}
}

// TestPipelineRefusalsAudited: a malformed item is logged and audited like a unary
// request that does not decode.
func TestPipelineRefusalsAudited(t *testing.T) {
	as := startAuditedServer(t, nil)
	p := openPipe(t, metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "bad"), as.conn)
	p.send(rawFrame{0x08, 0x07, 0x52, 0x01, 0xff}) // id 7, then a cut-short sign message
	itemStatus(t, p.recv(), codes.InvalidArgument, "MALFORMED_INPUT")
	p.closeOK()
	var found bool
	for _, rec := range as.stopAndRead(t) {
		if rec["request_id"] == "bad.7" {
			found = true
			if rec["op"] != "pipeline" || rec["code"] != "InvalidArgument" || rec["reason"] != "MALFORMED_INPUT" {
				t.Errorf("record %v", rec)
			}
		}
	}
	if !found {
		t.Error("no record for the malformed item")
	}
}
