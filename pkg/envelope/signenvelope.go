package envelope

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/sign"
)

// Sign-then-envelope comes in two shapes:
//
//   - Nested CMS (FormNested): a SignedData ContentInfo is made over the content and
//     becomes the content of an EnvelopedData or AuthEnvelopedData, with content type
//     id-data. This is what `openssl cms -sign | openssl cms -encrypt` writes and what
//     `openssl cms -decrypt | openssl cms -verify` opens. It has every CMS feature
//     (signed attributes, GCM, key agreement).
//   - SignedAndEnvelopedData (FormSignedAndEnveloped): PKCS#7 type 4, or GM/T 0010
//     1.2.156.10197.6.1.4.2.4, which SM2 peers (gmsm, GmSSL, CFCA) expect. It only
//     knows key transport (RSA, SM2) and unauthenticated content encryption (CBC). The
//     signature covers the plaintext exactly as in a detached SignedData; like OpenSSL,
//     gmsm and GmSSL, the encrypted digest is not encrypted a second time with the
//     content key (RFC 2315 §11 would have it so; no peer we can test does).

// Form chooses the sign-then-envelope shape.
type Form int

const (
	// FormNested is an EnvelopedData (or AuthEnvelopedData) holding a SignedData.
	FormNested Form = iota
	// FormSignedAndEnveloped is one SignedAndEnvelopedData.
	FormSignedAndEnveloped
)

// SignAndEnvelopeOptions tune SignAndEnvelope. The zero value is FormNested with the
// defaults of sign.Options and Options.
type SignAndEnvelopeOptions struct {
	Form Form
	// Sign tunes the signature. Detached is ignored (the content is always inside),
	// and with FormSignedAndEnveloped Dialect follows the envelope's dialect.
	Sign sign.Options
	// Envelope tunes the encryption. With FormSignedAndEnveloped the default cipher is
	// SM4-CBC (every recipient SM2) or AES-256-CBC, and GCM ciphers are refused. Its
	// dialect, when Auto, is GM/T 0010 only if every recipient and the signer are SM2.
	Envelope Options
}

// SignAndEnvelope signs content with signer (whose certificate is signerChain[0]) and
// envelopes the result to recipients. It returns a DER ContentInfo.
func SignAndEnvelope(content []byte, signer crypto.Signer, signerChain []*smx509.Certificate, recipients []*smx509.Certificate, opts *SignAndEnvelopeOptions) ([]byte, error) {
	var o SignAndEnvelopeOptions
	if opts != nil {
		o = *opts
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: no signer", ErrInvalidOptions)
	}
	switch o.Form {
	case FormNested:
		// Check the recipients before spending a signature on them.
		if _, err := newPlan(recipients, &o.Envelope, false); err != nil {
			return nil, err
		}
		so := o.Sign
		so.Detached = false
		sd, err := sign.Sign(content, signer, signerChain, &so)
		if err != nil {
			return nil, err
		}
		return envelope(sd, recipients, &o.Envelope)
	case FormSignedAndEnveloped:
		return signedAndEnveloped(content, signer, signerChain, recipients, &o)
	}
	return nil, fmt.Errorf("%w: unknown form %d", ErrInvalidOptions, o.Form)
}

