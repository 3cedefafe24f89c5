package tsa

import (
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/sign"
)

// DefaultPolicy is the TSA policy written when none is configured: an OID under the
// signsvr development arc. Production deployments configure their own policy OID.
var DefaultPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62262, 1, 3161, 1}

// AuthorityConfig configures an Authority.
type AuthorityConfig struct {
	// Chain is the TSA certificate chain, leaf first. The leaf must carry the
	// critical extendedKeyUsage id-kp-timeStamping and nothing else (RFC 3161 §2.3).
	Chain []*smx509.Certificate
	// Policy is the TSA policy OID of every token (default DefaultPolicy). A request
	// that names another policy is refused.
	Policy asn1.ObjectIdentifier
	// Accuracy is written into every token when not zero.
	Accuracy Accuracy
	// Now is the clock (required): genTime comes from it.
	Now func() time.Time
	// Rand makes serial numbers and signatures; nil means crypto/rand.
	Rand io.Reader
	// Hash is the token's signature digest for RSA and ECDSA keys (default SHA-256);
	// SM2 keys always use SM3.
	Hash crypto.Hash
	// Precision truncates genTime (default time.Millisecond).
	Precision time.Duration
}

// Authority issues timestamp tokens with a TSA key. The key is passed per call
// (Issue's signer), so an HSM-backed signer bound to a request's context can be used.
// An Authority is safe for concurrent use.
type Authority struct {
	cfg   AuthorityConfig
	leaf  *smx509.Certificate
	essID cms.Attribute
}

