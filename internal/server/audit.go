package server

import (
	"context"
	"encoding/asn1"
	"hash"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/sign"
)

// Audit records
//
// AuditLog writes one pkg/audit record per API call, and one per item of a
// SignBatch or VerifyBatch (each item is an operation of its own), before the
// response leaves the server. It does so in the outermost unary interceptor, around
// authentication, authorization and the handler, so refusals are recorded like
// successes, and so a failed write can still turn the answer into UNAVAILABLE
// (reason UNAVAILABLE): with
// the default fail-closed log, a client never receives a signature, a plaintext or a
// token that is not in the log. Calls that never reach the interceptors (a request
// that cannot be decoded, a handler that panicked) are recorded through the Auditor
// seam in the method wrapper instead; their answer is an error already.
//
// A record holds the request id, the caller (its client certificate, or the
// development identity marked "dev"), the operation, the key name, the algorithms,
// the digests (the log's hash) of the request's main input and of the response's
// main output, and the status code and reason. For SignedData the digests are taken
// over what the operation has in hand without a second pass over the data (pkg/audit,
// "What in and out name"): a Sign's input is the content digest pkg/sign computed
// and its output the signerInfos of the SignedData; a Verify's input is the
// signerInfos of the message, its output the response without the content. Else the
// main input is data when present, else cms, else signature, else the whole
// request's deterministic protobuf encoding; the main output likewise from cms,
// signature, token, data, else the whole response; for DecryptAndVerify the content,
// then the rest of the answer (verdictDigest), which a stream can digest as the
// content passes. Bytes are never stored, only their digests.

// AuditLog is the Auditor over a pkg/audit log.
type AuditLog struct {
	log *audit.Log
	// recorded holds the requests (*requestInfo) the interceptor already recorded,
	// until the method wrapper's Audit call for them removes the mark.
	recorded sync.Map
}

// NewAuditLog wraps an open audit log. The caller closes the log after the server
// stopped.
func NewAuditLog(l *audit.Log) *AuditLog { return &AuditLog{log: l} }

var _ Auditor = (*AuditLog)(nil)

// Health is the log's: nil while it writes and checkpoints, else the last failure. A
// server with an AuditLog reports NOT_SERVING while it fails, since it then refuses
// every audited call; a fail-open log, which lets the calls through, stays healthy.
func (a *AuditLog) Health(context.Context) error {
	if a.log.FailsOpen() {
		return nil
	}
	return a.log.Health()
}

// Audit implements Auditor: it records calls the interceptor did not see.
func (a *AuditLog) Audit(ctx context.Context, ev *AuditEvent) {
	ri := requestFrom(ctx)
	if ri != nil {
		if _, done := a.recorded.LoadAndDelete(ri); done {
			return
		}
	}
	rec := audit.Record{
		RequestID: ev.RequestID, Caller: auditCaller(ev.Identity), Op: auditOp(ev.Method), Key: ev.Key,
		Code: ev.Code.String(), Reason: ev.Reason,
	}
	req, hadPassword := passwordFree(ev.Request)
	if m, ok := req.(proto.Message); ok {
		rec.Input, _ = auditInput(m, nil)
	}
	if hadPassword {
		rec.Algorithms = []string{auditPassword}
	}
	// The answer is an error already; a failed write is logged by pkg/audit.
	_ = a.log.Append(ctx, rec)
}

// auditInterceptors puts the audit interceptor in front of rest when the auditor is
// an AuditLog.
func (s *Server) auditInterceptors(rest []grpc.UnaryServerInterceptor) []grpc.UnaryServerInterceptor {
	if _, ok := s.auditor.(*AuditLog); !ok {
		return rest
	}
	return append([]grpc.UnaryServerInterceptor{s.auditCall}, rest...)
}

var errAuditUnavailable = newError(codes.Unavailable, signsvrv1.ErrorReason_ERROR_REASON_UNAVAILABLE,
	"the audit log cannot be written; the operation's result is withheld", nil)

// auditCall runs the call, then writes its record(s); a write failure replaces the
// answer with UNAVAILABLE.
func (s *Server) auditCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ri := requestFrom(ctx)
	al, _ := s.auditor.(*AuditLog)
	if ri == nil || al == nil {
		return handler(ctx, req)
	}
	resp, err := handler(ctx, req)
	werr := s.writeAudit(ctx, al, ri, info.FullMethod, req, resp, err)
	al.recorded.Store(ri, struct{}{})
	if werr != nil {
		s.recheckHealth()
		e := *errAuditUnavailable
		e.Err = werr
		return nil, &e
	}
	return resp, err
}

