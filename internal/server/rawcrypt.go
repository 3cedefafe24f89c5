package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"errors"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/sm2cipher"
)

// Raw encryption
//
// EncryptRaw and DecryptRaw are public-key encryption with no CMS around it, the
// GM/T 0018 device calls: SM2 encryption, and RSA with OAEP or PKCS#1 v1.5. The
// algorithm table's RawEncryption rows say what each key family may use.
//
// Authorization: encrypt_raw is per caller (only a public key is used, as for
// Envelope); decrypt_raw is a key operation and, like sign_raw beside sign, comes on
// top of decrypt on the key. It is apart because a raw decryption answers for any
// ciphertext made with the key, the encrypted content key of an envelope among them:
// who may call it can open whatever the key can.
//
// No oracle: every failure of a decryption is the one DECRYPTION_FAILED, and RSA
// PKCS#1 v1.5 never fails on a bad padding but answers with the synthetic message of
// implicit rejection (pkg/rsaimplicit), deterministic for the key and ciphertext, so
// asking twice or asking another replica tells nothing. A key that cannot compute it
// (an HSM key: it needs the private exponent) is refused for PKCS#1 v1.5 up front,
// whatever the ciphertext.

// Operations of raw encryption.
const (
	OpEncryptRaw Operation = "encrypt_raw"
	OpDecryptRaw Operation = "decrypt_raw"
)

type rawCryptService struct {
	*Server
	signsvrv1.UnimplementedRawCryptServiceServer
}

// rawUse is the RawEncryption use a request asks of family f.
func rawUse(f algorithm.Family, scheme signsvrv1.RsaEncryptionScheme, d signsvrv1.DigestAlgorithm) (algorithm.Use, error) {
	var s algorithm.Scheme
	switch scheme {
	case signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_UNSPECIFIED:
	case signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_OAEP:
		s = algorithm.RSAESOAEP
	case signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15:
		s = algorithm.RSAESPKCS1v15
	default:
		return algorithm.Use{}, invalidRequest("unknown RSA encryption scheme %d", scheme)
	}
	if s != 0 && f != algorithm.RSA {
		return algorithm.Use{}, unsupported("an RSA padding for a %s key", f)
	}
	digest, known := requestDigest(d)
	if !known {
		return algorithm.Use{}, invalidRequest("unknown digest %d", d)
	}
	if s == algorithm.RSAESPKCS1v15 && digest != algorithm.NoDigest {
		return algorithm.Use{}, invalidRequest("RSAES-PKCS1-v1_5 takes no digest")
	}
	if s == 0 && f == algorithm.RSA {
		s = algorithm.RSAESOAEP
	}
	u, ok := algorithm.Pick(f, algorithm.RawEncryption, s, digest)
	if !ok {
		return algorithm.Use{}, unsupported("%s keys do not encrypt with %s", f, algorithm.Use{Scheme: s, Digest: digest})
	}
	return u, nil
}

func sm2Encoding(e signsvrv1.Sm2CiphertextEncoding) (o sm2cipher.Order, raw, prefix bool, err error) {
	switch e {
	case signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_UNSPECIFIED, signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_ASN1:
		return sm2cipher.C1C3C2, false, false, nil
	case signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C3C2:
		return sm2cipher.C1C3C2, true, true, nil
	case signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3:
		return sm2cipher.C1C2C3, true, true, nil
	case signsvrv1.Sm2CiphertextEncoding_SM2_CIPHERTEXT_ENCODING_C1C2C3_NO_PREFIX:
		return sm2cipher.C1C2C3, true, false, nil
	}
	return 0, false, false, invalidRequest("unknown SM2 ciphertext encoding %d", e)
}

func (s *Server) checkRawSize(what string, n int) error {
	switch {
	case n == 0:
		return invalidRequest("no %s given", what)
	case n > s.encLimits.MaxRawBytes:
		return newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
			"the "+what+" is larger than the server's limit for raw encryption", nil)
	}
	return nil
}