func signedAndEnveloped(content []byte, signer crypto.Signer, chain, recipients []*smx509.Certificate, o *SignAndEnvelopeOptions) ([]byte, error) {
	p, err := newPlan(recipients, &o.Envelope, true)
	if err != nil {
		return nil, err
	}
	if p.alg.gcm {
		return nil, fmt.Errorf("%w: SignedAndEnvelopedData has no authenticated encryption; %s is not allowed", ErrInvalidOptions, p.alg.name)
	}
	signerSM2 := algorithm.Of(signer.Public()) == algorithm.SM2
	switch {
	case o.Envelope.Dialect == DialectGMT0010 && !signerSM2:
		return nil, fmt.Errorf("%w: the GM/T 0010 dialect needs an SM2 signer", ErrInvalidOptions)
	case !signerSM2:
		p.gmt = false
	}
	so := o.Sign
	so.Detached = true
	so.Dialect = sign.DialectPKCS7
	sedType := cms.OIDSignedAndEnvelopedData
	if p.gmt {
		so.Dialect = sign.DialectGMT0010
		sedType = cms.OIDSM2SignedAndEnvelopedData
	}
	sd, err := sign.Sign(content, signer, chain, &so)
	if err != nil {
		return nil, err
	}
	ci, err := cms.ParseContentInfo(sd)
	if err != nil {
		return nil, fmt.Errorf("envelope: reading our own SignedData: %w", err)
	}
	parts, eContentType, _, err := cms.ParseSignedParts(ci.Content)
	if err != nil {
		return nil, fmt.Errorf("envelope: reading our own SignedData: %w", err)
	}
	cek, err := p.newContentKey()
	if err != nil {
		return nil, err
	}
	defer clear(cek)
	ris, err := p.recipientInfos(recipients, cek, true)
	if err != nil {
		return nil, err
	}
	s, err := p.alg.seal(p.rand, cek, content, nil)
	if err != nil {
		return nil, err
	}
	sed := &cms.SignedAndEnvelopedData{
		Version:        1,
		RecipientInfos: ris,
		EncryptedContentInfo: cms.EncryptedContentInfo{
			ContentType:                eContentType,
			ContentEncryptionAlgorithm: s.alg,
			EncryptedContent:           s.ct,
		},
		SignedParts: *parts,
	}
	return sed.MarshalContentInfo(sedType)
}

// OpenAndVerify opens a signed-then-enveloped message addressed to cert (either form,
// either dialect; also an RFC 5652-style EnvelopedData whose content type is
// id-signedData) with key, then verifies the signature over the decrypted content
// with sign.Verify. oo tunes the opening as for Open (nil: defaults); vo is passed to
// sign.Verify.
//
// Decryption failures are Open's errors (ErrNoRecipient, ErrDecrypt, ...). A message
// that decrypts but whose signature fails is a Result whose signers say why, exactly
// as sign.Verify reports it; check Result.Verified.
func OpenAndVerify(der []byte, key any, cert *smx509.Certificate, oo *OpenOptions, opts *sign.VerifyOptions) (*sign.Result, error) {
	var vo sign.VerifyOptions
	if opts != nil {
		vo = *opts
	}
	if oo == nil {
		oo = &OpenOptions{}
	}
	m, err := parseMessage(der)
	if err != nil {
		return nil, err
	}
	pt, eContentType, err := m.open(key, cert, oo)
	if err != nil {
		return nil, err
	}
	if m.sed != nil {
		sdType := cms.OIDSignedData
		if m.contentType.Equal(cms.OIDSM2SignedAndEnvelopedData) {
			sdType = cms.OIDSM2SignedData
		}
		sd, err := m.sed.DetachedSignedData(sdType, eContentType)
		if err != nil {
			return nil, err
		}
		vo.Content = pt
		return sign.Verify(sd, &vo)
	}
	inner := pt
	if eContentType.Equal(cms.OIDSignedData) || eContentType.Equal(cms.OIDSM2SignedData) {
		// RFC 5652 nesting: the content is the SignedData itself, without ContentInfo.
		if inner, err = (&cms.ContentInfo{ContentType: eContentType, Content: pt}).Marshal(); err != nil {
			return nil, innerContentError(err)
		}
	}
	res, err := sign.Verify(inner, &vo)
	if err != nil && (errors.Is(err, cms.ErrMalformed) || errors.Is(err, cms.ErrUnsupported)) {
		return nil, innerContentError(err)
	}
	return res, err
}

// innerContentError is the error for a decrypted plaintext that is not a SignedData
// this package reads (malformed, or using what it does not support).
// With an unauthenticated cipher (CBC) that is also what a tampered ciphertext with a
// good padding gives, so telling it apart from ErrDecrypt would be a padding oracle: it
// is exactly ErrDecrypt, like every other failure after the recipient was found.
func innerContentError(error) error {
	return ErrDecrypt
}
