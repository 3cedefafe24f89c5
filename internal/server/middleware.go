package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"signsvr.dev/signsvr/pkg/sign"
)

// requestInfo travels in the context of every API call. Handlers note the key they
// used, so the log line and the audit record name it.
type requestInfo struct {
	method string
	seq    uint64
	given  string // a client-supplied x-request-id, if any
	prefix string
	start  time.Time
	key    string
	// req is the decoded request, for the audit event.
	req any
	// decoded marks a request decoded before its call began (a pipelined item,
	// pipeline.go): its stream's next message is not its request.
	decoded bool
	// contentDigest (Sign) and itemDigests (SignBatch, by item) are the digests of
	// the data pkg/sign computed, which the audit record reuses when its algorithm is
	// the audit log's (audit.go).
	contentDigest sign.ContentDigest
	itemDigests   []sign.ContentDigest
	// dev marks a development server's request; identity is computed on first use.
	dev      bool
	identity *Identity
}

// id is the request id: the client's x-request-id when it sent a sane one, else a
// process-unique "<instance>-<sequence>". It is formatted only when needed (errors,
// debug logs), so the hot path pays for no string.
func (ri *requestInfo) id() string {
	if ri.given != "" {
		return ri.given
	}
	return ri.prefix + "-" + strconv.FormatUint(ri.seq, 36)
}

type requestInfoKey struct{}

func requestFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

// RequestID is the id of the request ctx belongs to, or "" outside a request.
func RequestID(ctx context.Context) string {
	if ri := requestFrom(ctx); ri != nil {
		return ri.id()
	}
	return ""
}

// noteKey records the first key a request uses, for the log and the audit record.
// Once a key is noted it only reads, so the items of a batch may call it concurrently
// after prepareBatch noted the first.
func noteKey(ctx context.Context, name string) {
	if ri := requestFrom(ctx); ri != nil && ri.key == "" && name != "" {
		ri.key = name
	}
}

// wrapService returns a copy of desc whose unary handlers run inside s.call, the
// server's outermost layer. It wraps the method handler rather than being a
// grpc.UnaryServerInterceptor because grpc decodes the request (and enforces the
// maximum message size) inside the handler, before any interceptor runs: only here
// can those failures be given a reason, a request id and a log line like every other.
func (s *Server) wrapService(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		full := "/" + desc.ServiceName + "/" + m.MethodName
		h := m.Handler
		d.Methods[i] = grpc.MethodDesc{
			MethodName: m.MethodName,
			Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				// The call's state, taken once: it keeps the keys and policy it began
				// with through a reload (reload.go).
				st := s.acquire()
				if st == nil {
					return nil, errStopped
				}
				defer st.unref()
				if impl, ok := st.impls[desc.ServiceName]; ok {
					srv = impl
				}
				return st.call(ctx, full, srv, dec, outerThenState(ic, st.chain), h)
			},
		}
	}
	d.Streams = make([]grpc.StreamDesc, len(desc.Streams))
	for i, sd := range desc.Streams {
		h := sd.Handler
		sd.Handler = func(srv any, stream grpc.ServerStream) error {
			st := s.acquire()
			if st == nil {
				return errStopped
			}
			defer st.unref()
			if impl, ok := st.impls[desc.ServiceName]; ok {
				srv = impl
			}
			return h(srv, stream)
		}
		d.Streams[i] = sd
	}
	return &d
}

// errStopped answers a call that arrives after Close.
var errStopped = status.Error(codes.Unavailable, "the server is stopping")

// call runs one unary RPC: request id, panic recovery, the decoding of the request,
// the interceptor chain and handler, then the one mapping of errors to statuses, the
// log line and the audit record.
func (s *Server) call(ctx context.Context, method string, srv any, dec func(any) error,
	ic grpc.UnaryServerInterceptor, h grpc.MethodHandler) (resp any, err error) {
	ri := s.newRequestInfo(method)
	if v := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(v) > 0 && saneRequestID(v[0]) {
		ri.given = v[0]
	}
	return s.serve(ctx, ri, srv, dec, ic, h)
}

