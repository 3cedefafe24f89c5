package tsa

import (
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/sign"
)

// Reasons a token fails verification. They are stable: the server reports them per
// signer.
const (
	ReasonMalformed          = "timestamp-malformed"
	ReasonNotATimestamp      = "timestamp-not-tstinfo"
	ReasonSignatureInvalid   = "timestamp-signature-invalid"
	ReasonTSACertNotFound    = "tsa-certificate-not-found"
	ReasonSigningCertificate = "tsa-signing-certificate-mismatch"
	ReasonTSAUsage           = "tsa-certificate-usage"
	ReasonImprintMismatch    = "timestamp-imprint-mismatch"
	ReasonNonceMismatch      = "timestamp-nonce-mismatch"
	ReasonUnsupported        = "timestamp-unsupported-algorithm"
)

// VerifyError is a token that did not verify: Reason is one of the Reason constants,
// Err the internal cause.
type VerifyError struct {
	Reason string
	Err    error
}

func (e *VerifyError) Error() string { return "tsa: " + e.Reason + ": " + e.Err.Error() }
func (e *VerifyError) Unwrap() error { return e.Err }

func verr(reason string, err error) *VerifyError { return &VerifyError{Reason: reason, Err: err} }

// VerifyOptions say what a token must stamp.
type VerifyOptions struct {
	// Data is the stamped data: the token's message imprint must be its digest with
	// the token's hash algorithm. For a CAdES signature timestamp it is the
	// SignerInfo's signature value.
	Data []byte
	// Imprint, instead of Data, is the expected imprint (algorithm and digest).
	Imprint *MessageImprint
	// Nonce, when set, must be the token's nonce.
	Nonce *big.Int
	// Certs are extra certificates in which to find the TSA's.
	Certs []*smx509.Certificate
	// ParseCertificate parses the token's certificates (a cache), as in pkg/sign.
	ParseCertificate func(der []byte) (*smx509.Certificate, error)
}

// Token is a verified timestamp token. Whether the TSA is trusted (its chain at
// Info.GenTime) is the caller's question: Certificate and Certificates are what a
// certificate validator needs.
type Token struct {
	Info *TSTInfo
	// Certificate is the TSA certificate that signed the token.
	Certificate *smx509.Certificate
	// Certificates are those the token carries.
	Certificates []*smx509.Certificate
}

// VerifyToken checks a TimeStampToken (BER or DER ContentInfo): one signer whose
// signature verifies over a TSTInfo (signed attributes with contentType
// id-ct-TSTInfo), whose ESS signingCertificate(V2) attribute names the signer's
// certificate, which must be fit for timestamping (CheckTSACertificate); the
// imprint must match opts.Data or opts.Imprint, and the nonce opts.Nonce. Failures
// are *VerifyError.
func VerifyToken(der []byte, opts *VerifyOptions) (*Token, error) {
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	sd, err := cms.ParseSignedDataContentInfo(der)
	if err != nil {
		return nil, verr(ReasonMalformed, err)
	}
	return VerifySignedData(sd, &o)
}

// VerifySignedData is VerifyToken for a token already parsed.
func VerifySignedData(sd *cms.SignedData, o *VerifyOptions) (*Token, error) {
	if !sd.EContentType.Equal(cms.OIDTSTInfo) || sd.EContent == nil {
		return nil, verr(ReasonNotATimestamp, fmt.Errorf("eContentType %s", sd.EContentType))
	}
	if len(sd.SignerInfos) != 1 {
		return nil, verr(ReasonMalformed, fmt.Errorf("%d signers, want exactly one", len(sd.SignerInfos)))
	}
	info, err := ParseTSTInfo(sd.EContent)
	if err != nil {
		return nil, verr(ReasonMalformed, err)
	}
	si := &sd.SignerInfos[0]
	if !si.HasSignedAttrs() {
		return nil, verr(ReasonMalformed, errors.New("a timestamp token must have signed attributes"))
	}
	res, err := sign.VerifyParsed(sd, &sign.VerifyOptions{Certs: o.Certs, ParseCertificate: o.ParseCertificate})
	if err != nil {
		return nil, verr(ReasonMalformed, err)
	}
	sr := &res.Signers[0]
	if !sr.Signature.Valid {
		switch sr.Signature.Reason {
		case sign.ReasonSignerCertNotFound:
			return nil, verr(ReasonTSACertNotFound, sr.Signature.Err)
		case sign.ReasonUnsupportedAlgorithm, sign.ReasonWeakAlgorithm:
			return nil, verr(ReasonUnsupported, sr.Signature.Err)
		}
		return nil, verr(ReasonSignatureInvalid, fmt.Errorf("%s: %v", sr.Signature.Reason, sr.Signature.Err))
	}
	cert := sr.Certificate
	if err := checkSigningCertificate(si.SignedAttrs, cert); err != nil {
		return nil, verr(ReasonSigningCertificate, err)
	}
	if err := CheckTSACertificate(cert); err != nil {
		return nil, verr(ReasonTSAUsage, err)
	}
	mi := &info.MessageImprint
	switch {
	case o.Imprint != nil:
		if !mi.HashAlgorithm.Equal(o.Imprint.HashAlgorithm) || subtle.ConstantTimeCompare(mi.HashedMessage, o.Imprint.HashedMessage) != 1 {
			return nil, verr(ReasonImprintMismatch, errors.New("the token stamps another message"))
		}
	case o.Data != nil:
		want, err := Digest(mi.HashAlgorithm, o.Data)
		if err != nil {
			return nil, verr(ReasonUnsupported, err)
		}
		if subtle.ConstantTimeCompare(mi.HashedMessage, want) != 1 {
			return nil, verr(ReasonImprintMismatch, errors.New("the token stamps another message"))
		}
	default:
		return nil, verr(ReasonImprintMismatch, errors.New("no data or imprint to check the token against"))
	}
	if o.Nonce != nil && (info.Nonce == nil || info.Nonce.Cmp(o.Nonce) != 0) {
		return nil, verr(ReasonNonceMismatch, errors.New("the token's nonce is not the request's"))
	}
	return &Token{Info: info, Certificate: cert, Certificates: res.Certificates}, nil
}

var (
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamp = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

// CheckTSACertificate checks the rules RFC 3161 §2.3 sets for a TSA certificate: an
// extendedKeyUsage extension that is critical and holds only id-kp-timeStamping, and
// a keyUsage (when present) that allows digitalSignature or nonRepudiation.
func CheckTSACertificate(c *smx509.Certificate) error {
	if c == nil {
		return errors.New("no TSA certificate")
	}
	found := false
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidExtKeyUsage) {
			continue
		}
		if found {
			return errors.New("TSA certificate has two extendedKeyUsage extensions")
		}
		found = true
		if !e.Critical {
			return errors.New("TSA certificate's extendedKeyUsage is not critical")
		}
		var ekus []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(e.Value, &ekus); err != nil || len(rest) != 0 {
			return errors.New("TSA certificate's extendedKeyUsage cannot be read")
		}
		if len(ekus) != 1 || !ekus[0].Equal(oidKPTimeStamp) {
			return errors.New("TSA certificate's extendedKeyUsage must be id-kp-timeStamping only")
		}
	}
	if !found {
		return errors.New("TSA certificate has no extendedKeyUsage id-kp-timeStamping")
	}
	if ku := c.KeyUsage; ku != 0 && ku&(smx509.KeyUsageDigitalSignature|smx509.KeyUsageContentCommitment) == 0 {
		return errors.New("TSA certificate's keyUsage allows neither digitalSignature nor nonRepudiation")
	}
	return nil
}
