package server

// The pipelined stream (PipelineService)
//
// A unary gRPC call costs the server tens of microseconds of CPU of its own, before
// any signing; a message on a bidirectional stream that the client keeps full costs a
// fraction of that. PipelineService.Pipeline carries many independent items on one
// stream: each item holds the request of one unary method (Sign, Verify, SignRaw,
// VerifyRaw, Envelope, Decrypt) under an id the client chose, and gets a response
// with that id, in completion order.
//
// An item is a unary call in everything but its transport. Each is run through
// serve, the body of the method wrapper every unary call runs in (middleware.go),
// with its own requestInfo and request id, inside Options.CallInterceptors (metrics
// and traces see each item as a call of its method), through the server's one chain
// of unary interceptors (authentication, authorization, audit, the configured ones)
// to the unary service's own handler method. So authorization, the audit record, the log
// line, the mapping of errors to statuses and panic recovery are those of the unary
// call, by construction: there is no second copy of any of them. A failed item's
// response carries the status the unary call would have returned.
//
// An item holds its decoded size of the server's budget of request bytes in flight
// (Limits.MaxInflightBytes) while it runs, as a unary request does; when the budget
// is spent the item is answered RESOURCE_EXHAUSTED, and the stream goes on.
//
// Flow control: at most Limits.MaxPipelineInFlight items are in flight on a stream,
// from their arrival until their response is sent. The stream's reader takes a slot
// before it reads the next item, so while every slot is held it reads nothing and
// HTTP/2 flow control holds the client back: nothing queues without bound. The items
// read are run by the stream's workers, started as items arrive up to
// pipelineWorkers; a worker sends its item's response itself (one send at a time,
// as grpc requires).
//
// Deadlines: an item's context is the stream's, bounded from the item's arrival by
// its timeout field and by Limits.MaxCallDuration (what bounds a unary call), the
// shortest winning; the stream's own deadline bounds every item. The stream itself
// has no duration bound of its own: it is meant to live long, until its connection
// reaches Limits.MaxConnectionAge and is closed after the grace.
//
// Ids: an item whose id is that of an item still in flight is not run and is answered
// ALREADY_EXISTS under that id (no operation answers that code, so the client can
// tell the refusal from the first item's answer). A message that is not a
// PipelineRequest is answered INVALID_ARGUMENT (MALFORMED_INPUT) under whatever id
// could be read from it (0 if none): the gRPC framing delimits every message, so the
// stream stays usable. Refused items are logged and audited like a unary call that
// failed before its handler ran (method PipelineService/Pipeline).
//
// When the stream ends early (the client cancels, the deadline passes, the
// connection breaks), items not yet started are dropped without running, and
// running ones see their context end; the stream's handler returns once every worker
// has stopped, so no response is sent after it.

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
)

// pipelineOp is what the items of one kind run: the unary method they stand for, its
// service, and the unary service's method, for the state the item runs with.
type pipelineOp struct {
	method  string
	service string
	fn      func(st *Server, ctx context.Context, req any) (any, error)
}

// The kinds of item, indexes into pipelineOps.
const (
	pipeSign = iota
	pipeVerify
	pipeSignRaw
	pipeVerifyRaw
	pipeEnvelope
	pipeDecrypt
	pipeOps
)

var pipelineOps = [pipeOps]pipelineOp{
	pipeSign: {signsvrv1.SignService_Sign_FullMethodName, signsvrv1.SignService_ServiceDesc.ServiceName,
		func(st *Server, ctx context.Context, req any) (any, error) {
			return signService{Server: st}.Sign(ctx, req.(*signsvrv1.SignRequest))
		}},
	pipeVerify: {signsvrv1.SignService_Verify_FullMethodName, signsvrv1.SignService_ServiceDesc.ServiceName,
		func(st *Server, ctx context.Context, req any) (any, error) {
			return signService{Server: st}.Verify(ctx, req.(*signsvrv1.VerifyRequest))
		}},
	pipeSignRaw: {signsvrv1.SignService_SignRaw_FullMethodName, signsvrv1.SignService_ServiceDesc.ServiceName,
		func(st *Server, ctx context.Context, req any) (any, error) {
			return signService{Server: st}.SignRaw(ctx, req.(*signsvrv1.SignRawRequest))
		}},
	pipeVerifyRaw: {signsvrv1.SignService_VerifyRaw_FullMethodName, signsvrv1.SignService_ServiceDesc.ServiceName,
		func(st *Server, ctx context.Context, req any) (any, error) {
			return signService{Server: st}.VerifyRaw(ctx, req.(*signsvrv1.VerifyRawRequest))
		}},
	pipeEnvelope: {signsvrv1.EnvelopeService_Envelope_FullMethodName, signsvrv1.EnvelopeService_ServiceDesc.ServiceName,
		func(st *Server, ctx context.Context, req any) (any, error) {
			return envelopeService{Server: st}.Envelope(ctx, req.(*signsvrv1.EnvelopeRequest))
		}},
	pipeDecrypt: {signsvrv1.EnvelopeService_Decrypt_FullMethodName, signsvrv1.EnvelopeService_ServiceDesc.ServiceName,
		func(st *Server, ctx context.Context, req any) (any, error) {
			return envelopeService{Server: st}.Decrypt(ctx, req.(*signsvrv1.DecryptRequest))
		}},
}