func (s *Server) writeAudit(ctx context.Context, al *AuditLog, ri *requestInfo, method string, req, resp any, err error) error {
	// A password is never recorded, nor digested: the record says only that one was used.
	req, hadPassword := passwordFree(req)
	rec := audit.Record{
		RequestID: ri.id(), Caller: auditCaller(IdentityFrom(ctx)), Op: auditOp(method), Key: ri.key, Code: "OK",
	}
	if err != nil {
		e := classify(err)
		rec.Code, rec.Reason = e.Code.String(), ReasonString(e.Reason)
	}
	if b, ok := req.(*signsvrv1.SignBatchRequest); ok && err == nil {
		// One record per item: each is a signature with its own key. The records go
		// to the log in one write.
		out, _ := resp.(*signsvrv1.SignBatchResponse)
		recs := make([]audit.Record, 0, len(b.GetItems()))
		for i, item := range b.GetItems() {
			r := rec
			r.Key = item.GetKey()
			r.Input = item.GetData()
			if i < len(ri.itemDigests) && len(r.Input) > 0 {
				if d := al.reusable(&ri.itemDigests[i]); d != nil {
					r.Input, r.InputDigest = nil, d
				}
			}
			r.Algorithms = s.auditAlgorithms(item.GetKey(), item)
			r.Code, r.Reason = "OK", ""
			if i < len(out.GetResults()) {
				res := out.GetResults()[i]
				if ie := res.GetError(); ie != nil {
					r.Code, r.Reason = codes.Code(ie.GetCode()).String(), ie.GetReason()
				} else {
					r.Output = signerInfosOr(res.GetCms())
					r.KeyGeneration, r.KeySerial = res.GetKeyUsed().GetGeneration(), res.GetKeyUsed().GetCertificateSerial()
				}
			}
			if r.Input == nil && r.InputDigest == nil {
				r.Input = []byte{}
			}
			recs = append(recs, r)
		}
		return al.log.AppendBatch(ctx, recs)
	}
	// A message without a main bytes field is digested whole, through one pooled
	// buffer: Append digests the bytes before it returns and keeps none of them.
	bp := wholeBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	if b, ok := req.(*signsvrv1.VerifyBatchRequest); ok && err == nil {
		werr := s.writeVerifyBatchAudit(ctx, al, rec, b, resp, buf)
		wholeBufs.Put(bp)
		return werr
	}
	if m, ok := req.(proto.Message); ok {
		rec.Input, buf = auditInput(m, buf)
	}
	if r, ok := req.(*signsvrv1.SignRequest); ok && len(r.GetData()) > 0 && err == nil {
		// The main input is the data, which pkg/sign digested already.
		if d := al.reusable(&ri.contentDigest); d != nil {
			rec.Input, rec.InputDigest = nil, d
		}
	}
	if r, ok := resp.(*signsvrv1.DecryptAndVerifyResponse); ok && err == nil {
		h := al.log.HashAlg().New()
		h.Write(r.GetContent())
		verdictDigest(h, r)
		rec.OutputDigest = h.Sum(nil)
	} else if m, ok := resp.(proto.Message); ok && err == nil {
		rec.Output, buf = auditOutput(m, buf)
	}
	rec.Algorithms = s.auditAlgorithms(ri.key, req)
	if u, ok := resp.(interface{ GetKeyUsed() *signsvrv1.KeyUse }); ok && err == nil {
		rec.KeyGeneration, rec.KeySerial = u.GetKeyUsed().GetGeneration(), u.GetKeyUsed().GetCertificateSerial()
	}
	if hadPassword {
		rec.Algorithms = append(rec.Algorithms, auditPassword)
	}
	werr := al.log.Append(ctx, rec)
	if cap(buf) <= maxPooledWhole {
		*bp = buf
		wholeBufs.Put(bp)
	}
	return werr
}

