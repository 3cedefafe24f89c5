// Package keystore names private keys and their certificates, whatever holds them.
//
// A Key is a private key reached through the standard interfaces (crypto.Signer,
// crypto.Decrypter) plus the certificate chain that speaks for it. The server and the
// CLI only ever see this package; pkg/sign and pkg/envelope only ever see the standard
// interfaces, so a key in a PKCS#8 file and a key in an HSM are used the same way.
//
// Operations on an HSM wait for a session, so a Key hands out signers and decrypters
// bound to the request's context: the wait for a pooled session ends with the request.
// A backend whose operations never wait (the soft store) simply ignores the context.
//
// Extra abilities are separate optional methods that return nil when the key lacks
// them (a signing-only key has no Decrypter), so a wrapper can never hide them.
package keystore

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"errors"
	"strings"

	"github.com/emmansun/gmsm/smx509"
)

// Usage is a set of operations a key is configured for.
type Usage uint8

const (
	// UsageSign allows signing (CMS SignedData, raw signatures, CSRs, audit checkpoints).
	UsageSign Usage = 1 << iota
	// UsageDecrypt allows opening envelopes addressed to the key's certificate.
	UsageDecrypt
)

// Has reports whether u includes every usage in v.
func (u Usage) Has(v Usage) bool { return u&v == v }

// String gives "sign", "decrypt" or "sign,decrypt".
func (u Usage) String() string {
	var s []string
	if u.Has(UsageSign) {
		s = append(s, "sign")
	}
	if u.Has(UsageDecrypt) {
		s = append(s, "decrypt")
	}
	return strings.Join(s, ",")
}

// ParseUsage is the inverse of Usage.String; it accepts "sign", "decrypt" and
// comma-separated combinations.
func ParseUsage(s string) (Usage, error) {
	var u Usage
	for _, part := range strings.Split(s, ",") {
		switch strings.TrimSpace(part) {
		case "sign":
			u |= UsageSign
		case "decrypt":
			u |= UsageDecrypt
		case "":
		default:
			return 0, errors.New("keystore: unknown key usage " + part)
		}
	}
	if u == 0 {
		return 0, errors.New("keystore: no key usage given")
	}
	return u, nil
}

// KeyAgreer is an elliptic-curve private key that can compute an ECDH shared secret,
// as the recipient of an ECDH key-agreement envelope needs. *ecdh.PrivateKey satisfies it.
type KeyAgreer interface {
	ECDH(remote *ecdh.PublicKey) ([]byte, error)
}

// Key is one named key.
type Key interface {
	// Name is the logical name requests use, e.g. "customs-sm2-sign".
	Name() string
	// Public is the public key, loaded once when the key was found.
	Public() crypto.PublicKey
	// Chain is the certificate chain, leaf first. The leaf's public key is Public().
	Chain() []*smx509.Certificate
	// Usages is what the configuration allows this key to do.
	Usages() Usage
	// Signer returns a signer whose operations are bound to ctx. For SM2 keys it
	// follows gmsm's convention: with *sm2.SM2SignerOption{forceGMSign: true} the
	// "digest" argument is the whole message and the signer computes Z and SM3.
	// It is nil when the key cannot sign.
	Signer(ctx context.Context) crypto.Signer
	// Decrypter returns a decrypter bound to ctx for RSA (PKCS#1 v1.5 with
	// *rsa.PKCS1v15DecryptOptions, OAEP with *rsa.OAEPOptions) and SM2 (gmsm's
	// *sm2.DecrypterOpts) key transport. It is nil when the key cannot decrypt.
	Decrypter(ctx context.Context) crypto.Decrypter
	// KeyAgreer returns an ECDH agreer bound to ctx for EC (P-256/P-384) keys used
	// as envelope recipients. It is nil for other keys.
	KeyAgreer(ctx context.Context) KeyAgreer
}

