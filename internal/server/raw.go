package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/sign"
)

// Signature algorithm OIDs reported by SignRaw.
const (
	oidSHA256WithRSA   = "1.2.840.113549.1.1.11"
	oidSHA384WithRSA   = "1.2.840.113549.1.1.12"
	oidSHA512WithRSA   = "1.2.840.113549.1.1.13"
	oidRSAPSS          = "1.2.840.113549.1.1.10"
	oidECDSAWithSHA256 = "1.2.840.10045.4.3.2"
	oidECDSAWithSHA384 = "1.2.840.10045.4.3.3"
	oidECDSAWithSHA512 = "1.2.840.10045.4.3.4"
	oidSM2WithSM3      = "1.2.156.10197.1.501"
)

// rawHash picks the digest of a raw RSA or ECDSA signature: the one asked for, or the
// key's default (SHA-384 for P-384, SHA-256 otherwise).
func rawHash(f family, pub crypto.PublicKey, d signsvrv1.DigestAlgorithm) (crypto.Hash, error) {
	h, err := hashFor(f, d)
	if err != nil || h != 0 || f == familySM2 {
		return h, err
	}
	if ec, ok := pub.(*ecdsa.PublicKey); ok && ec.Curve == elliptic.P384() {
		return crypto.SHA384, nil
	}
	return crypto.SHA256, nil
}

func rawAlgorithm(f family, h crypto.Hash, pss bool) string {
	switch f {
	case familyRSA:
		if pss {
			return oidRSAPSS
		}
		switch h {
		case crypto.SHA384:
			return oidSHA384WithRSA
		case crypto.SHA512:
			return oidSHA512WithRSA
		}
		return oidSHA256WithRSA
	case familyEC:
		switch h {
		case crypto.SHA384:
			return oidECDSAWithSHA384
		case crypto.SHA512:
			return oidECDSAWithSHA512
		}
		return oidECDSAWithSHA256
	case familySM2:
		return oidSM2WithSM3
	}
	return ""
}

func digestOf(h crypto.Hash, data []byte) []byte {
	hh := h.New()
	hh.Write(data)
	return hh.Sum(nil)
}

// SignRaw implements signsvrv1.SignServiceServer.
func (s signService) SignRaw(ctx context.Context, req *signsvrv1.SignRawRequest) (*signsvrv1.SignRawResponse, error) {
	k, err := s.useKey(ctx, req.GetKey(), OpSign)
	if err != nil {
		return nil, err
	}
	h, err := rawHash(k.family, k.pub, req.GetDigest())
	if err != nil {
		return nil, err
	}
	pss, err := pssFor(k.family, req.GetRsaScheme())
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
	switch k.family {
	case familyRSA:
		var opts crypto.SignerOpts = h
		if pss {
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
		}
		sig, err = signer.Sign(rand.Reader, digestOf(h, req.GetData()), opts)
	case familyEC:
		sig, err = signer.Sign(rand.Reader, digestOf(h, req.GetData()), h)
	case familySM2:
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
	if k.checkNext() && !rawValid(k.family, k.pub, h, pss, uid, req.GetData(), sig) {
		err := fmt.Errorf("%w: raw signature with key %q", sign.ErrSelfCheck, req.GetKey())
		s.signed(ctx, k, err)
		return nil, err
	}
	resp := &signsvrv1.SignRawResponse{Signature: sig, SignatureAlgorithm: rawAlgorithm(k.family, h, pss)}
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
	f := familyOf(cert.PublicKey)
	if f == familyUnknown {
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
			"the certificate's key algorithm is not supported", nil)
	}
	h, err := rawHash(f, cert.PublicKey, req.GetDigest())
	if err != nil {
		return nil, err
	}
	pss, err := pssFor(f, req.GetRsaScheme())
	if err != nil {
		return nil, err
	}
	uid, err := sm2UID(req.GetSm2UserId())
	if err != nil {
		return nil, err
	}

	valid := rawValid(f, cert.PublicKey, h, pss, uid, req.GetData(), req.GetSignature())
	resp := &signsvrv1.VerifyRawResponse{Signature: &signsvrv1.SignatureVerdict{Valid: valid}}
	if !valid {
		resp.Signature.Reason = "signature-invalid"
	}
	var cv sign.CertVerdict
	resp.CertificateVerdict, cv = s.checkCert(ctx, cert, intermediates, s.now())
	resp.Verified = valid && cv.Status == sign.CertGood
	return resp, nil
}

// rawValid checks a raw signature over data made with the public key pub of family f,
// as SignRaw writes them: RSA PKCS#1 v1.5 or PSS over the hash h, ECDSA DER over h,
// SM2 DER with the Z value of uid (nil: the default user ID).
func rawValid(f family, pub crypto.PublicKey, h crypto.Hash, pss bool, uid, data, sig []byte) bool {
	switch f {
	case familyRSA:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return false
		}
		if pss {
			return rsa.VerifyPSS(k, h, digestOf(h, data), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: h}) == nil
		}
		return rsa.VerifyPKCS1v15(k, h, digestOf(h, data), sig) == nil
	case familyEC:
		k, ok := pub.(*ecdsa.PublicKey)
		return ok && ecdsa.VerifyASN1(k, digestOf(h, data), sig)
	case familySM2:
		k, ok := pub.(*ecdsa.PublicKey)
		return ok && sm2.VerifyASN1WithSM2(k, uid, data, sig)
	}
	return false
}