// pipelineService serves PipelineService for the root server; each item runs with
// the state current when it starts (reload.go), as a unary call does.
type pipelineService struct {
	signsvrv1.UnimplementedPipelineServiceServer
	s *Server
	// workers bounds the goroutines that run one stream's items.
	workers int
	// active counts the streams being served; read counts the items read (tests).
	active, read atomic.Int64
}

func (s *Server) newPipelineService() *pipelineService {
	return &pipelineService{s: s, workers: pipelineWorkers(s.limits.MaxPipelineInFlight)}
}

// pipelineWorkers is how many goroutines run one stream's items at most: one per
// in-flight item up to twice the cores, and at least as many as a signing batch gives
// an HSM (whose items mostly wait on the device), but never more than items may be in
// flight.
func pipelineWorkers(inFlight int) int {
	return min(inFlight, max(hsmBatchWorkers, 2*runtime.GOMAXPROCS(0)))
}

// target is the operation r asks for and its request; op is nil when r names none.
func (p *pipelineService) target(r *signsvrv1.PipelineRequest) (op *pipelineOp, req proto.Message) {
	switch x := r.GetRequest().(type) {
	case *signsvrv1.PipelineRequest_Sign:
		return &pipelineOps[pipeSign], orEmpty(x.Sign)
	case *signsvrv1.PipelineRequest_Verify:
		return &pipelineOps[pipeVerify], orEmpty(x.Verify)
	case *signsvrv1.PipelineRequest_SignRaw:
		return &pipelineOps[pipeSignRaw], orEmpty(x.SignRaw)
	case *signsvrv1.PipelineRequest_VerifyRaw:
		return &pipelineOps[pipeVerifyRaw], orEmpty(x.VerifyRaw)
	case *signsvrv1.PipelineRequest_Envelope:
		return &pipelineOps[pipeEnvelope], orEmpty(x.Envelope)
	case *signsvrv1.PipelineRequest_Decrypt:
		return &pipelineOps[pipeDecrypt], orEmpty(x.Decrypt)
	}
	return nil, nil
}

// orEmpty is m, or a new empty message when m is a nil pointer (which only a client
// in the same process can send; decoding always gives a message).
func orEmpty[M any, P interface {
	*M
	proto.Message
}](m P) proto.Message {
	if m == nil {
		return P(new(M))
	}
	return m
}

// setResult puts a unary handler's response into out.
func setResult(out *signsvrv1.PipelineResponse, resp any) {
	switch r := resp.(type) {
	case *signsvrv1.SignResponse:
		out.Result = &signsvrv1.PipelineResponse_Sign{Sign: r}
	case *signsvrv1.VerifyResponse:
		out.Result = &signsvrv1.PipelineResponse_Verify{Verify: r}
	case *signsvrv1.SignRawResponse:
		out.Result = &signsvrv1.PipelineResponse_SignRaw{SignRaw: r}
	case *signsvrv1.VerifyRawResponse:
		out.Result = &signsvrv1.PipelineResponse_VerifyRaw{VerifyRaw: r}
	case *signsvrv1.EnvelopeResponse:
		out.Result = &signsvrv1.PipelineResponse_Envelope{Envelope: r}
	case *signsvrv1.DecryptResponse:
		out.Result = &signsvrv1.PipelineResponse_Decrypt{Decrypt: r}
	}
}

var errDuplicateID = newError(codes.AlreadyExists, signsvrv1.ErrorReason_ERROR_REASON_INVALID_REQUEST,
	"an item with this id is in flight on the stream", nil)