// writeVerifyBatchAudit writes one record per item of a VerifyBatch, as for
// SignBatch: each is a verification of its own object. rec is the call's record.
func (s *Server) writeVerifyBatchAudit(ctx context.Context, al *AuditLog, rec audit.Record, b *signsvrv1.VerifyBatchRequest, resp any, buf []byte) error {
	out, _ := resp.(*signsvrv1.VerifyBatchResponse)
	recs := make([]audit.Record, 0, len(b.GetItems()))
	// The responses' encodings share buf: Append digests them all before it returns.
	for i, item := range b.GetItems() {
		r := rec
		r.Input, _ = auditInput(item, nil)
		if i < len(out.GetResults()) {
			res := out.GetResults()[i]
			if ie := res.GetError(); ie != nil {
				r.Code, r.Reason = codes.Code(ie.GetCode()).String(), ie.GetReason()
			} else if vr := res.GetResult(); vr != nil {
				start := len(buf)
				_, buf = verifyOutput(vr, buf)
				r.Output = buf[start:len(buf):len(buf)]
			}
		}
		recs = append(recs, r)
	}
	// Earlier items' outputs point into buf's earlier backing arrays when it grew:
	// those stay valid, as nothing writes them again before Append returns.
	return al.log.AppendBatch(ctx, recs)
}

// auditInput is the record's input of request m: the signerInfos of a Verify's
// message (see pkg/audit, "What in and out name"), else its main input.
func auditInput(m proto.Message, buf []byte) ([]byte, []byte) {
	if r, ok := m.(*signsvrv1.VerifyRequest); ok && len(r.GetCms()) > 0 {
		return signerInfosOr(r.GetCms()), buf
	}
	return mainInputBuf(m, buf)
}

// auditOutput is the record's output of response m: the signerInfos of a Sign's
// SignedData, a Verify's response without its content, else the main output.
func auditOutput(m proto.Message, buf []byte) ([]byte, []byte) {
	switch r := m.(type) {
	case *signsvrv1.SignResponse:
		return signerInfosOr(r.GetCms()), buf
	case *signsvrv1.VerifyResponse:
		return verifyOutput(r, buf)
	}
	return mainOutputBuf(m, buf)
}

// signerInfosOr is the DER of the signerInfos SET of SignedData der, found without
// reading the content or the certificates; der itself when it has none to find.
func signerInfosOr(der []byte) []byte {
	if si, err := cms.SignerInfosDER(der); err == nil {
		return si
	}
	return der
}

// verifyOutput appends the deterministic encoding of r without its content to buf.
// The content is the message's own, which the record's input binds already; r is
// the call's response, not yet sent and read by nobody else, so its content is set
// aside for the encoding and put back.
func verifyOutput(r *signsvrv1.VerifyResponse, buf []byte) ([]byte, []byte) {
	content := r.Content
	r.Content = nil
	b, buf := wholeMessage(r, buf)
	r.Content = content
	return b, buf
}

// wholeBufs holds buffers for whole-message encodings (Verify responses, ListKeys...).
var wholeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledWhole = 64 << 10

// auditsDigests reports whether calls are recorded by an AuditLog, which can take the
// content digests pkg/sign computes instead of hashing the data again.
func (s *Server) auditsDigests() bool {
	_, ok := s.auditor.(*AuditLog)
	return ok
}

// reusable returns the digest of cd when it was made with the log's own digest
// algorithm (SHA-256 or SM3), else nil: then the record digests the data itself.
func (a *AuditLog) reusable(cd *sign.ContentDigest) []byte {
	if len(cd.Digest) == 0 || !a.hashIs(cd.Algorithm) {
		return nil
	}
	return cd.Digest
}

// hashIs reports whether digest algorithm oid is the log's hash.
func (a *AuditLog) hashIs(oid asn1.ObjectIdentifier) bool {
	switch a.log.HashAlg() {
	case audit.SHA256:
		return oid.Equal(cms.OIDSHA256)
	case audit.SM3:
		return oid.Equal(cms.OIDSM3)
	}
	return false
}

// auditCaller turns the server's identity into the audit log's.
func auditCaller(id *Identity) audit.Caller {
	switch {
	case id == nil:
		return audit.Caller{Kind: audit.CallerNone}
	case id.Development:
		return audit.DevCaller(id.Subject)
	}
	return audit.Caller{Kind: audit.CallerCert, Holder: id.Holder}
}

