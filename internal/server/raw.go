package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/sign"
)

func digestOf(h crypto.Hash, data []byte) []byte {
	hh := h.New()
	hh.Write(data)
	return hh.Sum(nil)
}

// SignRaw implements signsvrv1.SignServiceServer.
func (s signService) SignRaw(ctx context.Context, req *signsvrv1.SignRawRequest) (*signsvrv1.SignRawResponse, error) {
	if len(req.GetDataDigest()) > 0 {
		return s.signRawDigest(ctx, req) // digest.go
	}
	k, err := s.useKey(ctx, req.GetKey(), OpSign)
	if err != nil {
		return nil, err
	}
	u, err := requestUse(k.family, algorithm.RawSignature, req.GetDigest(), req.GetRsaScheme())
	if err != nil {
		return nil, err
	}
	uid, err := sm2UID(req.GetSm2UserId())
	if err != nil {
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
		sig, err = signer.Sign(rand.Reader, digestOf(h, req.GetData()), h)
	case algorithm.PSS:
		sig, err = signer.Sign(rand.Reader, digestOf(h, req.GetData()), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
	case algorithm.SM2WithSM3:
		// gmsm's convention (and the keystore's): with forceGMSign the signer gets the
		// whole message and computes Z and SM3 itself.
		// gmsm's own option value for the default user ID lets a signer use the Z
		// value it computed once per key (pkg/keystore/soft).
		so := sm2.DefaultSM2SignerOpts
		if uid != nil {
			so = sm2.NewSM2SignerOption(true, uid)
		}
		sig, err = signer.Sign(rand.Reader, req.GetData(), so)
	default:
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
			"the key's algorithm is not supported", nil)
	}
	if err != nil {
		return nil, err
	}
	// As Sign does: a signature computed outside Go (an HSM) is checked before it is
	// handed out, since an HSM can misbehave (as often as the key's policy says).
	if k.checkNext() && !rawValid(k.pub, u, uid, req.GetData(), sig) {
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

// VerifyRaw implements signsvrv1.SignServiceServer.
func (s signService) VerifyRaw(ctx context.Context, req *signsvrv1.VerifyRawRequest) (*signsvrv1.VerifyRawResponse, error) {
	var (
		cert          *smx509.Certificate
		intermediates []*smx509.Certificate
	)
	switch {
	case req.GetKey() != "" && len(req.GetCertificate()) > 0:
		return nil, invalidRequest("give key or certificate, not both")
	case req.GetKey() != "":
		noteKey(ctx, req.GetKey())
		k, err := s.lookupKey(ctx, req.GetKey())
		if err != nil {
			return nil, err
		}
		if k.leaf == nil {
			return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
				"key "+req.GetKey()+" has no certificate", nil)
		}
		cert, intermediates = k.leaf, k.chain[1:]
	case len(req.GetCertificate()) > 0:
		c, err := s.certs.parse(req.GetCertificate())
		if err != nil {
			return nil, malformed("certificate", err)
		}
		cert = c
	default:
		return nil, invalidRequest("give the key or the certificate that signed")
	}
	if len(req.GetSignature()) == 0 {
		return nil, invalidRequest("no signature given")
	}
	f, err := algorithm.Check(cert.PublicKey, algorithm.RawSignature)
	if err != nil {
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
			"the certificate's key algorithm is not supported", nil)
	}
	u, err := requestUse(f, algorithm.RawSignature, req.GetDigest(), req.GetRsaScheme())
	if err != nil {
		return nil, err
	}
	uid, err := sm2UID(req.GetSm2UserId())
	if err != nil {
		return nil, err
	}

	valid := rawValid(cert.PublicKey, u, uid, req.GetData(), req.GetSignature())
	resp := &signsvrv1.VerifyRawResponse{Signature: &signsvrv1.SignatureVerdict{Valid: valid}}
	if !valid {
		resp.Signature.Reason = "signature-invalid"
	}
	var cv sign.CertVerdict
	resp.CertificateVerdict, cv = s.checkCert(ctx, cert, intermediates, s.now())
	resp.Verified = valid && cv.Status == sign.CertGood
	return resp, nil
}

// rawValid checks a raw signature over data made with the public key pub for use u, as
// SignRaw writes them: RSA PKCS#1 v1.5 or PSS over the digest, ECDSA DER over the
// digest, SM2 DER with the Z value of uid (nil: the default user ID).
func rawValid(pub crypto.PublicKey, u algorithm.Use, uid, data, sig []byte) bool {
	h := u.Digest.Hash()
	switch u.Scheme {
	case algorithm.PKCS1v15:
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(k, h, digestOf(h, data), sig) == nil
	case algorithm.PSS:
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(k, h, digestOf(h, data), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: h}) == nil
	case algorithm.ECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		return ok && ecdsa.VerifyASN1(k, digestOf(h, data), sig)
	case algorithm.SM2WithSM3:
		k, ok := pub.(*ecdsa.PublicKey)
		return ok && sm2.VerifyASN1WithSM2(k, uid, data, sig)
	}
	return false
}
