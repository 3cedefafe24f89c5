package server

import (
	"crypto"

	"google.golang.org/grpc/codes"

	signsvrv1 "signsvr.dev/signsvr/gen/signsvr/v1"
	"signsvr.dev/signsvr/pkg/envelope"
	"signsvr.dev/signsvr/pkg/sign"
)

// maxSM2UserID bounds the SM2 user ID: its bit length must fit ENTL's 16 bits.
const maxSM2UserID = 8191

// hashFor maps a requested digest to a crypto.Hash for a key family. It returns 0 for
// "the key's default" and, for SM2, always 0 (SM2 signs with SM3 only).
func hashFor(f family, d signsvrv1.DigestAlgorithm) (crypto.Hash, error) {
	if f == familySM2 {
		switch d {
		case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED, signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3:
			return 0, nil
		}
		return 0, unsupported("SM2 keys sign with SM3 only")
	}
	switch d {
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_UNSPECIFIED:
		return 0, nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA256:
		return crypto.SHA256, nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA384:
		return crypto.SHA384, nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SHA512:
		return crypto.SHA512, nil
	case signsvrv1.DigestAlgorithm_DIGEST_ALGORITHM_SM3:
		return 0, unsupported("SM3 is for SM2 keys only")
	}
	return 0, invalidRequest("unknown digest %d", d)
}

// pssFor says whether RSA-PSS was asked for, and refuses it for non-RSA keys.
func pssFor(f family, s signsvrv1.RsaSignatureScheme) (bool, error) {
	switch s {
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_UNSPECIFIED, signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PKCS1V15:
		return false, nil
	case signsvrv1.RsaSignatureScheme_RSA_SIGNATURE_SCHEME_PSS:
		if f != familyRSA {
			return false, unsupported("PSS is for RSA keys only")
		}
		return true, nil
	}
	return false, invalidRequest("unknown RSA signature scheme %d", s)
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

// signOptions turns request options into sign.Options for key k.
func (s *Server) signOptions(k *key, detached bool, o *signsvrv1.SignOptions, opts *sign.Options) error {
	// The self-check guards against a misbehaving HSM; keys computed by Go's own code
	// skip it (keystore.GoNativeKey, pkg/sign "Checking its own signature"), and an HSM
	// key's backend may sample it (keystore.SelfCheckMode).
	*opts = sign.Options{Detached: detached, Now: s.now, SkipSelfCheck: !k.checkNext()}
	if o == nil {
		return nil
	}
	var err error
	if opts.Hash, err = hashFor(k.family, o.GetDigest()); err != nil {
		return err
	}
	if opts.PSS, err = pssFor(k.family, o.GetRsaScheme()); err != nil {
		return err
	}
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
		if k.family != familySM2 {
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
	return opts, nil
}
