// Package sign makes and checks CMS SignedData (RFC 5652, GM/T 0010) over any crypto.Signer.
//
// It knows only crypto.Signer, certificates and pkg/cms: never the keystore, never gRPC.
// Verification here answers one question per signer: is the signature mathematically
// right over this content (signature value, messageDigest and contentType attributes)?
// Whether the signer is trusted (chain, validity, usage, revocation) is a separate
// verdict that a trust step fills in (SignerResult.Certificate); until it does, the
// certificate verdict is CertNotChecked and SignerResult.Verified is false, so
// "signature math OK" can never be mistaken for "signer trusted".
//
// # What is written
//
// Sign writes DER. The algorithm follows the signer's public key (never the concrete
// type of the signer): RSA with rsaEncryption (PKCS#1 v1.5, as OpenSSL writes it) or
// RSASSA-PSS with explicit parameters (hash, MGF1 with the same hash, salt = hash
// length); ECDSA with ecdsa-with-SHA256/384/512; SM2 with SM3, signature algorithm
// sm2-1 (1.2.156.10197.1.301.1) in the GM/T 0010 dialect, as GM/T 0010 names it and
// as the GM/T stacks in the wild (gmsm's pkcs7 among them) read it, and SM2-with-SM3
// (1.2.156.10197.1.501) in the PKCS#7 dialect; Options.SM2SignatureOID overrides both. Digest algorithm
// identifiers are written without parameters (RFC 5754). Signed attributes are
// contentType, messageDigest and signingTime, sorted as DER requires. The SignedData
// version is 1, or 3 when the signer is named by SubjectKeyIdentifier.
//
// SM2 signers are called with sm2.NewSM2SignerOption(true, uid) and the whole
// to-be-signed message (the DER SET of signed attributes, or the content), so the
// signer computes Z and SM3 itself: gmsm's convention for *sm2.PrivateKey, which the
// HSM backends follow. For the default user ID the option passed is gmsm's own
// sm2.DefaultSM2SignerOpts, so a signer can recognise it and use a Z value it
// computed once per key (pkg/keystore/soft does). In the GM/T 0010 dialect (the default for SM2) the content
// types are 1.2.156.10197.6.1.4.2.2 (SignedData) and 1.2.156.10197.6.1.4.2.1 (data).
//
// # Checking its own signature
//
// Sign verifies the signature with the certificate's public key before returning it
// (an HSM can misbehave: a faulty device, a driver bug, a fault attack). For ECDSA and
// SM2 that check costs about twice the signature itself, 70-80 µs per 1 KiB message
// here. A caller that knows the signature is computed by Go's or gmsm's own code on a
// key validated when loaded may set Options.SkipSelfCheck; the signer's concrete type
// says nothing about that, so this package never decides it. signsvr's server sets it
// exactly for keys that report keystore.GoNativeKey (the soft store), and keeps the
// check for PKCS#11 keys and any key that does not say so. RSA verification is cheap,
// and Go's crypto/rsa already checks its own CRT result.
//
// # What Verify accepts
//
// BER or DER, both content-type families, signers named by issuer and serial or by
// SubjectKeyIdentifier, several signers each with its own result. RSA signatures
// named rsaEncryption or sha*WithRSAEncryption (the named hash must match the digest
// algorithm), RSASSA-PSS with any salt length and MGF1 over the same hash; ECDSA named
// ecdsa-with-SHA* (parameters absent, or NULL as gmsm writes them) or id-ecPublicKey;
// SM2 named 1.2.156.10197.1.501, .301.1 or .301.
// SHA-1 only with VerifyOptions.AllowSHA1. When signed attributes are present,
// contentType and messageDigest must each be present once, contentType must equal
// eContentType and messageDigest the digest of the content; the signature is checked
// over the attributes exactly as received (normalised to DER lengths, never
// reordered), with the tag changed to SET.
//
// SM2 signatures are checked as GB/T 35275 / gmsm write them: SM3 over Z (from the
// user ID, default 1234567812345678) followed by the signed bytes. GmSSL 3.x writes
// SignedData without signed attributes whose SM2 signature is over SM3 of the DER
// EncapsulatedContentInfo with no Z value at all. That form is accepted only when
// VerifyOptions.AllowSM2WithoutZ is set, and the SignerResult says so (SM2WithoutZ):
// without Z the signature binds neither the signer's public key nor its identity, so
// it is a deliberate, visible exception for known peers, never a silent fallback.
package sign

