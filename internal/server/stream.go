package server

// Streaming calls (StreamService): the protocol every request stream follows, the
// limits, the outermost layer (request id, panic recovery, authentication, the log
// line, the audit record) and the spool. The four operations are in
// stream_ops.go.
//
// A request stream is: options, chunks, end, half-close (stream.proto). Its data is
// read through a chunkReader, which enforces that order, the chunk size and the
// maximum stream size, and digests the data for the audit record as it passes.
// Whatever the size, a call holds at most a few chunks at once: one received
// message, one output buffer, the small fields of the message being read.
//
// Audit: a streamed operation leaves the record its unary form leaves (same op,
// key, algorithms, digests): input and output are digested on the fly with the
// log's digest, except that a SignStream's output is its signerInfos and its input
// the signer's own content digest when that is in the log's hash, and a
// VerifyStream's input is the message's signerInfos (pkg/audit, "What in and out
// name"), so neither hashes its content a second time. It
// is written before the message that completes the output (the signature's suffix,
// the result): when the write fails, the call ends UNAVAILABLE instead, and the
// output the client got so far is incomplete and void.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/audit"
)

// StreamLimits bound streaming calls. A zero field takes its default.
type StreamLimits struct {
	// MaxBytes bounds the data of one stream (the content, or the message read).
	MaxBytes int64
	// IdleTimeout ends a stream whose client sends nothing for that long
	// (DEADLINE_EXCEEDED), freeing what it held.
	IdleTimeout time.Duration
	// SpoolDir is where GCM ciphertext waits for its tag check; "" is os.TempDir().
	// Spool files are removed from the directory as soon as they are made, so
	// nothing is left behind whatever happens to the call or the process.
	SpoolDir string
}

// Defaults of StreamLimits, and the bounds of a chunk.
const (
	DefaultMaxStreamBytes    = 16 << 30
	DefaultStreamIdleTimeout = 2 * time.Minute
	MaxStreamChunk           = 1 << 20
)

func (l StreamLimits) withDefaults() StreamLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxStreamBytes
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultStreamIdleTimeout
	}
	return l
}

// What a stream call holds in buffers at most: the data the client may send
// before the server reads (the flow-control window), the chunks read ahead
// (receiver), the chunk being processed, the output buffer (outBufs), and for a decryption the opening's piece
// and the spool's writer and reader (spoolBuf each).
const (
	outBufCap       = MaxStreamChunk + 64<<10
	spoolBuf        = 256 << 10
	streamHeldBytes = streamWindow + (readAhead+1)*MaxStreamChunk + outBufCap + 3*spoolBuf
)

// holdStreamBytes reserves n bytes of the server-wide budget of request bytes in
// flight (Limits.MaxInflightBytes) for a stream call's whole life, as a unary call
// holds its message's size: many concurrent streams cannot take the server past
// it. As for a unary call, nothing waits: a stream that cannot have its share at
// once is refused RESOURCE_EXHAUSTED before any of its messages is read.
func (s *Server) holdStreamBytes(n int64) (*streamHold, error) {
	h := &streamHold{b: s.budget}
	if !h.add(n) {
		return nil, errBusy(fmt.Sprintf("no budget for a stream's %d bytes of buffers (%d in flight)", n, s.budget.used.Load()))
	}
	return h, nil
}

// streamHold is what a stream call holds of the budget. The receiving goroutine
// adds to it (stream_recv.go) and may outlive the handler, so adding after the
// release fails instead of taking bytes nobody gives back.
type streamHold struct {
	b    *byteBudget
	mu   sync.Mutex
	n    int64
	done bool
}

// add reserves n more bytes if they fit and the hold is not released.
func (h *streamHold) add(n int64) bool {
	if h.b == nil {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || !h.b.take(n, false) {
		return false
	}
	h.n += n
	return true
}

// release gives everything back, once.
func (h *streamHold) release() {
	if h.b == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		h.done = true
		h.b.give(h.n)
	}
}

type streamService struct {
	*Server
	signsvrv1.UnimplementedStreamServiceServer
}

// streamOp describes a streaming method for the outer layer: the audit op of its
// unary form and the method-level authorization of that form (the per-key checks
// are in the handlers, through useKey).
type streamOp struct {
	op   audit.Op
	auth Operation
}