// NewAuthority checks the configuration: the TSA certificate must be fit for
// timestamping.
func NewAuthority(cfg AuthorityConfig) (*Authority, error) {
	if len(cfg.Chain) == 0 || cfg.Chain[0] == nil {
		return nil, errors.New("tsa: no TSA certificate")
	}
	if cfg.Now == nil {
		return nil, errors.New("tsa: a clock is required")
	}
	if err := CheckTSACertificate(cfg.Chain[0]); err != nil {
		return nil, err
	}
	if cfg.Policy == nil {
		cfg.Policy = DefaultPolicy
	}
	if len(cfg.Policy) < 2 {
		return nil, errors.New("tsa: invalid policy OID")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Precision <= 0 {
		cfg.Precision = time.Millisecond
	}
	a := cfg.Accuracy
	if a.Seconds < 0 || a.Millis < 0 || a.Millis > 999 || a.Micros < 0 || a.Micros > 999 {
		return nil, errors.New("tsa: accuracy millis and micros must be 0..999")
	}
	ess, err := signingCertificateV2(cfg.Chain[0])
	if err != nil {
		return nil, err
	}
	return &Authority{cfg: cfg, leaf: cfg.Chain[0], essID: ess}, nil
}

// Certificate is the TSA certificate.
func (a *Authority) Certificate() *smx509.Certificate { return a.leaf }

// Policy is the policy OID of the tokens.
func (a *Authority) Policy() asn1.ObjectIdentifier { return a.cfg.Policy }

// RejectError is a request the TSA refuses; FailInfo says why, as a rejection
// TimeStampResp would.
type RejectError struct {
	FailInfo FailureInfo
	Msg      string
}

func (e *RejectError) Error() string { return "tsa: request rejected: " + e.Msg }

// Issued is a token just made.
type Issued struct {
	// Token is the DER TimeStampToken (a ContentInfo holding SignedData).
	Token []byte
	Info  *TSTInfo
}

// Issue makes a timestamp token for req with signer, the TSA key (whose certificate
// is the configured leaf). A request the TSA refuses is a *RejectError; other errors
// come from the signer.
func (a *Authority) Issue(req *Request, signer crypto.Signer) (*Issued, error) {
	if err := a.check(req); err != nil {
		return nil, err
	}
	serial, err := randomSerial(a.cfg.Rand)
	if err != nil {
		return nil, err
	}
	gen := a.cfg.Now().UTC().Truncate(a.cfg.Precision)
	info := &TSTInfo{
		Policy: a.cfg.Policy,
		MessageImprint: MessageImprint{
			HashAlgorithm: req.MessageImprint.HashAlgorithm,
			HashedMessage: append([]byte(nil), req.MessageImprint.HashedMessage...),
		},
		SerialNumber: serial,
		GenTime:      gen,
		Accuracy:     a.cfg.Accuracy,
		Nonce:        req.Nonce,
	}
	content, err := info.Marshal()
	if err != nil {
		return nil, err
	}
	certs := sign.IncludeNone
	if req.CertReq {
		// RFC 3161 §2.4.1: the TSA certificate is included when asked for, and
		// the certificates field is absent otherwise.
		certs = sign.IncludeLeaf
	}
	hash := a.cfg.Hash
	// A key whose family signs with one digest only (SM2: SM3) signs with that one,
	// whatever Hash says.
	if len(algorithm.Digests(algorithm.Of(a.leaf.PublicKey), algorithm.SignCMS)) == 1 {
		hash = 0
	}
	token, err := sign.Sign(content, signer, a.cfg.Chain, &sign.Options{
		Hash:                  hash,
		Certs:                 certs,
		Dialect:               sign.DialectPKCS7, // RFC 3161 tokens are id-signedData for every key
		Now:                   func() time.Time { return gen },
		Rand:                  a.cfg.Rand,
		EContentType:          cms.OIDTSTInfo,
		ExtraSignedAttributes: []cms.Attribute{a.essID},
	})
	if err != nil {
		return nil, err
	}
	return &Issued{Token: token, Info: info}, nil
}

// Respond answers a DER TimeStampReq with a DER TimeStampResp, as an RFC 3161 HTTP
// TSA does: a malformed or refused request gets a rejection response. Only a signer
// failure is returned as an error (the caller decides whether to answer
// systemFailure or an HTTP error).
func (a *Authority) Respond(reqDER []byte, signer crypto.Signer) ([]byte, *Issued, error) {
	req, err := ParseRequest(reqDER)
	if err != nil {
		resp := &Response{Status: StatusRejection, FailInfo: FailBadDataFormat, StatusStrings: []string{"malformed TimeStampReq"}}
		der, merr := resp.Marshal()
		return der, nil, merr
	}
	is, err := a.Issue(req, signer)
	var rej *RejectError
	if errors.As(err, &rej) {
		resp := &Response{Status: StatusRejection, FailInfo: rej.FailInfo, StatusStrings: []string{rej.Msg}}
		der, merr := resp.Marshal()
		return der, nil, merr
	}
	if err != nil {
		return nil, nil, err
	}
	der, err := (&Response{Status: StatusGranted, Token: is.Token}).Marshal()
	return der, is, err
}

func (a *Authority) check(req *Request) error {
	if req == nil {
		return &RejectError{FailBadRequest, "no request"}
	}
	alg := req.MessageImprint.HashAlgorithm
	n := digestSize(alg)
	if n == 0 || alg.Equal(oidSHA1) {
		return &RejectError{FailBadAlg, fmt.Sprintf("hash algorithm %s is not accepted (SHA-256/384/512, SM3)", alg)}
	}
	if len(req.MessageImprint.HashedMessage) != n {
		return &RejectError{FailBadDataFormat, "the hashed message does not have the hash algorithm's length"}
	}
	if req.Policy != nil && !req.Policy.Equal(a.cfg.Policy) {
		return &RejectError{FailUnacceptedPolicy, fmt.Sprintf("policy %s is not this TSA's (%s)", req.Policy, a.cfg.Policy)}
	}
	if req.Extensions != nil {
		return &RejectError{FailUnacceptedExtension, "request extensions are not supported"}
	}
	if req.Nonce != nil && len(req.Nonce.Bytes()) > maxIntBytes {
		return &RejectError{FailBadRequest, "nonce too long"}
	}
	return nil
}

// randomSerial is a positive 127-bit random number: unique across replicas without
// coordination (RFC 3161 §2.4.2 requires uniqueness per TSA, not order).
func randomSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("tsa: serial number: %w", err)
	}
	b[0] &= 0x7f
	n := new(big.Int).SetBytes(b[:])
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n, nil
}