import (
	"context"
	"crypto"
	"encoding/asn1"
	"io"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
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
	// Now is the clock read for the signingTime attribute; nil means time.Now.
	// Inject a clock in tests. A zero time leaves signingTime out.
	Now func() time.Time
	// Rand is the randomness source; nil means crypto/rand.Reader.
	Rand io.Reader
	// SM2SignatureOID is the signatureAlgorithm written for SM2: nil means
	// cms.OIDSM2Sign (1.2.156.10197.1.301.1) in the GM/T 0010 dialect and
	// cms.OIDSM2WithSM3 (1.2.156.10197.1.501) in the PKCS#7 dialect.
	SM2SignatureOID asn1.ObjectIdentifier
	// SkipSelfCheck skips the verification of the signature just made. Only for
	// signers whose signature is computed by Go's or gmsm's own code (see "Checking
	// its own signature" and keystore.GoNativeKey); never for an HSM or PKCS#11 key.
	SkipSelfCheck bool
	// EContentType, when set, is the type of the encapsulated content (and of the
	// contentType signed attribute) instead of id-data, e.g. cms.OIDTSTInfo for an
	// RFC 3161 timestamp token. It needs signed attributes (RFC 5652 §5.3).
	EContentType asn1.ObjectIdentifier
	// ContentDigest, when set, receives the digest of the content that Sign computed
	// (the messageDigest attribute's value, or what was signed without attributes),
	// so a caller that needs the same digest, e.g. for an audit record, does not hash
	// the content a second time. It is filled only when Sign succeeds.
	ContentDigest *ContentDigest
	// ExtraSignedAttributes are signed along with contentType, messageDigest and
	// signingTime (e.g. signingCertificateV2); they may not repeat those three. See
	// extraattrs.go.
	ExtraSignedAttributes []cms.Attribute
}

// ContentDigest is a digest of the content Sign computed, and its algorithm.
type ContentDigest struct {
	// Algorithm is the digest algorithm's OID (cms.OIDSHA256, cms.OIDSM3, ...).
	Algorithm asn1.ObjectIdentifier
	// Digest is the digest value; it is the caller's to keep.
	Digest []byte
}

// Sign makes a DER SignedData ContentInfo over content with signer, whose certificate is
// chain[0] (chain is leaf first). It verifies the signature it made before returning it.
func Sign(content []byte, signer crypto.Signer, chain []*smx509.Certificate, opts *Options) ([]byte, error) {
	return sign(content, signer, chain, opts)
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
	// AllowSM2WithoutZ also accepts SM2 signatures computed without the Z value, as
	// GmSSL 3.x writes them (see the package documentation). Off by default.
	AllowSM2WithoutZ bool
	// ParseCertificate, when set, parses the certificates the message carries (a
	// server plugs in a cache keyed by the DER here). A certificate whose DER equals
	// one in Certs is taken from Certs without parsing.
	ParseCertificate func(der []byte) (*smx509.Certificate, error)
	// Context is the request's context: Verify looks at it between certificates,
	// between signers and while hashing a large content, and returns its error once
	// it is done, so the work stops soon after the caller went away. nil means
	// context.Background(). (A field rather than a parameter so that it reaches
	// Verify through the packages that pass VerifyOptions on, pkg/envelope's among them.)
	Context context.Context
	// MaxSigners and MaxCertificates bound the SignerInfos and the certificates a
	// message may carry; past them Verify returns an error wrapping ErrLimit before
	// any work. 0 means DefaultMaxSigners / DefaultMaxCertificates; negative, no limit.
	MaxSigners      int
	MaxCertificates int
	// ContentDigests stand for the detached content when Content is nil: its
	// digests, one per algorithm (a streamed content is hashed as it passes, or a
	// client sends the digest of a document it keeps). A signer whose digest
	// algorithm is not among them gets ReasonContentNeeded, and so does an SM2
	// signer without signed attributes. Ignored for an attached signature.
	ContentDigests []ContentDigest
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
	// SM2WithoutZ is true when the SM2 signature verified only without the Z value
	// (VerifyOptions.AllowSM2WithoutZ, GmSSL 3.x form).
	SM2WithoutZ bool
	// Info is the parsed SignerInfo (unsigned attributes, signature value), for steps
	// such as timestamp checking. It aliases the input.
	Info *cms.SignerInfo
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
	// Certificates are those carried in the message, each once (copies dropped).
	Certificates []*smx509.Certificate
	// SignerInfos is the DER of the message's signerInfos SET (cms.SignerInfosDER),
	// which an audit record digests to name the message.
	SignerInfos []byte
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
// signature. Malformed input is an error wrapping cms.ErrMalformed (cms.ErrUnsupported
// for a well-formed structure it cannot read); ErrNoContent and ErrContentConflict are
// argument errors, and so is ErrLimit (too many signers or certificates); the
// context's error when VerifyOptions.Context ended; a well-formed message whose signature fails is a Result with an
// invalid SignatureVerdict and one of the Reason constants.
func Verify(der []byte, opts *VerifyOptions) (*Result, error) {
	return verify(der, opts)
}