var streamOps = map[string]streamOp{
	signsvrv1.StreamService_SignStream_FullMethodName:             {op: audit.OpSign},
	signsvrv1.StreamService_VerifyStream_FullMethodName:           {op: audit.OpVerify, auth: OpVerify},
	signsvrv1.StreamService_EnvelopeStream_FullMethodName:         {op: audit.OpEnvelope, auth: OpEnvelope},
	signsvrv1.StreamService_DecryptStream_FullMethodName:          {op: audit.OpDecrypt},
	signsvrv1.StreamService_SignAndEnvelopeStream_FullMethodName:  {op: audit.OpSignAndEnvelope, auth: OpEnvelope},
	signsvrv1.StreamService_DecryptAndVerifyStream_FullMethodName: {op: audit.OpDecryptAndVerify, auth: OpVerify},
}

// streamCall is what a stream handler runs in: the request id, panic recovery,
// authentication and the method's authorization, the idle timeout, then body; then
// the audit record (when body did not commit one), the log line and the one mapping
// of errors to statuses.
type streamCall struct {
	s       *Server
	ctx     context.Context
	ri      *requestInfo
	op      streamOp
	in, out *pipedHash // digests for the audit record, nil without an AuditLog
	// inSum and outSum, when set, are the record's digests instead of in's and out's
	// (an operation that digests less than the whole stream sets in or out to nil).
	inSum, outSum []byte
	// req stands for the request in the audit record's algorithms (the unary form's
	// request with the options).
	req proto.Message
	// used is the key generation the operation used, for the record as the unary
	// answer's key_used.
	used *signsvrv1.KeyUse
	// hold is what the call holds of the budget: its buffers, and its options
	// message (stream_recv.go).
	hold      *streamHold
	committed bool
	idle      *time.Timer
}

func (s *Server) runStream(ss grpc.ServerStream, method string, body func(c *streamCall) error) (err error) {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	ri := &requestInfo{method: method, seq: s.seq.Add(1), prefix: s.instance, start: s.now(), dev: s.dev}
	if v := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(v) > 0 && saneRequestID(v[0]) {
		ri.given = v[0]
	}
	ctx = context.WithValue(ctx, requestInfoKey{}, ri)
	c := &streamCall{s: s, ctx: ctx, ri: ri, op: streamOps[method]}
	if al, ok := s.auditor.(*AuditLog); ok {
		c.in, c.out = newPipedHash(al.log.HashAlg().New()), newPipedHash(al.log.HashAlg().New())
		defer c.in.Close()
		defer c.out.Close()
	}
	c.idle = time.AfterFunc(s.streams.IdleTimeout, cancel)
	defer c.idle.Stop()
	defer func() {
		if r := recover(); r != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "panic in handler",
				slog.String("request_id", ri.id()), slog.String("method", method),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			err = internal(nil)
		}
		if err != nil && ctx.Err() != nil && ss.Context().Err() == nil {
			// Our own cancel: the idle timeout.
			err = newError(codes.DeadlineExceeded, signsvrv1.ErrorReason_ERROR_REASON_DEADLINE,
				"the stream sent nothing for too long", err)
		}
		if !c.committed {
			c.record(err)
		}
		err = s.finish(ctx, ri, nil, err)
	}()
	if c.hold, err = s.holdStreamBytes(streamHeldBytes); err != nil {
		return err
	}
	defer c.hold.release()
	if s.clientValidator != nil {
		id, err := s.authenticatePeer(ctx)
		if err != nil {
			return err
		}
		ri.identity = id
	}
	if c.op.auth != "" {
		if err := s.authorizer.Authorize(ctx, IdentityFrom(ctx), c.op.auth, ""); err != nil {
			return err
		}
	}
	return body(c)
}

// auditLog is the server's AuditLog, nil without one.
func (c *streamCall) auditLog() *AuditLog {
	al, _ := c.s.auditor.(*AuditLog)
	return al
}

// wrote digests output about to be sent, beside the sending: b must not change
// until wroteDone, or the record, has waited for it.
func (c *streamCall) wrote(b []byte) {
	if c.out != nil {
		c.out.Write(b)
	}
}

// commit writes the audit record of the operation that succeeded, before the
// message that completes its output goes out; its error (the log cannot be
// written) ends the call.
func (c *streamCall) commit() error {
	c.committed = true
	if werr := c.record(nil); werr != nil {
		c.s.recheckHealth()
		e := *errAuditUnavailable
		e.Err = werr
		return &e
	}
	return nil
}

