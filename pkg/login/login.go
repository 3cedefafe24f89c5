package login

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/identity"
	"signsvr.dev/signsvr/pkg/trust"
)

// CertValidator validates the login certificate; *trust.Validator is one.
type CertValidator interface {
	Validate(ctx context.Context, leaf *smx509.Certificate, intermediates []*smx509.Certificate, at time.Time, purpose trust.Purpose) *trust.Verdict
}

// CMSVerifier checks a CMS SignedData (DER or BER) whose content is the
// challenge. When the SignedData is detached it verifies it over
// detachedContent (the challenge bytes). It returns the signed content, the
// signer's certificate and the other certificates the SignedData carries (to
// help build the path), or an error when no signature verifies. pkg/login
// takes it as a function so that it does not depend on the CMS packages.
type CMSVerifier func(ctx context.Context, signedData, detachedContent []byte) (content []byte, signer *smx509.Certificate, certs []*smx509.Certificate, err error)

// ReplayGuard, when configured, makes challenges single-use: Use records nonce
// until the given time and reports whether it was unused. It is shared state
// (e.g. a Redis SET NX with expiry); without it the design is stateless and a
// signed answer can be replayed until the challenge expires.
type ReplayGuard interface {
	Use(ctx context.Context, nonce []byte, until time.Time) (fresh bool, err error)
}

// Config configures an Authenticator. Replicas that share ChallengeKeys,
// Audience and the token key accept each other's challenges and issue
// interchangeable tokens.
type Config struct {
	// ChallengeKeys are HMAC-SHA256 keys of at least 32 bytes. The first MACs
	// new challenges; all are accepted (for rotation).
	ChallengeKeys [][]byte
	// ChallengeTTL is how long a challenge may be answered (default 60s).
	ChallengeTTL time.Duration
	// ClockSkew is allowed between replicas' clocks (default 30s).
	ClockSkew time.Duration
	// Audience names the business system; it is bound into challenges and is the
	// tokens' "aud" (required).
	Audience string
	// Issuer is the tokens' "iss" (default "signsvr").
	Issuer string
	// TokenTTL is the token lifetime (default 5 minutes).
	TokenTTL time.Duration
	// TokenSigner signs tokens: RSA (RS256), ECDSA P-256 (ES256), P-384 (ES384)
	// or SM2 (SM2SM3). TokenKeyID is its "kid" header.
	TokenSigner crypto.Signer
	TokenKeyID  string
	// Validator checks the certificate (required).
	Validator CertValidator
	// Purpose the certificate must allow: trust.PurposeClientAuth (the default,
	// also used for the zero value PurposeAny) or trust.PurposeSign.
	Purpose trust.Purpose
	// VerifyCMS enables answers as CMS SignedData; nil refuses them.
	VerifyCMS CMSVerifier
	// ReplayGuard makes challenges single-use; nil keeps the design stateless.
	ReplayGuard ReplayGuard
	// Now is the clock (default time.Now); Rand the randomness (default crypto/rand).
	Now  func() time.Time
	Rand io.Reader
}

// Authenticator issues challenges and turns signed answers into tokens.
type Authenticator struct {
	cfg   Config
	token *tokenSigner
}

// New checks cfg and makes an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.ChallengeKeys) == 0 {
		return nil, errors.New("login: no challenge key configured")
	}
	for _, k := range cfg.ChallengeKeys {
		if len(k) < 32 {
			return nil, errors.New("login: challenge key shorter than 32 bytes")
		}
	}
	if cfg.Audience == "" {
		return nil, errors.New("login: no audience configured")
	}
	if cfg.Validator == nil {
		return nil, errors.New("login: no certificate validator configured")
	}
	if cfg.TokenSigner == nil {
		return nil, errors.New("login: no token signer configured")
	}
	switch cfg.Purpose {
	case trust.PurposeAny:
		cfg.Purpose = trust.PurposeClientAuth
	case trust.PurposeClientAuth, trust.PurposeSign:
	default:
		return nil, fmt.Errorf("login: purpose %v does not fit a login", cfg.Purpose)
	}
	if cfg.ChallengeTTL <= 0 {
		cfg.ChallengeTTL = time.Minute
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = 30 * time.Second
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "signsvr"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	ts, err := newTokenSigner(cfg.TokenSigner, cfg.TokenKeyID)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return &Authenticator{cfg: cfg, token: ts}, nil
}

// TokenPublicKey is the key business systems verify tokens with.
func (a *Authenticator) TokenPublicKey() crypto.PublicKey { return a.token.pub }