// GoNativeKey is an optional method of a Key: GoNative reports whether the key's
// private-key operations are computed by Go code (the standard library or gmsm) on key
// material held in this process's memory, as pkg/keystore/soft does.
//
// It exists to decide one thing: whether a signature needs checking before it is
// handed out. pkg/sign verifies every signature it makes (Options.SkipSelfCheck off)
// because an HSM can misbehave: a faulty device, a driver bug, a fault attack on the
// signing computation. For ECDSA and SM2 that check costs about twice the signature.
// A key computed by Go's own, tested code, from key material the soft store validated
// when it loaded it (RSA keys with rsa.PrivateKey.Validate, whose signing also checks
// its own CRT result), gains nothing from it, so the server skips the check for such
// keys only.
//
// "In process" alone would not be the honest criterion: a PKCS#11 module is loaded
// into the process too, yet its computation is opaque. Backends that reach a device
// or a C library (pkg/keystore/pkcs11) do not implement the method, and neither does
// a wrapper that does not forward it, so the default is always "check".
type GoNativeKey interface {
	Key
	GoNative() bool
}

// IsGoNative reports whether k implements GoNativeKey and says true. Decide from this,
// never from the concrete type of a key or of its signer.
func IsGoNative(k Key) bool {
	g, ok := k.(GoNativeKey)
	return ok && g.GoNative()
}

// Store finds keys by name.
type Store interface {
	// Key returns the key with the given name, or an error wrapping ErrNotFound.
	Key(ctx context.Context, name string) (Key, error)
	// Keys lists every key, sorted by name.
	Keys(ctx context.Context) ([]Key, error)
	// Close releases sessions and handles.
	Close() error
}

// ImplicitRejecter is an optional method of a Decrypter for RSA: RSAES-PKCS1-v1_5
// decryption of a message of any length with implicit rejection (pkg/rsaimplicit),
// where a bad padding gives a pseudo-random message derived from the key and the
// ciphertext instead of an error. It needs the private exponent, so only a backend
// that holds the key in memory has it; raw PKCS#1 v1.5 decryption is refused for a
// key without it, since an error on bad padding is a padding oracle.
type ImplicitRejecter interface {
	DecryptPKCS1v15Implicit(ciphertext []byte) ([]byte, error)
}

// SecretKey is a named symmetric key-encryption key: an AES key that wraps and
// unwraps content keys (AES key wrap, RFC 3394), as the recipient of a CMS
// KEKRecipientInfo holds it. Its key material never leaves the backend: an HSM key
// unwraps inside the token.
type SecretKey interface {
	// Name is the logical name requests use.
	Name() string
	// KeyID is the identifier a KEKRecipientInfo names the key by (its kekid).
	KeyID() []byte
	// KeySize is the AES key's length in bytes: 16, 24 or 32.
	KeySize() int
	// WrapKey wraps a content key, bound to ctx.
	WrapKey(ctx context.Context, key []byte) ([]byte, error)
	// UnwrapKey unwraps one. Every failure about the data is one error that says
	// nothing about why; backend failures wrap ErrUnavailable or ErrBusy.
	UnwrapKey(ctx context.Context, wrapped []byte) ([]byte, error)
}

// SecretStore finds symmetric key-encryption keys by name. It is apart from Store
// because such keys have no public key nor certificate: they serve only envelopes.
type SecretStore interface {
	// SecretKey returns the key with the given name, or an error wrapping ErrNotFound.
	SecretKey(ctx context.Context, name string) (SecretKey, error)
}

// HealthChecker is implemented by stores that can be down (an HSM). Health returns
// nil while the store can serve, and an error wrapping ErrUnavailable otherwise.
type HealthChecker interface {
	Health(ctx context.Context) error
}

var (
	// ErrNotFound means no key has that name.
	ErrNotFound = errors.New("keystore: key not found")
	// ErrUnavailable means the backend (an HSM token) cannot be reached now.
	ErrUnavailable = errors.New("keystore: key backend unavailable")
	// ErrBusy means no session became free before the wait ended.
	ErrBusy = errors.New("keystore: no free session")
)