// record writes the call's audit record when the server has an AuditLog: OK with
// the digests when err is nil, else the failure. It marks the call recorded, so
// the auditor's event for it is not written a second time.
func (c *streamCall) record(err error) error {
	al, ok := c.s.auditor.(*AuditLog)
	if !ok {
		return nil
	}
	rec := audit.Record{
		RequestID: c.ri.id(), Caller: auditCaller(IdentityFrom(c.ctx)), Op: c.op.op, Key: c.ri.key, Code: "OK",
		InputDigest: c.inSum,
	}
	if rec.InputDigest == nil && c.in != nil {
		rec.InputDigest = c.in.Sum(nil)
	}
	if err != nil {
		e := classify(err)
		rec.Code, rec.Reason = e.Code.String(), ReasonString(e.Reason)
	} else {
		rec.OutputDigest = c.outSum
		if rec.OutputDigest == nil && c.out != nil {
			rec.OutputDigest = c.out.Sum(nil)
		}
	}
	if c.req != nil {
		req, hadPassword := passwordFree(c.req)
		rec.Algorithms = c.s.auditAlgorithms(c.ri.key, req)
		if hadPassword {
			rec.Algorithms = append(rec.Algorithms, auditPassword)
		}
	}
	if err == nil {
		rec.KeyGeneration, rec.KeySerial = c.used.GetGeneration(), c.used.GetCertificateSerial()
	}
	al.recorded.Store(c.ri, struct{}{})
	return al.log.Append(c.ctx, rec)
}

// readAhead is how many chunk messages a stream's receiver reads before the
// handler asks for them. grpc-go grants a stream's HTTP/2 window again as its
// messages are read, and the server's window (streamWindow) is smaller than a
// chunk: without reading ahead the client sends a chunk, then waits while the
// handler digests or encrypts it, and the two take turns. With it the next chunk
// travels while the handler works, at the cost of readAhead chunks held (more
// pushed the server's VmHWM past 64 MiB under streambench).
const readAhead = 1

// receiver returns a recv that gives up when the call's context ends (the idle
// timeout, or the client going away): grpc's Recv itself waits on the stream
// alone, so it runs in a goroutine of its own, which ends with the stream once the
// handler has returned.
//
// The goroutine reads on, up to readAhead messages, only while what it reads are
// chunks of at most MaxStreamChunk bytes; after any other message (the options, the
// end, an oversized or empty chunk) it reads the next one only when asked, so a
// call holds at most readAhead+1 chunks and one other message, whatever the client
// sends.
func receiver[M streamMsg](c *streamCall, recv func() (M, error)) func() (M, error) {
	type item struct {
		m   M
		err error
	}
	ch := make(chan item, readAhead-1) // and one in the goroutine's hand
	want := make(chan struct{})
	go func() {
		ahead := false
		for {
			for !ahead {
				select {
				case <-want:
				case <-c.ctx.Done():
					return
				}
				// An ask that raced with the delivery of a message not yet taken is
				// answered by that message.
				ahead = len(ch) == 0
			}
			m, err := recv()
			select {
			case ch <- item{m, err}:
			case <-c.ctx.Done():
				return
			}
			if err != nil {
				return
			}
			n := len(m.GetChunk())
			ahead = n > 0 && n <= MaxStreamChunk
		}
	}()
	var failed error
	take := func(it item) (M, error) {
		if it.err != nil {
			failed = it.err
		}
		return it.m, it.err
	}
	return func() (M, error) {
		var zero M
		if failed != nil {
			return zero, failed
		}
		select {
		case it := <-ch:
			return take(it)
		default:
		}
		select {
		case want <- struct{}{}:
		case it := <-ch:
			return take(it)
		case <-c.ctx.Done():
			return zero, c.ctx.Err()
		}
		select {
		case it := <-ch:
			return take(it)
		case <-c.ctx.Done():
			return zero, c.ctx.Err()
		}
	}
}

// streamMsg is what every request message of StreamService has.
type streamMsg interface {
	GetChunk() []byte
	GetEnd() *signsvrv1.StreamEnd
}

// chunkReader reads a stream's data: the chunks after the options, up to the end
// message. It is an io.Reader, and also hands out whole chunks (next).
type chunkReader[M streamMsg] struct {
	c       *streamCall
	recv    func() (M, error)
	isOpts  func(M) bool
	max     int64
	n       int64
	ended   bool
	pending []byte
	// last is the chunk next returned before, given back to the pool on the next
	// call (every consumer copies what it keeps).
	last []byte
}

