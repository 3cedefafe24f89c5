package login

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// Token signature algorithms ("alg" header values), from the algorithm table: the key's
// family decides the one a token is signed with.
const (
	AlgRS256 = algorithm.JWSRS256 // RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518)
	AlgES256 = algorithm.JWSES256 // ECDSA P-256 with SHA-256, signature r||s, 32 bytes each (RFC 7518)
	AlgES384 = algorithm.JWSES384 // ECDSA P-384 with SHA-384, r||s, 48 bytes each (RFC 7518)
	// AlgSM2SM3 is defined by this project (no registered JOSE value exists): SM2
	// signature (GB/T 32918.2) over the JWS signing input with SM3 and the Z value of
	// the default signer ID "1234567812345678"; the signature is r||s, 32 bytes each
	// (big-endian, left-padded), as ES256 encodes ECDSA.
	AlgSM2SM3 = algorithm.JWSSM2SM3
)

// Claims is the payload of a login token.
type Claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"` // the certificate subject, RFC 4514 string
	Audience  string `json:"aud"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
	ID        string `json:"jti"` // random, base64url
	// Confirmation binds the token to the certificate (RFC 8705 "x5t#S256":
	// base64url SHA-256 of the certificate DER).
	Confirmation struct {
		X5tS256 string `json:"x5t#S256"`
	} `json:"cnf"`
	CertSerial   string `json:"cert_serial"` // lower-case hex
	CertIssuer   string `json:"cert_issuer"` // RFC 4514 string
	CommonName   string `json:"cn,omitempty"`
	Organization string `json:"o,omitempty"`
}

type tokenHeader struct {
	Alg  string   `json:"alg"`
	Typ  string   `json:"typ,omitempty"`
	Kid  string   `json:"kid,omitempty"`
	Crit []string `json:"crit,omitempty"`
}

// algFor chooses the algorithm from the public key, as the algorithm table's
// LoginToken use of its family; a verifier does the same, so the "alg" header can
// never choose a weaker check. size is the length of r and of s (0 for RSA).
func algFor(pub crypto.PublicKey) (alg string, size int, err error) {
	f, err := algorithm.Check(pub, algorithm.LoginToken)
	if err != nil {
		return "", 0, fmt.Errorf("token key: %w", err)
	}
	alg, size = f.JWS()
	return alg, size, nil
}

// tokenUse is the scheme and digest of a token key's family.
func tokenUse(pub crypto.PublicKey) algorithm.Use {
	u, _ := algorithm.Default(algorithm.Of(pub), algorithm.LoginToken)
	return u
}

// digest is the hash h of msg.
func digest(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

// tokenSigner signs tokens with a crypto.Signer (an HSM key, a file key).
type tokenSigner struct {
	signer crypto.Signer
	pub    crypto.PublicKey
	alg    string
	size   int
	kid    string
}

func newTokenSigner(s crypto.Signer, kid string) (*tokenSigner, error) {
	pub := s.Public()
	alg, size, err := algFor(pub)
	if err != nil {
		return nil, err
	}
	return &tokenSigner{signer: s, pub: pub, alg: alg, size: size, kid: kid}, nil
}

var b64 = base64.RawURLEncoding

func (t *tokenSigner) sign(rand io.Reader, c *Claims) (string, error) {
	h, err := json.Marshal(tokenHeader{Alg: t.alg, Typ: "JWT", Kid: t.kid})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	var sig []byte
	if u := tokenUse(t.pub); u.Scheme == algorithm.SM2WithSM3 {
		sig, err = t.signer.Sign(rand, []byte(input), sm2.DefaultSM2SignerOpts)
	} else {
		sig, err = t.signer.Sign(rand, digest(u.Digest.Hash(), []byte(input)), u.Digest.Hash())
	}
	if err != nil {
		return "", fmt.Errorf("login: sign token: %w", err)
	}
	if t.size > 0 {
		if sig, err = derToRaw(sig, t.size); err != nil {
			return "", fmt.Errorf("login: sign token: %w", err)
		}
	}
	// Check our own signature before handing it out (a faulty HSM or signer
	// must not issue tokens nobody can verify).
	if err := verifyJWS(t.pub, t.alg, []byte(input), sig); err != nil {
		return "", fmt.Errorf("login: token signer produced a bad signature: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// derToRaw turns an ASN.1 ECDSA/SM2 signature into r||s of size bytes each.
func derToRaw(der []byte, size int) ([]byte, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	r, ss := new(big.Int), new(big.Int)
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !seq.ReadASN1Integer(r) || !seq.ReadASN1Integer(ss) || !seq.Empty() {
		return nil, errors.New("malformed ECDSA signature")
	}
	if r.Sign() <= 0 || ss.Sign() <= 0 || r.BitLen() > 8*size || ss.BitLen() > 8*size {
		return nil, errors.New("ECDSA signature out of range")
	}
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	ss.FillBytes(out[size:])
	return out, nil
}

// rawToDER is the inverse of derToRaw.
func rawToDER(raw []byte) []byte {
	n := len(raw) / 2
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:n]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[n:]))
	})
	return b.BytesOrPanic()
}

func verifyJWS(pub crypto.PublicKey, alg string, input, sig []byte) error {
	a, size, err := algFor(pub)
	if err != nil || a != alg {
		return errors.New("key does not fit alg")
	}
	u := tokenUse(pub)
	if u.Scheme == algorithm.PKCS1v15 {
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), u.Digest.Hash(), digest(u.Digest.Hash(), input), sig)
	}
	if len(sig) != 2*size {
		return errors.New("signature has the wrong length")
	}
	k, der, ok := pub.(*ecdsa.PublicKey), rawToDER(sig), false
	if u.Scheme == algorithm.SM2WithSM3 {
		ok = sm2.VerifyASN1WithSM2(k, nil, input, der)
	} else {
		ok = ecdsa.VerifyASN1(k, digest(u.Digest.Hash(), input), der)
	}
	if !ok {
		return errors.New("signature does not verify")
	}
	return nil
}

// VerifyOptions say what VerifyToken expects.
type VerifyOptions struct {
	// Audience and Issuer, when set, must equal the token's aud and iss.
	Audience, Issuer string
	// Now is the time to check exp and nbf at (required).
	Now time.Time
	// Leeway is allowed on exp and nbf (default 30s).
	Leeway time.Duration
}

// ErrInvalidToken is wrapped by every VerifyToken failure.
var ErrInvalidToken = errors.New("login: invalid token")

const maxTokenLen = 16 << 10

// VerifyToken checks a login token offline with the token-signing public key (an
// *rsa.PublicKey, or an *ecdsa.PublicKey on P-256, P-384 or SM2) and returns its
// claims. The algorithm follows from the key; a token whose "alg" header differs
// is refused.
func VerifyToken(token string, pub crypto.PublicKey, opts VerifyOptions) (*Claims, error) {
	c, err := verifyToken(token, pub, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return c, nil
}

func verifyToken(token string, pub crypto.PublicKey, opts VerifyOptions) (*Claims, error) {
	alg, _, err := algFor(pub)
	if err != nil {
		return nil, err
	}
	h, p, sig, input, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	if h.Alg != alg {
		return nil, fmt.Errorf("alg %q, but the key is for %s", h.Alg, alg)
	}
	if len(h.Crit) > 0 {
		return nil, errors.New("unsupported critical header parameters")
	}
	if err := verifyJWS(pub, alg, input, sig); err != nil {
		return nil, err
	}
	var c Claims
	if err := json.Unmarshal(p, &c); err != nil {
		return nil, errors.New("malformed claims")
	}
	if opts.Now.IsZero() {
		return nil, errors.New("no verification time given")
	}
	leeway := opts.Leeway
	if leeway <= 0 {
		leeway = 30 * time.Second
	}
	now := opts.Now.Unix()
	lw := int64(leeway / time.Second)
	switch {
	case c.Expiry == 0 || now > c.Expiry+lw:
		return nil, errors.New("token expired")
	case now+lw < c.NotBefore:
		return nil, errors.New("token not yet valid")
	case opts.Audience != "" && c.Audience != opts.Audience:
		return nil, errors.New("token for another audience")
	case opts.Issuer != "" && c.Issuer != opts.Issuer:
		return nil, errors.New("token from another issuer")
	}
	return &c, nil
}

// splitToken decodes the three parts of a compact JWS.
func splitToken(token string) (h tokenHeader, payload, sig, input []byte, err error) {
	if len(token) > maxTokenLen {
		return h, nil, nil, nil, errors.New("token too long")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return h, nil, nil, nil, errors.New("not a compact JWS")
	}
	hb, err1 := b64.Strict().DecodeString(parts[0])
	payload, err2 := b64.Strict().DecodeString(parts[1])
	sig, err3 := b64.Strict().DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return h, nil, nil, nil, errors.New("bad base64url")
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, nil, nil, nil, errors.New("malformed header")
	}
	return h, payload, sig, []byte(parts[0] + "." + parts[1]), nil
}
