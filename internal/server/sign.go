package server

import (
	"context"
	"runtime"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/sign"
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
	return &signsvrv1.SignResponse{Cms: der, KeyUsed: s.keyUsed(ctx, req.GetKey())}, nil
}

// sign signs one request. cd, when not nil, receives the content digest pkg/sign
// computed, for the audit record (audit.go: the data is not hashed twice).
func (s *Server) sign(ctx context.Context, req *signsvrv1.SignRequest, cd *sign.ContentDigest) ([]byte, error) {
	if len(req.GetContentDigest()) > 0 {
		return s.signDigest(ctx, req) // digest.go
	}
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
	vo := s.verifyOptions(ctx)
	// Data has explicit presence: set and empty, it decodes to a non-nil empty slice,
	// which sign.Verify takes as empty detached content (nil is none).
	vo.Content = req.GetData()
	var err error
	if vo.ContentDigests, err = contentDigestOption(req); err != nil { // digest.go
		return nil, err
	}
	if err := s.applyVerifyOptions(vo, o, "options"); err != nil {
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