// TokenAlgorithm is the tokens' "alg".
func (a *Authenticator) TokenAlgorithm() string { return a.token.alg }

// CreateChallenge returns a fresh challenge.
func (a *Authenticator) CreateChallenge() (Challenge, error) {
	nonce := make([]byte, nonceLen)
	if _, err := io.ReadFull(a.cfg.Rand, nonce); err != nil {
		return Challenge{}, fmt.Errorf("login: randomness: %w", err)
	}
	now := a.cfg.Now().Truncate(time.Second)
	exp := now.Add(a.cfg.ChallengeTTL)
	return Challenge{
		Value:     encodeChallenge(a.cfg.ChallengeKeys[0], a.cfg.Audience, now, exp, nonce),
		IssuedAt:  now,
		ExpiresAt: exp,
	}, nil
}

// Scheme selects the raw RSA signature scheme; ECDSA and SM2 need none.
type Scheme uint8

const (
	// SchemeAuto accepts RSA PKCS#1 v1.5 or PSS (SHA-256) signatures.
	SchemeAuto Scheme = iota
	// SchemeRSAPKCS1v15 accepts only RSASSA-PKCS1-v1_5 with SHA-256.
	SchemeRSAPKCS1v15
	// SchemeRSAPSS accepts only RSASSA-PSS with SHA-256 (any salt length).
	SchemeRSAPSS
)

// Response is a client's answer: the challenge, signed either raw or as CMS.
type Response struct {
	Challenge string

	// A raw signature over the bytes of Challenge:
	//   RSA:   PKCS#1 v1.5 or PSS with SHA-256 (Scheme narrows it);
	//   ECDSA: SHA-256 on P-256, SHA-384 on P-384;
	//   SM2:   SM3 with the Z value of signer ID 1234567812345678.
	// ECDSA and SM2 signatures are ASN.1 DER or r||s.
	Signature     []byte
	Scheme        Scheme
	Certificate   *smx509.Certificate
	Intermediates []*smx509.Certificate

	// Or a CMS SignedData over the bytes of Challenge (attached or detached).
	// Intermediates, when given, add to the certificates the SignedData carries.
	CMS []byte
}

// Identity is who logged in, from the validated certificate.
type Identity struct {
	identity.Holder // subject, issuer, serial (lower-case hex), fingerprint
	CommonName      string
	Organization    string
	Certificate     *smx509.Certificate
}

// Result is a successful login.
type Result struct {
	Identity  Identity
	Token     string
	ExpiresAt time.Time
	Claims    Claims
	Verdict   *trust.Verdict
}

