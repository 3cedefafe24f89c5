package server

import (
	"slices"
	"strings"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/sign"
)

// maxSM2UserID bounds the SM2 user ID: its bit length must fit ENTL's 16 bits.
const maxSM2UserID = 8191

// requestUse is the use of the algorithm table that a request's digest and RSA scheme
// choose for a key of family f and purpose p: the first use of the family with what was
// asked (its default when nothing was). What the family does not have is refused with
// the reason the client sees. A key outside the table is refused here only what
// belongs to one family (SM3, PSS), as any key is; the rest is left to the step that
// uses the key, which refuses it with its own status.
func requestUse(f algorithm.Family, p algorithm.Purpose, d signsvrv1.DigestAlgorithm, s signsvrv1.RsaSignatureScheme) (algorithm.Use, error) {
	digest, err := requestDigestFor(f, p, d)
	if err != nil {
		return algorithm.Use{}, err
	}
	scheme, err := requestScheme(f, p, s)
	if err != nil {
		return algorithm.Use{}, err
	}
	u, ok := algorithm.Pick(f, p, scheme, digest)
	switch {
	case ok:
		return u, nil
	case f == algorithm.Unsupported:
		return algorithm.Use{Scheme: scheme, Digest: digest}, nil
	}
	return algorithm.Use{}, unsupported("%s keys do not sign with %s", f, algorithm.Use{Scheme: scheme, Digest: digest})
}

// requestDigestFor is the digest a request asks of family f for purpose p (NoDigest:
// the default), refused when f does not have it.
func requestDigestFor(f algorithm.Family, p algorithm.Purpose, d signsvrv1.DigestAlgorithm) (algorithm.Digest, error) {
	digest, known := requestDigest(d)
	has := algorithm.Digests(f, p)
	if (digest != algorithm.NoDigest || !known) && len(has) == 1 && digest != has[0] {
		return 0, unsupported("%s keys sign with %s only", f, has[0])
	}
	if !known {
		return 0, invalidRequest("unknown digest %d", d)
	}
	if digest != algorithm.NoDigest && !slices.Contains(has, digest) {
		owners := algorithm.Families(p, 0, digest)
		if f != algorithm.Unsupported || len(owners) == 1 {
			return 0, unsupported("%s is for %s keys only", digest, familyNames(owners))
		}
	}
	return digest, nil
}

// requestScheme is the signature scheme a request's RSA padding asks of family f for
// purpose p (zero: the default), refused when f does not have it.
func requestScheme(f algorithm.Family, p algorithm.Purpose, s signsvrv1.RsaSignatureScheme) (algorithm.Scheme, error) {
	switch s {
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_UNSPECIFIED:
		return 0, nil
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PKCS1V15:
		// An RSA padding: a family without it has no padding to choose, and its default
		// scheme is what the request gets.
		if _, ok := algorithm.Pick(f, p, algorithm.PKCS1v15, algorithm.NoDigest); ok {
			return algorithm.PKCS1v15, nil
		}
		return 0, nil
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS:
		if _, ok := algorithm.Pick(f, p, algorithm.PSS, algorithm.NoDigest); !ok {
			return 0, unsupported("%s is for %s keys only", algorithm.PSS, familyNames(algorithm.Families(p, algorithm.PSS, algorithm.NoDigest)))
		}
		return algorithm.PSS, nil
	}
	return 0, invalidRequest("unknown RSA signature scheme %d", s)
}

// requestDigest maps a request's digest onto the algorithm table's (NoDigest for "the
// key's default"); known is false for a value this server does not know.
func requestDigest(d signsvrv1.DigestAlgorithm) (digest algorithm.Digest, known bool) {
	switch d {
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED:
		return algorithm.NoDigest, true
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256:
		return algorithm.SHA256, true
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384:
		return algorithm.SHA384, true
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512:
		return algorithm.SHA512, true
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3:
		return algorithm.SM3, true
	}
	return algorithm.NoDigest, false
}

// familyNames names families for a message: "SM2", "RSA", "RSA, ECDSA P-256".
func familyNames(fs []algorithm.Family) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.String()
	}
	return strings.Join(names, ", ")
}

func sm2UID(uid []byte) ([]byte, error) {
	if len(uid) == 0 {
		return nil, nil
	}
	if len(uid) > maxSM2UserID {
		return nil, invalidRequest("SM2 user ID longer than %d bytes", maxSM2UserID)
	}
	return uid, nil
}

// applyVerifyOptions sets in vo what the request's VerifyOptions o ask for: every
// verifying call (Verify, VerifyBatch items, DecryptAndVerify and the streaming
// forms) goes through here, so an option of the message means the same in each.
// field names o in error messages ("options", "verify_options").
func (s *Server) applyVerifyOptions(vo *sign.VerifyOptions, o *signsvrv1.VerifyOptions, field string) error {
	vo.AllowSHA1 = o.GetAllowSha1()
	if o != nil && o.AllowSm2WithoutZ != nil {
		vo.AllowSM2WithoutZ = *o.AllowSm2WithoutZ
	}
	var err error
	if vo.SM2UID, err = sm2UID(o.GetSm2UserId()); err != nil {
		return err
	}
	vo.Certs, err = s.parseCerts(o.GetCertificates(), field+".certificates")
	return err
}

