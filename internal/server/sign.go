package server

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/sign"
	"signsvr.dev/signsvr/pkg/trust"
)

type signService struct {
	*Server
	signsvrv1.UnimplementedSignServiceServer
}

// Sign implements signsvrv1.SignServiceServer.
func (s signService) Sign(ctx context.Context, req *signsvrv1.SignRequest) (*signsvrv1.SignResponse, error) {
	var cd *sign.ContentDigest
	ri := requestFrom(ctx)
	if ri != nil && s.auditsDigests() {
		cd = &ri.contentDigest
	}
	der, err := s.sign(ctx, req, cd)
	if err != nil {
		return nil, err
	}
	return &signsvrv1.SignResponse{Cms: der}, nil
}

// sign signs one request. cd, when not nil, receives the content digest pkg/sign
// computed, for the audit record (audit.go: the data is not hashed twice).
func (s *Server) sign(ctx context.Context, req *signsvrv1.SignRequest, cd *sign.ContentDigest) ([]byte, error) {
	k, err := s.useKey(ctx, req.GetKey(), OpSign)
	if err != nil {
		return nil, err
	}
	var opts sign.Options
	if err := s.signOptions(k, req.GetDetached(), req.GetOptions(), &opts); err != nil {
		return nil, err
	}
	opts.ContentDigest = cd
	signer, err := signerOf(ctx, k)
	if err != nil {
		return nil, err
	}
	der, err := sign.Sign(req.GetData(), signer, k.chain, &opts)
	s.signed(ctx, k, err)
	if err != nil || req.GetTimestamp() == signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_UNSPECIFIED {
		return der, err
	}
	return s.embedTimestamp(ctx, der, req.GetTimestamp()) // timestamp.go
}

// Verify implements signsvrv1.SignServiceServer.
func (s signService) Verify(ctx context.Context, req *signsvrv1.VerifyRequest) (*signsvrv1.VerifyResponse, error) {
	return s.verify(ctx, req)
}