// auditOps names the operation of every method; others are named by their method
// name in snake case.
var auditOps = map[string]audit.Op{
	signsvrv1.SignService_Sign_FullMethodName:                       audit.OpSign,
	signsvrv1.SignService_SignBatch_FullMethodName:                  audit.OpSign,
	signsvrv1.SignService_Verify_FullMethodName:                     audit.OpVerify,
	signsvrv1.SignService_VerifyBatch_FullMethodName:                audit.OpVerify,
	signsvrv1.SignService_SignRaw_FullMethodName:                    audit.OpSignRaw,
	signsvrv1.SignService_VerifyRaw_FullMethodName:                  "verify_raw",
	signsvrv1.EnvelopeService_Envelope_FullMethodName:               audit.OpEnvelope,
	signsvrv1.EnvelopeService_Decrypt_FullMethodName:                audit.OpDecrypt,
	signsvrv1.EnvelopeService_SignAndEnvelope_FullMethodName:        audit.OpSignAndEnvelope,
	signsvrv1.EnvelopeService_DecryptAndVerify_FullMethodName:       audit.OpDecryptAndVerify,
	signsvrv1.CertificateService_ValidateCertificate_FullMethodName: audit.OpValidate,
	signsvrv1.AuthService_Login_FullMethodName:                      audit.OpLogin,
	signsvrv1.AuthService_CreateChallenge_FullMethodName:            "login_challenge",
	signsvrv1.TimestampService_Timestamp_FullMethodName:             audit.OpTimestamp,
	signsvrv1.KeyService_ListKeys_FullMethodName:                    "list_keys",
	signsvrv1.CertificateService_ParseCertificate_FullMethodName:    "parse_certificate",
	signsvrv1.AuthService_GetTokenKey_FullMethodName:                "get_token_key",
}

func auditOp(method string) audit.Op {
	if op, ok := auditOps[method]; ok {
		return op
	}
	name := method[strings.LastIndexByte(method, '/')+1:]
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return audit.Op(b.String())
}

