package login

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
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
)

// Token signature algorithms ("alg" header values).
const (
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518)
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256, signature r||s, 32 bytes each (RFC 7518)
	AlgES384 = "ES384" // ECDSA P-384 with SHA-384, r||s, 48 bytes each (RFC 7518)
	// AlgSM2SM3 is defined by this package (no registered JOSE value exists): SM2
	// signature (GB/T 32918.2) over the JWS signing input with SM3 and the Z value of
	// the default signer ID "1234567812345678"; the signature is r||s, 32 bytes each
	// (big-endian, left-padded), as ES256 encodes ECDSA.
	AlgSM2SM3 = "SM2SM3"
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

// algFor chooses the algorithm from the public key; a verifier does the same, so
// the "alg" header can never choose a weaker check.
func algFor(pub crypto.PublicKey) (alg string, size int, err error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", 0, errors.New("RSA token key shorter than 2048 bits")
		}
		return AlgRS256, 0, nil
	case *ecdsa.PublicKey:
		switch {
		case sm2.IsSM2PublicKey(k):
			return AlgSM2SM3, 32, nil
		case k.Curve == elliptic.P256():
			return AlgES256, 32, nil
		case k.Curve == elliptic.P384():
			return AlgES384, 48, nil
		}
		return "", 0, errors.New("unsupported elliptic curve for tokens")
	}
	return "", 0, fmt.Errorf("unsupported token key type %T", pub)
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
	switch t.alg {
	case AlgRS256:
		d := sha256.Sum256([]byte(input))
		sig, err = t.signer.Sign(rand, d[:], crypto.SHA256)
	case AlgES256:
		d := sha256.Sum256([]byte(input))
		sig, err = t.signer.Sign(rand, d[:], crypto.SHA256)
	case AlgES384:
		d := sha512.Sum384([]byte(input))
		sig, err = t.signer.Sign(rand, d[:], crypto.SHA384)
	case AlgSM2SM3:
		sig, err = t.signer.Sign(rand, []byte(input), sm2.DefaultSM2SignerOpts)
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
	switch alg {
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errors.New("key does not fit alg")
		}
		d := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig)
	case AlgES256, AlgES384, AlgSM2SM3:
		k, ok := pub.(*ecdsa.PublicKey)
		if a, size, err := algFor(pub); !ok || err != nil || a != alg {
			return errors.New("key does not fit alg")
		} else if len(sig) != 2*size {
			return errors.New("signature has the wrong length")
		}
		der := rawToDER(sig)
		switch alg {
		case AlgES256:
			d := sha256.Sum256(input)
			ok = ecdsa.VerifyASN1(k, d[:], der)
		case AlgES384:
			d := sha512.Sum384(input)
			ok = ecdsa.VerifyASN1(k, d[:], der)
		default:
			ok = sm2.VerifyASN1WithSM2(k, nil, input, der)
		}
		if !ok {
			return errors.New("signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unsupported alg %q", alg)
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