func newChunkReader[M streamMsg](c *streamCall, recv func() (M, error), isOpts func(M) bool) *chunkReader[M] {
	return &chunkReader[M]{c: c, recv: recv, isOpts: isOpts, max: c.s.streams.MaxBytes}
}

// errStreamOrder is the answer to a stream that breaks the protocol.
func errStreamOrder(format string, a ...any) *Error { return invalidRequest(format, a...) }

// first receives the options message.
func firstMessage[M streamMsg](c *streamCall, recv func() (M, error), isOpts func(M) bool) (M, error) {
	m, err := recv()
	if err == io.EOF {
		var zero M
		return zero, errStreamOrder("the stream ended before its options")
	}
	if err != nil {
		var zero M
		return zero, err
	}
	c.idle.Reset(c.s.streams.IdleTimeout)
	if !isOpts(m) {
		var zero M
		return zero, errStreamOrder("the first message of a stream must carry the options")
	}
	return m, nil
}

// next returns the next chunk of data, or io.EOF after the end message.
func (r *chunkReader[M]) next() ([]byte, error) {
	if r.last != nil {
		r.c.in.Wait() // the audit digest may still be reading it
		releaseChunk(r.last)
		r.last = nil
	}
	for {
		if r.ended {
			return nil, io.EOF
		}
		m, err := r.recv()
		if err == io.EOF {
			return nil, errStreamOrder("the stream ended before its end message (after %d bytes): the data is incomplete", r.n)
		}
		if err != nil {
			if cerr := r.c.ctx.Err(); cerr != nil {
				return nil, cerr // cancelled, or the idle timeout
			}
			return nil, err
		}
		r.c.idle.Reset(r.c.s.streams.IdleTimeout)
		switch {
		case r.isOpts(m):
			return nil, errStreamOrder("options sent twice")
		case m.GetEnd() != nil:
			if sz := m.GetEnd().GetSize(); sz != 0 && sz != uint64(r.n) {
				return nil, errStreamOrder("the end message says %d bytes, the stream carried %d", sz, r.n)
			}
			r.ended = true
			return nil, io.EOF
		}
		chunk := m.GetChunk()
		if len(chunk) > MaxStreamChunk {
			return nil, errStreamOrder("a chunk of %d bytes; at most %d", len(chunk), MaxStreamChunk)
		}
		if len(chunk) == 0 {
			continue
		}
		r.last = chunk
		r.n += int64(len(chunk))
		if r.n > r.max {
			return nil, newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
				fmt.Sprintf("the stream is larger than the %d bytes the server accepts", r.max), nil)
		}
		if r.c.in != nil {
			r.c.in.Write(chunk)
		}
		return chunk, nil
	}
}

// Read implements io.Reader over the chunks.
func (r *chunkReader[M]) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		chunk, err := r.next()
		if err != nil {
			return 0, err
		}
		r.pending = chunk
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// drain reads the rest of the data (when the operation needed less of it, it must
// still all have arrived), then waits for the client's half-close: anything else
// after the end message breaks the protocol.
func (r *chunkReader[M]) finish() error {
	if len(r.pending) > 0 {
		return errStreamOrder("data after the end of the message")
	}
	if !r.ended {
		chunk, err := r.next()
		if err != io.EOF {
			if err == nil && len(chunk) > 0 {
				return errStreamOrder("data after the end of the message")
			}
			return err
		}
	}
	_, err := r.recv()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	}
	return errStreamOrder("a message after the end message")
}

// fileSpool is an envelope.Spool in an unlinked temporary file.
type fileSpool struct {
	f *os.File
	w *bufio.Writer
}

// newSpool makes an unlinked temporary file: its name is gone from the directory
// before anything is written, so it vanishes when closed, or when the process ends.
func (s *Server) newSpool() (*fileSpool, error) {
	f, err := os.CreateTemp(s.streams.SpoolDir, "signsvr-spool-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return &fileSpool{f: f, w: bufio.NewWriterSize(f, spoolBuf)}, nil
}

func (sp *fileSpool) Write(p []byte) (int, error) { return sp.w.Write(p) }

func (sp *fileSpool) Rewind() (io.Reader, error) {
	if err := sp.w.Flush(); err != nil {
		return nil, err
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return bufio.NewReaderSize(sp.f, spoolBuf), nil
}

func (sp *fileSpool) Close() error { return sp.f.Close() }

// outBufs are the output buffers of streams: one per call in flight.
var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, outBufCap); return &b }}