// signOptions turns request options into sign.Options for key k.
func (s *Server) signOptions(k *key, detached bool, o *signsvrv1.SignOptions, opts *sign.Options) error {
	// The self-check guards against a misbehaving HSM; keys computed by Go's own code
	// skip it (keystore.GoNativeKey, pkg/sign "Checking its own signature"), and an HSM
	// key's backend may sample it (keystore.SelfCheckMode).
	*opts = sign.Options{Detached: detached, Now: s.now, SkipSelfCheck: !k.checkNext()}
	if o == nil {
		return nil
	}
	u, err := requestUse(k.family, algorithm.SignCMS, o.GetDigest(), o.GetRsaScheme())
	if err != nil {
		return err
	}
	// SM3 has no crypto.Hash: sign.Options takes zero for it, which is SM2's default.
	opts.Hash, opts.PSS = u.Digest.Hash(), u.Scheme == algorithm.PSS
	switch o.GetSignerId() {
	case signsvrv1.SignerIdType_SIGNER_ID_TYPE_UNSPECIFIED, signsvrv1.SignerIdType_SIGNER_ID_TYPE_ISSUER_AND_SERIAL:
		opts.SignerID = sign.IssuerAndSerial
	case signsvrv1.SignerIdType_SIGNER_ID_TYPE_SUBJECT_KEY_ID:
		if k.leaf == nil || len(k.leaf.SubjectKeyId) == 0 {
			return newError(codes.FailedPrecondition, signsvrv1.ErrorReason_ERROR_REASON_CERTIFICATE_UNUSABLE,
				"the key's certificate has no subject key identifier", nil)
		}
		opts.SignerID = sign.SubjectKeyID
	default:
		return invalidRequest("unknown signer id type %d", o.GetSignerId())
	}
	switch o.GetCertificates() {
	case signsvrv1.CertInclusion_CERT_INCLUSION_UNSPECIFIED, signsvrv1.CertInclusion_CERT_INCLUSION_LEAF:
		opts.Certs = sign.IncludeLeaf
	case signsvrv1.CertInclusion_CERT_INCLUSION_CHAIN:
		opts.Certs = sign.IncludeChain
	case signsvrv1.CertInclusion_CERT_INCLUSION_NONE:
		opts.Certs = sign.IncludeNone
	default:
		return invalidRequest("unknown certificate inclusion %d", o.GetCertificates())
	}
	switch o.GetSm2Dialect() {
	case signsvrv1.Sm2Dialect_SM2_DIALECT_UNSPECIFIED:
		opts.Dialect = sign.DialectAuto
	case signsvrv1.Sm2Dialect_SM2_DIALECT_PKCS7:
		opts.Dialect = sign.DialectPKCS7
	case signsvrv1.Sm2Dialect_SM2_DIALECT_GMT0010:
		if k.family != algorithm.SM2 {
			return unsupported("the GM/T 0010 dialect is for SM2 keys only")
		}
		opts.Dialect = sign.DialectGMT0010
	default:
		return invalidRequest("unknown SM2 dialect %d", o.GetSm2Dialect())
	}
	if opts.SM2UID, err = sm2UID(o.GetSm2UserId()); err != nil {
		return err
	}
	opts.NoSignedAttributes = o.GetNoSignedAttributes()
	return nil
}

// envelopeOptions turns request options into envelope.Options.
func envelopeOptions(o *signsvrv1.EnvelopeOptions) (envelope.Options, error) {
	var opts envelope.Options
	if o == nil {
		return opts, nil
	}
	switch o.GetCipher() {
	case signsvrv1.Cipher_CIPHER_UNSPECIFIED:
		opts.Cipher = envelope.CipherDefault
	case signsvrv1.Cipher_CIPHER_AES128_CBC:
		opts.Cipher = envelope.AES128CBC
	case signsvrv1.Cipher_CIPHER_AES256_CBC:
		opts.Cipher = envelope.AES256CBC
	case signsvrv1.Cipher_CIPHER_AES128_GCM:
		opts.Cipher = envelope.AES128GCM
	case signsvrv1.Cipher_CIPHER_AES256_GCM:
		opts.Cipher = envelope.AES256GCM
	case signsvrv1.Cipher_CIPHER_SM4_CBC:
		opts.Cipher = envelope.SM4CBC
	case signsvrv1.Cipher_CIPHER_SM4_GCM:
		opts.Cipher = envelope.SM4GCM
	default:
		return opts, invalidRequest("unknown cipher %d", o.GetCipher())
	}
	switch o.GetRsaScheme() {
	case signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_UNSPECIFIED, signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_OAEP:
		opts.RSA = envelope.RSAOAEP
	case signsvrv1.RsaEncryptionScheme_RSA_ENCRYPTION_SCHEME_PKCS1V15:
		opts.RSA = envelope.RSAPKCS1v15
	default:
		return opts, invalidRequest("unknown RSA encryption scheme %d", o.GetRsaScheme())
	}
	switch o.GetRecipientId() {
	case signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_UNSPECIFIED, signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_ISSUER_AND_SERIAL:
		opts.RecipientID = envelope.RecipientIssuerAndSerial
	case signsvrv1.RecipientIdType_RECIPIENT_ID_TYPE_SUBJECT_KEY_ID:
		opts.RecipientID = envelope.RecipientSubjectKeyID
	default:
		return opts, invalidRequest("unknown recipient id type %d", o.GetRecipientId())
	}
	switch o.GetSm2Dialect() {
	case signsvrv1.Sm2Dialect_SM2_DIALECT_UNSPECIFIED:
		opts.Dialect = envelope.DialectAuto
	case signsvrv1.Sm2Dialect_SM2_DIALECT_PKCS7:
		opts.Dialect = envelope.DialectPKCS7
	case signsvrv1.Sm2Dialect_SM2_DIALECT_GMT0010:
		opts.Dialect = envelope.DialectGMT0010
	default:
		return opts, invalidRequest("unknown SM2 dialect %d", o.GetSm2Dialect())
	}
	opts.ECDHCofactor = o.GetEcdhCofactor()
	return opts, nil
}