// Login checks the answer and returns the identity and a token, or an *Error
// whose Reason says why it was refused.
func (a *Authenticator) Login(ctx context.Context, r Response) (*Result, error) {
	now := a.cfg.Now()
	ch, err := decodeChallenge(a.cfg.ChallengeKeys, a.cfg.Audience, r.Challenge)
	if err != nil {
		if errors.Is(err, errChallengeMAC) || errors.Is(err, errChallengeCorrupt) {
			return nil, refuse(ReasonChallengeTampered, err, nil)
		}
		return nil, refuse(ReasonMalformed, err, nil)
	}
	if ch.issuedAt.After(now.Add(a.cfg.ClockSkew)) {
		return nil, refuse(ReasonChallengeTampered, errors.New("challenge issued in the future"), nil)
	}
	if !now.Before(ch.expiresAt.Add(a.cfg.ClockSkew)) {
		return nil, refuse(ReasonChallengeExpired, fmt.Errorf("challenge expired at %s", ch.expiresAt.UTC().Format(time.RFC3339)), nil)
	}

	var cert *smx509.Certificate
	var inters []*smx509.Certificate
	switch {
	case len(r.CMS) > 0:
		if a.cfg.VerifyCMS == nil {
			return nil, refuse(ReasonMalformed, errors.New("CMS answers are not enabled"), nil)
		}
		content, signer, certs, err := a.cfg.VerifyCMS(ctx, r.CMS, []byte(r.Challenge))
		if err != nil {
			return nil, refuse(ReasonBadSignature, fmt.Errorf("CMS: %w", err), nil)
		}
		if signer == nil {
			return nil, refuse(ReasonBadSignature, errors.New("CMS verifier returned no signer"), nil)
		}
		if string(content) != r.Challenge {
			return nil, refuse(ReasonBadSignature, errors.New("CMS content is not the challenge"), nil)
		}
		cert, inters = signer, append(certs, r.Intermediates...)
	case len(r.Signature) > 0:
		if r.Certificate == nil {
			return nil, refuse(ReasonMalformed, errors.New("raw signature without a certificate"), nil)
		}
		if err := verifyRaw(r.Certificate.PublicKey, r.Scheme, []byte(r.Challenge), r.Signature); err != nil {
			return nil, refuse(ReasonBadSignature, err, nil)
		}
		cert, inters = r.Certificate, r.Intermediates
	default:
		return nil, refuse(ReasonMalformed, errors.New("no signature"), nil)
	}

	vd := a.cfg.Validator.Validate(ctx, cert, inters, now, a.cfg.Purpose)
	if vd == nil {
		return nil, refuse(ReasonCertUnknown, errors.New("validator returned no verdict"), nil)
	}
	if !vd.OK() {
		return nil, refuse(certReason(vd.Status), errors.New(vd.String()), vd)
	}
	if a.cfg.ReplayGuard != nil {
		fresh, err := a.cfg.ReplayGuard.Use(ctx, ch.nonce, ch.expiresAt.Add(a.cfg.ClockSkew))
		if err != nil {
			return nil, fmt.Errorf("login: replay guard: %w", err)
		}
		if !fresh {
			return nil, refuse(ReasonChallengeReplayed, errors.New("challenge already used"), vd)
		}
	}

	id := IdentityOf(cert)
	c := Claims{
		Issuer: a.cfg.Issuer, Subject: id.Subject, Audience: a.cfg.Audience,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(a.cfg.TokenTTL).Unix(),
		CertSerial: id.Serial, CertIssuer: id.Issuer, CommonName: id.CommonName, Organization: id.Organization,
	}
	jti := make([]byte, 16)
	if _, err := io.ReadFull(a.cfg.Rand, jti); err != nil {
		return nil, fmt.Errorf("login: randomness: %w", err)
	}
	c.ID = b64.EncodeToString(jti)
	fp := sha256.Sum256(cert.Raw)
	c.Confirmation.X5tS256 = b64.EncodeToString(fp[:])
	tok, err := a.token.sign(a.cfg.Rand, &c)
	if err != nil {
		return nil, err
	}
	return &Result{Identity: id, Token: tok, ExpiresAt: time.Unix(c.Expiry, 0), Claims: c, Verdict: vd}, nil
}

// IdentityOf describes a certificate's holder (also for mutual-TLS callers).
func IdentityOf(c *smx509.Certificate) Identity {
	id := Identity{
		Holder:      identity.Of(c),
		CommonName:  c.Subject.CommonName,
		Certificate: c,
	}
	if len(c.Subject.Organization) > 0 {
		id.Organization = c.Subject.Organization[0]
	}
	return id
}

// verifyRaw checks a raw signature over msg with the schemes and digests the algorithm
// table allows a login answer of the key's family.
func verifyRaw(pub crypto.PublicKey, scheme Scheme, msg, sig []byte) error {
	f, err := algorithm.Check(pub, algorithm.LoginAnswer)
	if err != nil {
		return fmt.Errorf("certificate key: %w", err)
	}
	uses := algorithm.Uses(f, algorithm.LoginAnswer)
	if f == algorithm.RSA {
		k := pub.(*rsa.PublicKey)
		for _, u := range uses {
			h := u.Digest.Hash()
			switch {
			case u.Scheme == algorithm.PKCS1v15 && scheme != SchemeRSAPSS:
				if rsa.VerifyPKCS1v15(k, h, digest(h, msg), sig) == nil {
					return nil
				}
			case u.Scheme == algorithm.PSS && scheme != SchemeRSAPKCS1v15:
				if rsa.VerifyPSS(k, h, digest(h, msg), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
					return nil
				}
			}
		}
		return errors.New("RSA signature does not verify with the certificate's key")
	}
	k := pub.(*ecdsa.PublicKey)
	size := (k.Curve.Params().BitSize + 7) / 8
	der := sig
	if len(sig) == 2*size && !looksDER(sig) {
		der = rawToDER(sig)
	}
	for _, u := range uses {
		if u.Scheme == algorithm.SM2WithSM3 {
			if sm2.VerifyASN1WithSM2(k, nil, msg, der) {
				return nil
			}
			return errors.New("SM2 signature does not verify with the certificate's key")
		}
		if ecdsa.VerifyASN1(k, digest(u.Digest.Hash(), msg), der) {
			return nil
		}
	}
	return errors.New("ECDSA signature does not verify with the certificate's key")
}

// looksDER reports whether sig parses as a DER ECDSA signature.
func looksDER(sig []byte) bool {
	_, err := derToRaw(sig, len(sig))
	return err == nil
}