// pipelineFrame is what the stream's reader receives into. pipelineCodec decodes a
// PipelineRequest into req; when the bytes are not one, it keeps the error and the id
// it could read instead of failing, since grpc ends a stream whose message does not
// decode.
type pipelineFrame struct {
	req *signsvrv1.PipelineRequest
	id  uint64
	err error
}

// decode fills f from the encoding of a PipelineRequest.
func (f *pipelineFrame) decode(b []byte) {
	if f.req == nil {
		f.req = new(signsvrv1.PipelineRequest)
	}
	if err := proto.Unmarshal(b, f.req); err != nil {
		proto.Reset(f.req)
		f.err, f.id = err, scanPipelineID(b)
		return
	}
	f.id = f.req.GetId()
}

// scanPipelineID reads the id (field 1, a varint) of a PipelineRequest encoding that
// does not decode as a whole, from the well-formed fields before the first bad one;
// as in decoding, the last occurrence wins. 0 when there is none.
func scanPipelineID(b []byte) uint64 {
	var id uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				break
			}
			id, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			break
		}
		b = b[m:]
	}
	return id
}

// pipelineCodec is the server's codec, except that it decodes pipeline frames itself
// (pipelineFrame).
type pipelineCodec struct{ encoding.CodecV2 }

func (c pipelineCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*pipelineFrame)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	f.decode(buf.ReadOnlyData())
	return nil
}

// pipelineItem is one item read from a stream.
type pipelineItem struct {
	id  uint64
	op  *pipelineOp
	req proto.Message
	// err refuses the item before it runs (malformed, no operation, duplicate id).
	err *Error
	// owns is set when the item holds its id in the stream's set of ids in flight.
	owns bool
	// deadline bounds the item, from its arrival.
	deadline time.Time
	// st is the server state the item runs with.
	st *Server
}

// handle is the item's grpc.MethodHandler for serve: the generated unary handler's
// steps, with the request already decoded.
func (it *pipelineItem) handle(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
	if it.err != nil {
		return nil, it.err
	}
	if err := dec(it.req); err != nil {
		return nil, err
	}
	st, op := it.st, it.op
	h := func(ctx context.Context, req any) (any, error) { return op.fn(st, ctx, req) }
	if ic == nil {
		return h(ctx, it.req)
	}
	return ic(ctx, it.req, &grpc.UnaryServerInfo{Server: st.impls[op.service], FullMethod: op.method}, h)
}

// noDecode is the dec of an item: its request was decoded with the frame.
func noDecode(any) error { return nil }

// pipelineStream is one stream being served.
type pipelineStream struct {
	p      *pipelineService
	stream grpc.ServerStream
	ctx    context.Context
	// given is the stream's x-request-id, when the client sent a sane one: an item's
	// request id is then given.<item id>.
	given string
	// slots holds a token per item in flight; queue hands items to the workers (it
	// never blocks: slots bound what is in it).
	slots chan struct{}
	queue chan *pipelineItem
	// busy counts the items queued or running, to start workers as needed.
	busy atomic.Int64
	wg   sync.WaitGroup

	mu  sync.Mutex
	ids map[uint64]struct{} // ids of the items in flight

	sendMu  sync.Mutex
	sendErr error // the stream is broken: nothing more is sent
}

// Pipeline implements signsvrv1.PipelineServiceServer.
func (p *pipelineService) Pipeline(stream signsvrv1.PipelineService_PipelineServer) error {
	p.active.Add(1)
	defer p.active.Add(-1)
	n := p.s.limits.MaxPipelineInFlight
	ps := &pipelineStream{
		p: p, stream: stream, ctx: stream.Context(),
		slots: make(chan struct{}, n), queue: make(chan *pipelineItem, n),
		ids: make(map[uint64]struct{}, n),
	}
	if v := metadata.ValueFromIncomingContext(ps.ctx, "x-request-id"); len(v) > 0 && saneRequestID(v[0]) {
		ps.given = v[0]
	}
	return ps.serve()
}

// serve reads items until the client closes its side or the stream fails, then waits
// for every worker.
func (ps *pipelineStream) serve() error {
	started := 0
	var end error
	for {
		select {
		case ps.slots <- struct{}{}:
		case <-ps.ctx.Done():
			end = ps.ctx.Err()
		}
		if end != nil {
			break
		}
		f := &pipelineFrame{req: new(signsvrv1.PipelineRequest)}
		if err := ps.stream.RecvMsg(f); err != nil {
			<-ps.slots
			if !errors.Is(err, io.EOF) {
				end = err
			}
			break
		}
		ps.p.read.Add(1)
		ps.busy.Add(1)
		ps.queue <- ps.item(f)
		if started < ps.p.workers && ps.busy.Load() > int64(started) {
			started++
			ps.wg.Add(1)
			go ps.work()
		}
	}
	close(ps.queue)
	ps.wg.Wait()
	if end == nil {
		return nil
	}
	if cerr := ps.ctx.Err(); cerr != nil {
		return status.FromContextError(cerr).Err()
	}
	// grpc's own status (e.g. a message over the size limit), which ends the stream:
	// the rest of the stream cannot be read.
	return end
}