// Accessors of the fields that hold a message's main bytes.
type (
	dataGetter      interface{ GetData() []byte }
	cmsGetter       interface{ GetCms() []byte }
	signatureGetter interface{ GetSignature() []byte }
	tokenGetter     interface{ GetToken() []byte }
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// mainInputBuf is the main input of request m (data, else cms, else signature, else
// the whole message); a whole-message encoding is appended to buf, and the grown buf
// is returned for reuse.
func mainInputBuf(m proto.Message, buf []byte) ([]byte, []byte) {
	if g, ok := m.(dataGetter); ok && len(g.GetData()) > 0 {
		return g.GetData(), buf
	}
	if g, ok := m.(cmsGetter); ok && len(g.GetCms()) > 0 {
		return g.GetCms(), buf
	}
	if g, ok := m.(signatureGetter); ok && len(g.GetSignature()) > 0 {
		return g.GetSignature(), buf
	}
	return wholeMessage(m, buf)
}

func mainOutputBuf(m proto.Message, buf []byte) ([]byte, []byte) {
	if g, ok := m.(cmsGetter); ok && len(g.GetCms()) > 0 {
		return g.GetCms(), buf
	}
	if g, ok := m.(signatureGetter); ok && len(g.GetSignature()) > 0 {
		return g.GetSignature(), buf
	}
	if g, ok := m.(tokenGetter); ok && len(g.GetToken()) > 0 {
		return g.GetToken(), buf
	}
	if g, ok := m.(dataGetter); ok && len(g.GetData()) > 0 {
		return g.GetData(), buf
	}
	return wholeMessage(m, buf)
}

// verdictDigest writes to h, which has digested the content already, the rest of a
// DecryptAndVerify answer: its deterministic encoding without the content. That is
// the record's output digest, the same whether the content came in the unary
// answer or passed a stream before its verdict was known (with omit_content, the
// digest of the whole answer).
func verdictDigest(h hash.Hash, r *signsvrv1.DecryptAndVerifyResponse) {
	rest := &signsvrv1.DecryptAndVerifyResponse{Verified: r.GetVerified(), Signers: r.GetSigners(),
		ContentType: r.GetContentType(), KeyUsed: r.GetKeyUsed()}
	enc, _ := wholeMessage(rest, nil)
	h.Write(enc)
}

// wholeMessage appends m's deterministic encoding to buf[len(buf):] and returns that
// encoding (never nil) and the grown buffer.
func wholeMessage(m proto.Message, buf []byte) ([]byte, []byte) {
	start := len(buf)
	b, err := deterministic.MarshalAppend(buf, m)
	if err != nil {
		return []byte{}, buf
	}
	return b[start:len(b):len(b)], b
}

// auditAlgorithms names the signature scheme and digest of a call that used a key, as
// far as the request says and the algorithm table allows the key's family (the
// family's defaults otherwise); a decryption names the family's scheme alone.
func (s *Server) auditAlgorithms(keyName string, req any) []string {
	if keyName == "" {
		return nil
	}
	var fam algorithm.Family
	if v, ok := s.keys.m.Load(keyName); ok {
		fam = v.(*key).family
	} else if ts := s.timestamps; ts != nil && ts.authority != nil && keyName == ts.key {
		fam = algorithm.Of(ts.authority.Certificate().PublicKey)
	} else {
		return nil
	}
	var (
		digest signsvrv1.DigestAlgorithm
		scheme signsvrv1.RsaSignatureScheme
	)
	signs, purpose := true, algorithm.SignCMS
	switch r := req.(type) {
	case *signsvrv1.SignRequest:
		digest, scheme = r.GetOptions().GetDigest(), r.GetOptions().GetRsaScheme()
	case *signsvrv1.SignRawRequest:
		// A raw signature has defaults of its own (SHA-384 for P-384).
		digest, scheme, purpose = r.GetDigest(), r.GetRsaScheme(), algorithm.RawSignature
	case *signsvrv1.SignAndEnvelopeRequest:
		digest, scheme = r.GetSignOptions().GetDigest(), r.GetSignOptions().GetRsaScheme()
	case *signsvrv1.TimestampRequest:
		// The token's signature: the TSA key's defaults.
	case *signsvrv1.DecryptRawRequest:
		return rawAuditAlgorithms(fam, r.GetRsaScheme(), r.GetOaepDigest())
	case *signsvrv1.EncryptRawRequest:
		return rawAuditAlgorithms(fam, r.GetRsaScheme(), r.GetOaepDigest())
	default:
		signs = false // decryption: the key family alone
	}
	u, ok := auditUse(fam, purpose, digest, scheme)
	if !ok {
		return nil
	}
	if !signs {
		return []string{auditSchemeNames[u.Scheme]}
	}
	return auditClientDigests(req, []string{auditSchemeNames[u.Scheme], u.Digest.String()}) // digest.go
}

// rawAuditAlgorithms names the raw encryption scheme a request asked of family f
// (nil when the table has none: the call was refused for it).
func rawAuditAlgorithms(f algorithm.Family, s signsvrv1.RsaEncryptionScheme, d signsvrv1.DigestAlgorithm) []string {
	u, err := rawUse(f, s, d)
	if err != nil {
		return nil
	}
	if u.Digest == algorithm.NoDigest {
		return []string{u.Scheme.String()}
	}
	return []string{u.Scheme.String(), u.Digest.String()}
}

// auditUse is the use a request's digest and RSA scheme ask of family f for purpose p,
// falling back to the family's default for what it does not have (the record of a
// refused request names what the key would have used); ok is false for a key outside
// the table.
func auditUse(f algorithm.Family, p algorithm.Purpose, d signsvrv1.DigestAlgorithm, s signsvrv1.RsaSignatureScheme) (algorithm.Use, bool) {
	var scheme algorithm.Scheme
	if _, ok := algorithm.Pick(f, p, algorithm.PSS, algorithm.NoDigest); ok && s == signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS {
		scheme = algorithm.PSS
	}
	if digest, known := requestDigest(d); known {
		if u, ok := algorithm.Pick(f, p, scheme, digest); ok {
			return u, true
		}
	}
	return algorithm.Pick(f, p, scheme, algorithm.NoDigest)
}

// auditSchemeNames are the names audit records give signature schemes, digests being
// named on their own.
var auditSchemeNames = map[algorithm.Scheme]string{
	algorithm.PKCS1v15:   "RSA",
	algorithm.PSS:        "RSA-PSS",
	algorithm.ECDSA:      "ECDSA",
	algorithm.SM2WithSM3: "SM2",
}
