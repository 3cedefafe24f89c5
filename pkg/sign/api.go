// Package sign makes and checks CMS SignedData (RFC 5652, GM/T 0010) over any crypto.Signer.
//
// It knows only crypto.Signer, certificates and pkg/cms: never the keystore, never gRPC.
// Verification here answers one question per signer: is the signature mathematically
// right over this content (signature value, messageDigest and contentType attributes)?
// Whether the signer is trusted (chain, validity, usage, revocation) is a separate
// verdict that a trust step fills in (SignerResult.Certificate); until it does, the
// certificate verdict is CertNotChecked and SignerResult.Verified is false, so
// "signature math OK" can never be mistaken for "signer trusted".
package sign

import (
	"crypto"
	"io"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// Dialect chooses the OIDs written for SM2 messages.
type Dialect int

const (
	// DialectAuto writes GM/T 0010 OIDs for SM2 keys and PKCS#7 OIDs otherwise.
	DialectAuto Dialect = iota
	// DialectPKCS7 writes PKCS#7 content types (1.2.840.113549.1.7.x) with SM algorithm OIDs.
	DialectPKCS7
	// DialectGMT0010 writes GM/T 0010 content types (1.2.156.10197.6.1.4.2.x). Only for SM2.
	DialectGMT0010
)

// SignerIDType chooses how a SignerInfo names its certificate.
type SignerIDType int

const (
	// IssuerAndSerial writes a version 1 SignerInfo naming issuer and serial number.
	IssuerAndSerial SignerIDType = iota
	// SubjectKeyID writes a version 3 SignerInfo naming the SubjectKeyIdentifier.
	SubjectKeyID
)

// CertInclusion chooses which certificates go into the SignedData.
type CertInclusion int

const (
	// IncludeLeaf writes the signer's certificate only (the default).
	IncludeLeaf CertInclusion = iota
	// IncludeChain writes the whole chain given to Sign, leaf first.
	IncludeChain
	// IncludeNone writes no certificates; the verifier must have the signer's.
	IncludeNone
)

// Options tune Sign. The zero value is the safe default: attached content,
// SHA-256 (SM3 for SM2), PKCS#1 v1.5 for RSA, signed attributes with signing time,
// signer named by issuer and serial, leaf certificate included.
type Options struct {
	Detached bool
	// Hash is crypto.SHA256, SHA384, SHA512, or 0 for the key's default. For SM2
	// keys only SM3 is allowed (pass 0 or sm3 as crypto.Hash(0) — SM2 always uses SM3).
	Hash crypto.Hash
	// PSS selects RSASSA-PSS (salt length = hash length, MGF1 with the same hash).
	PSS      bool
	SignerID SignerIDType
	Certs    CertInclusion
	// NoSignedAttributes signs the content directly, as some old peers require.
	NoSignedAttributes bool
	Dialect            Dialect
	// SM2UID is the SM2 user ID for the Z value; nil means 1234567812345678.
	SM2UID []byte
	// Time is the signing time written into the signingTime attribute; zero means
	// Now(). Inject a clock in tests with Now.
	Now func() time.Time
	// Rand is the randomness source; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Sign makes a DER SignedData ContentInfo over content with signer, whose certificate is
// chain[0] (chain is leaf first). It verifies the signature it made before returning it.
func Sign(content []byte, signer crypto.Signer, chain []*smx509.Certificate, opts *Options) ([]byte, error) {
	return nil, errNotImplemented
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Content is the detached content; nil for attached signatures.
	Content []byte
	// Certs are extra certificates to find signers in (for messages without them).
	Certs []*smx509.Certificate
	// SM2UID is the SM2 user ID; nil means 1234567812345678.
	SM2UID []byte
	// AllowSHA1 accepts SHA-1 digests (old data only; never written).
	AllowSHA1 bool
}

// SignatureVerdict is the outcome of the math for one signer.
type SignatureVerdict struct {
	// Valid is true when the signature value, messageDigest and contentType all check.
	Valid bool
	// Reason is a stable machine-readable reason when not Valid, e.g.
	// "signature-invalid", "message-digest-mismatch", "content-type-mismatch",
	// "signer-certificate-not-found", "unsupported-algorithm".
	Reason string
	// Err is the internal cause, for logs.
	Err error
}

// CertStatus is the trust verdict for a signer's certificate.
type CertStatus int

const (
	// CertNotChecked means no trust step has looked at the certificate yet.
	CertNotChecked CertStatus = iota
	CertGood
	CertRevoked
	CertExpired
	CertUntrusted
	CertWrongUsage
	CertUnknown
)

// CertVerdict is filled by a trust step after Verify.
type CertVerdict struct {
	Status CertStatus
	Reason string
	// Chain is the path used, leaf first.
	Chain []*smx509.Certificate
}

// SignerResult is everything Verify learned about one SignerInfo.
type SignerResult struct {
	// Certificate is the signer's certificate, or nil when it was not found.
	Certificate *smx509.Certificate
	// SubjectKeyID or IssuerSerial identify the signer as the message named it.
	SubjectKeyID []byte
	Issuer       []byte // raw DER Name
	Serial       string // decimal
	// DigestAlgorithm and SignatureAlgorithm are the OIDs as written, dotted.
	DigestAlgorithm    string
	SignatureAlgorithm string
	// SigningTime is the signed signingTime attribute, or zero.
	SigningTime time.Time
	Signature   SignatureVerdict
	CertVerdict CertVerdict
	// Index is the position of the SignerInfo in the message.
	Index int
}

// Verified is true only when the signature is valid and the certificate was checked
// and found good.
func (r *SignerResult) Verified() bool {
	return r.Signature.Valid && r.CertVerdict.Status == CertGood
}

// Result is a parsed and checked SignedData.
type Result struct {
	// Content is the encapsulated (or given detached) content.
	Content []byte
	// ContentType is the eContentType OID, dotted.
	ContentType string
	Detached    bool
	Signers     []SignerResult
	// Certificates are those carried in the message.
	Certificates []*smx509.Certificate
}

// Verified is true when there is at least one signer and every signer is Verified.
func (r *Result) Verified() bool {
	if len(r.Signers) == 0 {
		return false
	}
	for i := range r.Signers {
		if !r.Signers[i].Verified() {
			return false
		}
	}
	return true
}

// Verify parses a SignedData ContentInfo (BER or DER) and checks every signer's
// signature. Malformed input is an error wrapping cms.ErrMalformed; a well-formed
// message whose signature fails is a Result with an invalid SignatureVerdict.
func Verify(der []byte, opts *VerifyOptions) (*Result, error) {
	return nil, errNotImplemented
}