// item makes the item of frame f: its operation, deadline and id, or its refusal.
func (ps *pipelineStream) item(f *pipelineFrame) *pipelineItem {
	it := &pipelineItem{id: f.id}
	timeout := ps.p.s.limits.MaxCallDuration
	switch {
	case f.err != nil:
		it.err = malformedRequest(f.err)
	default:
		if it.op, it.req = ps.p.target(f.req); it.op == nil {
			it.err = invalidRequest("the item asks for no operation")
			break
		}
		if t := f.req.GetTimeout(); t != nil {
			d := t.AsDuration()
			if t.CheckValid() != nil || d <= 0 {
				it.err = invalidRequest("the item's timeout must be positive")
				break
			}
			timeout = min(timeout, d)
		}
	}
	it.deadline = time.Now().Add(timeout)
	ps.mu.Lock()
	if _, dup := ps.ids[it.id]; dup {
		it.err = errDuplicateID
	} else {
		ps.ids[it.id] = struct{}{}
		it.owns = true
	}
	ps.mu.Unlock()
	return it
}

// work runs queued items until the queue is closed.
func (ps *pipelineStream) work() {
	defer ps.wg.Done()
	for it := range ps.queue {
		resp := ps.run(it)
		ps.busy.Add(-1)
		// The id is free before the answer leaves: a client may reuse it as soon as
		// it has the answer. The slot is held until the answer is sent.
		if it.owns {
			ps.mu.Lock()
			delete(ps.ids, it.id)
			ps.mu.Unlock()
		}
		if resp != nil {
			ps.send(resp)
		}
		<-ps.slots
	}
}

// run runs one item as a unary call and makes its response; nil when the stream has
// ended, in which case the item is dropped without running.
func (ps *pipelineStream) run(it *pipelineItem) *signsvrv1.PipelineResponse {
	if ps.ctx.Err() != nil {
		return nil
	}
	out := &signsvrv1.PipelineResponse{Id: it.id}
	// The item's state, taken once, as a unary call takes it (reload.go).
	s := ps.p.s.acquire()
	if s == nil {
		out.Result = &signsvrv1.PipelineResponse_Error{Error: status.Convert(errStopped).Proto()}
		return out
	}
	defer s.unref()
	it.st = s
	ctx, cancel := context.WithDeadline(ps.ctx, it.deadline)
	defer cancel()
	method := signsvrv1.PipelineService_Pipeline_FullMethodName
	if it.err == nil {
		method = it.op.method
	}
	ri := s.newRequestInfo(method)
	ri.decoded = true
	if ps.given != "" {
		if id := ps.given + "." + strconv.FormatUint(it.id, 10); len(id) <= 64 {
			ri.given = id
		}
	}
	resp, err := s.serve(ctx, ri, nil, noDecode, s.chain, it.handle)
	if err != nil {
		out.Result = &signsvrv1.PipelineResponse_Error{Error: status.Convert(err).Proto()}
	} else {
		setResult(out, resp)
	}
	return out
}

// errResponseTooLarge answers an item whose response grpc would not send.
var errResponseTooLarge = newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
	"the item's response is larger than the server may send", nil)

// send sends one response; once a send has failed the stream is broken and nothing
// more is sent. A response over the size limit is not a broken stream (grpc refuses
// it before writing anything): the item is answered with that error instead.
func (ps *pipelineStream) send(m *signsvrv1.PipelineResponse) {
	ps.sendMu.Lock()
	defer ps.sendMu.Unlock()
	if ps.sendErr != nil {
		return
	}
	err := ps.stream.SendMsg(m)
	if err != nil && status.Code(err) == codes.ResourceExhausted && ps.ctx.Err() == nil {
		err = ps.stream.SendMsg(&signsvrv1.PipelineResponse{Id: m.GetId(),
			Result: &signsvrv1.PipelineResponse_Error{Error: status.Convert(errResponseTooLarge.status("")).Proto()}})
	}
	ps.sendErr = err
}