// EncryptRaw implements signsvrv1.RawCryptServiceServer.
func (s rawCryptService) EncryptRaw(ctx context.Context, req *signsvrv1.EncryptRawRequest) (*signsvrv1.EncryptRawResponse, error) {
	var cert *smx509.Certificate
	switch {
	case req.GetKey() != "" && len(req.GetCertificate()) > 0:
		return nil, invalidRequest("give key or certificate, not both")
	case req.GetKey() != "":
		noteKey(ctx, req.GetKey())
		k, err := s.lookupKey(ctx, req.GetKey())
		if err != nil {
			return nil, err
		}
		if k.leaf == nil || !k.k.Usages().Has(keystore.UsageDecrypt) {
			return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_KEY_USAGE_NOT_ALLOWED,
				"key "+req.GetKey()+" is not an encryption key with a certificate", nil)
		}
		cert = k.leaf
	case len(req.GetCertificate()) > 0:
		c, err := s.certs.parse(req.GetCertificate())
		if err != nil {
			return nil, malformed("certificate", err)
		}
		cert = c
	default:
		return nil, invalidRequest("give the key or the certificate to encrypt to")
	}
	if err := s.checkRawSize("data", len(req.GetData())); err != nil {
		return nil, err
	}
	f, err := algorithm.Check(cert.PublicKey, algorithm.RawEncryption)
	if err != nil {
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
			"the certificate's key cannot encrypt", err)
	}
	u, err := rawUse(f, req.GetRsaScheme(), req.GetOaepDigest())
	if err != nil {
		return nil, err
	}
	var ct []byte
	switch u.Scheme {
	case algorithm.RSAESOAEP:
		ct, err = rsa.EncryptOAEP(u.Digest.Hash().New(), rand.Reader, cert.PublicKey.(*rsa.PublicKey), req.GetData(), nil)
	case algorithm.RSAESPKCS1v15:
		//lint:ignore SA1019 RSAES-PKCS1-v1_5 is written for old peers that ask for it; it is read with implicit rejection.
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, cert.PublicKey.(*rsa.PublicKey), req.GetData())
	case algorithm.SM2Encrypt:
		o, raw, prefix, oerr := sm2Encoding(req.GetSm2Encoding())
		if oerr != nil {
			return nil, oerr
		}
		ct, err = sm2.EncryptASN1(rand.Reader, cert.PublicKey.(*ecdsa.PublicKey), req.GetData())
		if err == nil && raw {
			ct, err = sm2cipher.FromASN1(ct, o, prefix)
		}
	}
	if errors.Is(err, rsa.ErrMessageTooLong) {
		return nil, newError(codes.InvalidArgument, signsvrv1.ErrorReason_ERROR_REASON_TOO_LARGE,
			"the data is too long for the key and padding", err)
	}
	if err != nil {
		return nil, err
	}
	return &signsvrv1.EncryptRawResponse{Ciphertext: ct, Certificate: cert.Raw}, nil
}

// DecryptRaw implements signsvrv1.RawCryptServiceServer. The interceptor has checked
// decrypt_raw on the key; useKey checks decrypt.
func (s rawCryptService) DecryptRaw(ctx context.Context, req *signsvrv1.DecryptRawRequest) (*signsvrv1.DecryptRawResponse, error) {
	k, err := s.useKey(ctx, req.GetKey(), OpDecrypt)
	if err != nil {
		return nil, err
	}
	if err := s.checkRawSize("ciphertext", len(req.GetCiphertext())); err != nil {
		return nil, err
	}
	u, err := rawUse(k.family, req.GetRsaScheme(), req.GetOaepDigest())
	if err != nil {
		return nil, err
	}
	dec := k.k.Decrypter(ctx)
	if dec == nil {
		return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_KEY_USAGE_NOT_ALLOWED,
			"key "+req.GetKey()+" cannot decrypt", nil)
	}
	ct := req.GetCiphertext()
	var (
		pt   []byte
		opts crypto.DecrypterOpts
	)
	switch u.Scheme {
	case algorithm.RSAESPKCS1v15:
		ir, ok := dec.(keystore.ImplicitRejecter)
		if !ok {
			return nil, newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_UNSUPPORTED,
				"raw RSAES-PKCS1-v1_5 decryption needs implicit rejection, which this key's backend cannot compute; use OAEP", nil)
		}
		pt, err = ir.DecryptPKCS1v15Implicit(ct)
		if err != nil {
			return nil, errDecryptFailed(err)
		}
		return &signsvrv1.DecryptRawResponse{Data: pt}, nil
	case algorithm.RSAESOAEP:
		h := u.Digest.Hash()
		opts = &rsa.OAEPOptions{Hash: h, MGFHash: h}
	case algorithm.SM2Encrypt:
		o, raw, _, oerr := sm2Encoding(req.GetSm2Encoding())
		if oerr != nil {
			return nil, oerr
		}
		// The declared form, and whatever else reads unambiguously: an SM2Cipher is
		// always recognised, and C1C2C3 is read with or without the 04 (CFCA). A
		// ciphertext that is none of them goes to the key as it came and fails there.
		conv := sm2cipher.AnyToASN1
		if raw {
			conv = func(b []byte) ([]byte, error) { return sm2cipher.ToASN1(b, o) }
		}
		if a, cerr := conv(ct); cerr == nil {
			ct = a
		}
		opts = sm2.ASN1DecrypterOpts
	default:
		return nil, unsupported("raw decryption with this key")
	}
	pt, err = dec.Decrypt(rand.Reader, ct, opts)
	if err != nil {
		if isBackendError(err) {
			return nil, err
		}
		return nil, errDecryptFailed(err)
	}
	return &signsvrv1.DecryptRawResponse{Data: pt}, nil
}