func (s *Server) verify(ctx context.Context, req *signsvrv1.VerifyRequest) (*signsvrv1.VerifyResponse, error) {
	if len(req.GetCms()) == 0 {
		return nil, invalidRequest("no CMS message given")
	}
	o := req.GetOptions()
	// Certificates carried in messages are parsed once and kept by their DER (certs.go):
	// parsing one costs about as many allocations as the rest of a verification.
	vo := &sign.VerifyOptions{Content: req.GetData(), AllowSHA1: o.GetAllowSha1(), ParseCertificate: s.certs.parse}
	var err error
	if vo.SM2UID, err = sm2UID(o.GetSm2UserId()); err != nil {
		return nil, err
	}
	if vo.Certs, err = s.parseCerts(o.GetCertificates(), "options.certificates"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := sign.Verify(req.GetCms(), vo)
	if err != nil {
		return nil, err
	}
	resp := &signsvrv1.VerifyResponse{
		ContentType: res.ContentType,
		Detached:    res.Detached,
	}
	if !o.GetOmitContent() {
		resp.Content = res.Content
	}
	stamps := s.checkTimestamps(ctx, res) // timestamp.go
	resp.Signers, resp.Verified = s.signerResultsAt(ctx, res, stamps)
	if stamps != nil {
		resp.Timestamps = stamps.list
	}
	return resp, nil
}

// signerResults validates every signer's certificate and builds the per-signer results.
// verified is true only when there is a signer and every signer has both verdicts good.
func (s *Server) signerResults(ctx context.Context, res *sign.Result) (out []*signsvrv1.SignerResult, verified bool) {
	return s.signerResultsAt(ctx, res, nil)
}

// signerResultsAt is signerResults where a signer with a valid signature timestamp
// (stamps, may be nil) has its certificate validated at the timestamp's time; the
// verdict at the current time is then reported with the timestamp.
func (s *Server) signerResultsAt(ctx context.Context, res *sign.Result, stamps *signerStamps) (out []*signsvrv1.SignerResult, verified bool) {
	now := s.now()
	out = make([]*signsvrv1.SignerResult, len(res.Signers))
	verified = len(res.Signers) > 0
	for i := range res.Signers {
		sr := &res.Signers[i]
		r := &signsvrv1.SignerResult{
			Index:              uint32(sr.Index),
			Signature:          &signsvrv1.SignatureVerdict{Valid: sr.Signature.Valid, Reason: sr.Signature.Reason},
			Serial:             sr.Serial,
			SubjectKeyId:       sr.SubjectKeyID,
			DigestAlgorithm:    sr.DigestAlgorithm,
			SignatureAlgorithm: sr.SignatureAlgorithm,
		}
		if sr.Certificate != nil {
			at := now
			if stamps != nil && !stamps.at[i].IsZero() {
				at = stamps.at[i]
				stamps.used[i].SignerCertificateVerdictNow, _ = s.checkCert(ctx, sr.Certificate, res.Certificates, now)
			}
			r.CertificateVerdict, sr.CertVerdict = s.checkCert(ctx, sr.Certificate, res.Certificates, at)
			n := s.certs.namesOf(sr.Certificate)
			r.Certificate = sr.Certificate.Raw
			r.Subject = n.subject
			r.Issuer = n.issuer
		} else {
			sr.CertVerdict = sign.CertVerdict{Status: sign.CertNotChecked, Reason: trust.ReasonNoCertificate}
			r.CertificateVerdict = &signsvrv1.CertificateVerdict{
				Status: signsvrv1.CertificateStatus_CERTIFICATE_STATUS_NOT_CHECKED,
				Reason: trust.ReasonNoCertificate,
				Detail: "the signer's certificate is neither in the message nor in the given certificates",
			}
			if len(sr.Issuer) > 0 {
				r.Issuer = nameString(sr.Issuer)
			}
		}
		if !sr.Signature.Valid && r.Signature.Reason == "" {
			r.Signature.Reason = "signature-invalid"
		}
		r.Verified = sr.Verified()
		if !r.Verified {
			verified = false
		}
		if !sr.SigningTime.IsZero() {
			r.SigningTime = timestamppb.New(sr.SigningTime)
		}
		out[i] = r
	}
	return out, verified
}

// checkCert validates a signer's certificate for signing at time at, and gives the
// verdict both as the API shows it and as pkg/sign counts it.
func (s *Server) checkCert(ctx context.Context, leaf *smx509.Certificate, intermediates []*smx509.Certificate,
	at time.Time) (*signsvrv1.CertificateVerdict, sign.CertVerdict) {
	return s.checkCertFor(ctx, s.validator, leaf, intermediates, at, trust.PurposeSign)
}

// checkCertFor is checkCert with a given validator and purpose.
func (s *Server) checkCertFor(ctx context.Context, validator CertValidator, leaf *smx509.Certificate,
	intermediates []*smx509.Certificate, at time.Time, purpose trust.Purpose) (*signsvrv1.CertificateVerdict, sign.CertVerdict) {
	v := validator.Validate(ctx, leaf, intermediates, at, purpose)
	sv := sign.CertVerdict{Status: sign.CertUnknown, Reason: v.Reason, Chain: v.Chain}
	if int(v.Status) < len(certStatus) {
		sv.Status = certStatus[v.Status].sign
	}
	return apiVerdict(v), sv
}

// nameString formats a DER Name, for signers whose certificate was not found.
func nameString(der []byte) string {
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdn); err != nil || len(rest) != 0 {
		return ""
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return n.String()
}

// certStatus maps trust.Status to the API's and pkg/sign's verdicts.
var certStatus = [...]struct {
	api  signsvrv1.CertificateStatus
	sign sign.CertStatus
}{
	trust.StatusUnknown:    {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNKNOWN, sign.CertUnknown},
	trust.StatusGood:       {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_GOOD, sign.CertGood},
	trust.StatusRevoked:    {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_REVOKED, sign.CertRevoked},
	trust.StatusExpired:    {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_EXPIRED, sign.CertExpired},
	trust.StatusUntrusted:  {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_UNTRUSTED, sign.CertUntrusted},
	trust.StatusWrongUsage: {signsvrv1.CertificateStatus_CERTIFICATE_STATUS_WRONG_USAGE, sign.CertWrongUsage},
}

// parseCerts parses DER certificates from a request, through the cache.
func (s *Server) parseCerts(ders [][]byte, field string) ([]*smx509.Certificate, error) {
	if len(ders) == 0 {
		return nil, nil
	}
	out := make([]*smx509.Certificate, len(ders))
	for i, d := range ders {
		c, err := s.certs.parse(d)
		if err != nil {
			return nil, malformed(field, err)
		}
		out[i] = c
	}
	return out, nil
}

// SignBatch implements signsvrv1.SignServiceServer. Items are signed in parallel
// across the cores (forEachItem); results keep the input order.
func (s signService) SignBatch(ctx context.Context, req *signsvrv1.SignBatchRequest) (*signsvrv1.SignBatchResponse, error) {
	items := req.GetItems()
	if err := s.checkBatch(len(items)); err != nil {
		return nil, err
	}
	prepareBatch(ctx, items)
	ders := make([][]byte, len(items))
	errs := make([]error, len(items))
	var cds []sign.ContentDigest // for the audit records, one per item
	if ri := requestFrom(ctx); ri != nil && s.auditsDigests() {
		cds = make([]sign.ContentDigest, len(items))
		ri.itemDigests = cds
	}
	s.forEachItem(len(items), s.signWorkers(items), func(i int) bool {
		var cd *sign.ContentDigest
		if cds != nil {
			cd = &cds[i]
		}
		ders[i], errs[i] = s.sign(ctx, items[i], cd)
		return errs[i] == nil || !isFatal(ctx, errs[i])
	})
	resp := &signsvrv1.SignBatchResponse{Results: make([]*signsvrv1.SignBatchResult, len(items))}
	results := make([]signsvrv1.SignBatchResult, len(items)) // one allocation for all
	for i := range items {
		r := &results[i]
		if err := errs[i]; err != nil {
			ie, fatal := s.itemFailure(ctx, i, err)
			if fatal != nil {
				return nil, fatal
			}
			r.Error = ie
		} else {
			r.Cms = ders[i]
		}
		resp.Results[i] = r
	}
	return resp, nil
}

// VerifyBatch implements signsvrv1.SignServiceServer. Items are verified in parallel
// across the cores (forEachItem); results keep the input order.
func (s signService) VerifyBatch(ctx context.Context, req *signsvrv1.VerifyBatchRequest) (*signsvrv1.VerifyBatchResponse, error) {
	items := req.GetItems()
	if err := s.checkBatch(len(items)); err != nil {
		return nil, err
	}
	IdentityFrom(ctx) // resolved once, before items run concurrently
	vrs := make([]*signsvrv1.VerifyResponse, len(items))
	errs := make([]error, len(items))
	s.forEachItem(len(items), runtime.GOMAXPROCS(0), func(i int) bool {
		vrs[i], errs[i] = s.verify(ctx, items[i])
		return errs[i] == nil || !isFatal(ctx, errs[i])
	})
	resp := &signsvrv1.VerifyBatchResponse{Results: make([]*signsvrv1.VerifyBatchResult, len(items))}
	results := make([]signsvrv1.VerifyBatchResult, len(items))
	for i := range items {
		r := &results[i]
		if err := errs[i]; err != nil {
			ie, fatal := s.itemFailure(ctx, i, err)
			if fatal != nil {
				return nil, fatal
			}
			r.Error = ie
		} else {
			r.Result = vrs[i]
		}
		resp.Results[i] = r
	}
	return resp, nil
}

// prepareBatch does, before the items of a signing batch run concurrently, the writes
// to the request's shared state that the first item would do: the caller's identity
// is resolved, and the first key named is noted for the log line (as a sequential run
// would note it). Afterwards the items only read that state.
func prepareBatch(ctx context.Context, items []*signsvrv1.SignRequest) {
	IdentityFrom(ctx)
	for _, it := range items {
		if it.GetKey() != "" {
			noteKey(ctx, it.GetKey())
			return
		}
	}
}

// isFatal reports whether a batch item's error fails the whole call (itemFailure):
// then the items not yet started are not run.
func isFatal(ctx context.Context, err error) bool {
	return classify(err).Code == codes.Internal || ctx.Err() != nil
}

// hsmBatchWorkers is how many items of one signing batch may wait on a device at once.
const hsmBatchWorkers = 16

// signWorkers is how many items of a signing batch run at once: one per core for keys
// Go signs with (more would only queue for the cores), but enough to keep an HSM's
// session pool busy when an item's key is computed elsewhere (keystore.GoNativeKey),
// since such an item mostly waits. Only keys already prepared are looked at: nothing
// here touches the store or authorization.
func (s *Server) signWorkers(items []*signsvrv1.SignRequest) int {
	w := runtime.GOMAXPROCS(0)
	for _, it := range items {
		if v, ok := s.keys.m.Load(it.GetKey()); ok && !v.(*key).goNative {
			return max(w, hsmBatchWorkers)
		}
	}
	return w
}

// forEachItem runs fn(0..n-1) on up to workers goroutines, handing out indexes in
// order; with one worker (or for one item) it is a plain loop. When fn returns false
// (a fatal error) no further index is handed out. Every index below a fatal one has
// then been run to completion, because indexes are handed out in increasing order: the
// in-order scan of the results meets the fatal error before any item left unrun.
func (s *Server) forEachItem(n, workers int, fn func(i int) bool) {
	workers = min(n, workers)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			if !fn(i) {
				return
			}
		}
		return
	}
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var panicked atomic.Pointer[string]
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			defer func() {
				// A panic in a worker would end the process (grpc recovers none, and
				// call's recover sees only its own goroutine): carry it over.
				if r := recover(); r != nil {
					p := fmt.Sprintf("%v (in a batch worker)\n%s", r, debug.Stack())
					panicked.CompareAndSwap(nil, &p)
					stop.Store(true)
				}
			}()
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if !fn(i) {
					stop.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(*p) // recovered, logged and answered Internal by call (middleware.go)
	}
}

func (s *Server) checkBatch(n int) error {
	if n > s.maxBatch {
		return newError(codes.ResourceExhausted, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
			fmt.Sprintf("too many items in the batch (at most %d)", s.maxBatch), nil)
	}
	return nil
}

// itemFailure turns the error of batch item i into its ItemError. An internal error,
// or the end of the request's context, fails the whole call instead (fatal != nil):
// the remaining items would fail the same way.
func (s *Server) itemFailure(ctx context.Context, i int, err error) (ie *signsvrv1.ItemError, fatal error) {
	e := classify(err)
	if e.Code == codes.Internal {
		return nil, e
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{slog.String("request_id", RequestID(ctx)), slog.Int("item", i),
			slog.String("code", e.Code.String()), slog.String("reason", ReasonString(e.Reason))}
		if e.Err != nil {
			attrs = append(attrs, slog.String("cause", e.Err.Error()))
		}
		s.log.LogAttrs(ctx, slog.LevelDebug, "batch item failed", attrs...)
	}
	return e.itemError(), nil
}