func (s *Server) newRequestInfo(method string) *requestInfo {
	return &requestInfo{method: method, seq: s.seq.Add(1), prefix: s.instance, start: s.now(), dev: s.dev}
}

// serve is call for a request whose requestInfo is made: the pipelined stream
// (pipeline.go) runs each of its items through it as a unary call of its own.
func (s *Server) serve(ctx context.Context, ri *requestInfo, srv any, dec func(any) error,
	ic grpc.UnaryServerInterceptor, h grpc.MethodHandler) (resp any, err error) {
	method := ri.method
	ctx = context.WithValue(ctx, requestInfoKey{}, ri)
	if s.outer == nil {
		return s.serveCall(ctx, ri, srv, dec, ic, h)
	}
	return s.outer(ctx, nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
		return s.serveCall(ctx, ri, srv, dec, ic, h)
	})
}

// serveCall is call inside Options.CallInterceptors.
func (s *Server) serveCall(ctx context.Context, ri *requestInfo, srv any, dec func(any) error,
	ic grpc.UnaryServerInterceptor, h grpc.MethodHandler) (resp any, err error) {
	var decodeErr error
	defer func() {
		if r := recover(); r != nil {
			// The panic value and stack go to the log only; the client gets Internal
			// with no detail.
			s.log.LogAttrs(ctx, slog.LevelError, "panic in handler",
				slog.String("request_id", ri.id()), slog.String("method", ri.method),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			resp, err = nil, s.finish(ctx, ri, nil, internal(nil))
		}
	}()
	var held int64 // of the budget, for the request message
	defer func() { s.budget.give(held) }()
	resp, err = h(srv, ctx, func(v any) error {
		if e := s.readRequest(ctx, v, dec, &held); e != nil {
			decodeErr = e
			return e
		}
		ri.req = v
		return nil
	}, ic)
	if err != nil && decodeErr != nil && err == decodeErr {
		err = classify(decodeErr)
	}
	return resp, s.finish(ctx, ri, resp, err)
}

// finish logs the call, hands it to the auditor and maps err to a status. It is the
// only place where a handler's error becomes what the client sees.
func (s *Server) finish(ctx context.Context, ri *requestInfo, resp any, err error) error {
	var e *Error
	code := codes.OK
	if err != nil {
		e = classify(err)
		code = e.Code
	}
	if s.auditor != nil {
		ev := &AuditEvent{
			Time: ri.start, RequestID: ri.id(), Method: ri.method, Key: ri.key,
			Identity: IdentityFrom(ctx), Code: code, Request: ri.req,
		}
		if e != nil {
			ev.Reason = ReasonString(e.Reason)
		} else {
			ev.Response = resp
		}
		s.auditor.Audit(ctx, ev)
	}
	if e == nil {
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.LogAttrs(ctx, slog.LevelDebug, "call",
				slog.String("request_id", ri.id()), slog.String("method", ri.method),
				slog.String("key", ri.key), slog.Duration("took", s.now().Sub(ri.start)))
		}
		return nil
	}
	level := slog.LevelInfo
	if e.Code == codes.Internal || e.Code == codes.Unavailable {
		level = slog.LevelError
	}
	if s.log.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("request_id", ri.id()), slog.String("method", ri.method),
			slog.String("code", e.Code.String()), slog.String("reason", ReasonString(e.Reason)),
			slog.String("key", ri.key), slog.Duration("took", s.now().Sub(ri.start)),
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("cause", e.Err.Error()))
		}
		s.log.LogAttrs(ctx, level, "call failed", attrs...)
	}
	return e.status(ri.id())
}

// saneRequestID accepts a client request id of up to 64 printable ASCII characters.
func saneRequestID(v string) bool {
	if len(v) == 0 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
