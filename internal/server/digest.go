package server

// Signing from a digest the client computed.
//
// A client that keeps a large document sends only its digest: Sign makes a detached
// SignedData over it (SignRequest.content_digest), SignRaw a plain signature
// (SignRawRequest.data_digest; for SM2, SM3(Z || data), which the client computes
// from the user ID and public key ListKeys gives). The server cannot know what was
// hashed, so a key accepts client digests only when its configuration lists the
// algorithm (Options.ClientDigests; none by default), and the audit record says the
// digest came from the client (the algorithm name "client-digest").

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"slices"

	"github.com/emmansun/gmsm/sm2"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/sign"
)

// auditClientDigest is the algorithm name audit records give a client's digest.
const auditClientDigest = "client-digest"

// protoDigest is the API's name of d.
func protoDigest(d algorithm.Digest) signsvrv1.DigestAlgorithm {
	switch d {
	case algorithm.SHA256:
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256
	case algorithm.SHA384:
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384
	case algorithm.SHA512:
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512
	case algorithm.SM3:
		return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3
	}
	return signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED
}

// clientDigestList is the API's list of the digests key name accepts from clients.
func (s *Server) clientDigestList(name string) []signsvrv1.DigestAlgorithm {
	var out []signsvrv1.DigestAlgorithm
	for _, d := range s.clientDigests[name] {
		out = append(out, protoDigest(d))
	}
	return out
}

// acceptClientDigest refuses a client digest of d for k unless its configuration
// lists d, and one whose length is not d's.
func (s *Server) acceptClientDigest(k *key, d algorithm.Digest, digest []byte) error {
	if !slices.Contains(s.clientDigests[k.k.Name()], d) {
		return newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_KEY_USAGE_NOT_ALLOWED,
			fmt.Sprintf("key %s does not accept %s digests from clients", k.k.Name(), d), nil)
	}
	if n := digestSize(d); len(digest) != n {
		return invalidRequest("a %s digest is %d bytes, not %d", d, n, len(digest))
	}
	return nil
}

func digestSize(d algorithm.Digest) int {
	if d == algorithm.SM3 {
		return 32
	}
	return d.Hash().Size()
}

// signDigest is Sign for a request with content_digest.
func (s *Server) signDigest(ctx context.Context, req *signsvrv1.SignRequest) ([]byte, error) {
	if !req.GetDetached() || len(req.GetData()) > 0 {
		return nil, invalidRequest("a content digest makes a detached signature: set detached and leave data empty")
	}
	k, err := s.useKey(ctx, req.GetKey(), OpSign)
	if err != nil {
		return nil, err
	}
	u, err := requestUse(k.family, algorithm.SignCMS, req.GetOptions().GetDigest(), req.GetOptions().GetRsaScheme())
	if err != nil {
		return nil, err
	}
	if err := s.acceptClientDigest(k, u.Digest, req.GetContentDigest()); err != nil {
		return nil, err
	}
	var opts sign.Options
	if err := s.signOptions(k, true, req.GetOptions(), &opts); err != nil {
		return nil, err
	}
	signer, err := signerOf(ctx, k)
	if err != nil {
		return nil, err
	}
	der, err := sign.SignDigest(sign.ContentDigest{Algorithm: u.Digest.OID(), Digest: req.GetContentDigest()}, signer, k.chain, &opts)
	s.signed(ctx, k, err)
	if err != nil || req.GetTimestamp() == signsvrv1.SignatureTimestamp_SIGNATURE_TIMESTAMP_UNSPECIFIED {
		return der, err
	}
	return s.embedTimestamp(ctx, der, req.GetTimestamp()) // timestamp.go
}

// signRawDigest is SignRaw for a request with data_digest.
func (s *Server) signRawDigest(ctx context.Context, req *signsvrv1.SignRawRequest) (*signsvrv1.SignRawResponse, error) {
	if len(req.GetData()) > 0 {
		return nil, invalidRequest("give data or data_digest, not both")
	}
	k, err := s.useKey(ctx, req.GetKey(), OpSign)
	if err != nil {
		return nil, err
	}
	u, err := requestUse(k.family, algorithm.RawSignature, req.GetDigest(), req.GetRsaScheme())
	if err != nil {
		return nil, err
	}
	e := req.GetDataDigest()
	if err := s.acceptClientDigest(k, u.Digest, e); err != nil {
		return nil, err
	}
	signer, err := signerOf(ctx, k)
	if err != nil {
		return nil, err
	}
	var sig []byte
	h := u.Digest.Hash()
	switch u.Scheme {
	case algorithm.PKCS1v15, algorithm.ECDSA:
		sig, err = signer.Sign(rand.Reader, e, h)
	case algorithm.PSS:
		sig, err = signer.Sign(rand.Reader, e, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
	case algorithm.SM2WithSM3:
		// Without forceGMSign the signer (gmsm's, and the HSM backends') signs the
		// value given as SM3(Z || message).
		sig, err = signer.Sign(rand.Reader, e, sm2.NewSM2SignerOption(false, nil))
	default:
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
			"the key's algorithm is not supported", nil)
	}
	if err != nil {
		return nil, err
	}
	if k.checkNext() && !rawDigestValid(k.pub, u, e, sig) {
		err := fmt.Errorf("%w: raw signature with key %q", sign.ErrSelfCheck, req.GetKey())
		s.signed(ctx, k, err)
		return nil, err
	}
	resp := &signsvrv1.SignRawResponse{Signature: sig, SignatureAlgorithm: u.X509SignatureOID().String()}
	if k.leaf != nil {
		resp.Certificate = k.leaf.Raw
	}
	return resp, nil
}

// rawDigestValid checks a plain signature over the digest e.
func rawDigestValid(pub crypto.PublicKey, u algorithm.Use, e, sig []byte) bool {
	h := u.Digest.Hash()
	switch u.Scheme {
	case algorithm.PKCS1v15:
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(k, h, e, sig) == nil
	case algorithm.PSS:
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(k, h, e, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: h}) == nil
	case algorithm.ECDSA, algorithm.SM2WithSM3:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		if u.Scheme == algorithm.SM2WithSM3 {
			return sm2.VerifyASN1(k, e, sig)
		}
		return ecdsa.VerifyASN1(k, e, sig)
	}
	return false
}

// contentDigestOption turns VerifyRequest.content_digest into the verification's
// content digests.
func contentDigestOption(req *signsvrv1.VerifyRequest) ([]sign.ContentDigest, error) {
	if len(req.GetContentDigest()) == 0 {
		return nil, nil
	}
	if len(req.GetData()) > 0 {
		return nil, invalidRequest("give data or content_digest, not both")
	}
	d, known := requestDigest(req.GetContentDigestAlgorithm())
	if !known || d == algorithm.NoDigest {
		return nil, invalidRequest("content_digest needs its content_digest_algorithm")
	}
	return []sign.ContentDigest{{Algorithm: d.OID(), Digest: req.GetContentDigest()}}, nil
}

// auditClientDigests adds the client-digest mark to the algorithms of a record
// whose request gave a digest in place of the content.
func auditClientDigests(req any, algs []string) []string {
	switch r := req.(type) {
	case *signsvrv1.SignRequest:
		if len(r.GetContentDigest()) > 0 {
			return append(algs, auditClientDigest)
		}
	case *signsvrv1.SignRawRequest:
		if len(r.GetDataDigest()) > 0 {
			return append(algs, auditClientDigest)
		}
	}
	return algs
}
