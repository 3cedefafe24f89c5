// Package soft is the keystore backend that holds keys in process memory, loaded from
// PKCS#8 PEM files (optionally password-encrypted) with a PEM certificate chain each.
//
// It is the embedded default (the development PKI) and the backend for deployments
// without an HSM. Keys are parsed once at startup and every configuration mistake is
// reported then, naming the key and the file: a missing file, a wrong password, an
// unsupported key type, or a certificate whose public key is not the key's. After
// startup nothing can fail for configuration reasons, and no operation ever waits, so
// the contexts given to Signer, Decrypter and KeyAgreer are ignored.
//
// Its keys are keystore.GoNativeKey: their signatures are computed by Go's and gmsm's
// own code, so the server skips the verification of each signature it makes, which
// it keeps for HSM keys (about twice the cost of an ECDSA or SM2 signature).
//
// Supported keys are RSA (2048 bits and up), ECDSA on P-256 and P-384, and SM2. Signers
// and decrypters are the standard library's and gmsm's own private keys, so they follow
// their conventions: an SM2 signer with *sm2.SM2SignerOption{forceGMSign} takes the
// whole message and computes Z and SM3 itself (the Z of the default user ID is
// computed once per key, sm2signer.go); an RSA decrypter given
// *rsa.PKCS1v15DecryptOptions{SessionKeyLen: n} answers a bad ciphertext with n random
// bytes instead of an error (implicit rejection, no padding oracle).
//
// Encrypted PEM files are "ENCRYPTED PRIVATE KEY" blocks (PKCS#8 EncryptedPrivateKeyInfo,
// PBES2 with PBKDF2 and AES or SM4, as OpenSSL and gmsm write them). The password comes
// from a file or an environment variable, never from the configuration text itself.
package soft

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/emmansun/gmsm/pkcs8"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/rsaimplicit"
)

// KeyConfig names one key in configuration. Paths are used as given (the caller
// resolves relative paths against its configuration directory).
type KeyConfig struct {
	// Name is the logical key name requests use.
	Name string `yaml:"name" json:"name"`
	// KeyFile is a PEM file holding one PKCS#8 private key ("PRIVATE KEY" or
	// "ENCRYPTED PRIVATE KEY"; "RSA PRIVATE KEY" and "EC PRIVATE KEY" are accepted too).
	KeyFile string `yaml:"key_file" json:"key_file"`
	// CertFile is a PEM file of certificates, leaf first, then its issuers.
	CertFile string `yaml:"cert_file" json:"cert_file"`
	// Usages lists "sign" and/or "decrypt".
	Usages []string `yaml:"usages" json:"usages"`
	// PasswordFile is a file whose content (trailing newline removed) decrypts KeyFile.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// PasswordEnv is an environment variable holding the password that decrypts KeyFile.
	PasswordEnv string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	// Generation and State place the key among the generations of its name: several
	// entries may share a name when each has its own generation id ("2025"); state
	// is active (default; exactly one per name), decrypt-only or retired. An entry
	// without a generation is the one key of its name.
	Generation string `yaml:"generation,omitempty" json:"generation,omitempty"`
	State      string `yaml:"state,omitempty" json:"state,omitempty"`
}

// Entry is one key given in memory, for tests and the development PKI.
type Entry struct {
	Name string
	// Key is an *rsa.PrivateKey, an *ecdsa.PrivateKey (P-256, P-384, or the SM2 curve)
	// or an *sm2.PrivateKey.
	Key    crypto.PrivateKey
	Chain  []*smx509.Certificate
	Usages keystore.Usage
}

// Store is an immutable set of in-memory keys. It is safe for concurrent use.
type Store struct {
	byName map[string]*Key
	sorted []keystore.Key
}

var _ keystore.Store = (*Store)(nil)

// New loads every configured key. The error names the first key that failed and why.
func New(keys []KeyConfig) (*Store, error) {
	entries := make([]Entry, 0, len(keys))
	for _, kc := range keys {
		e, err := load(kc)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return NewFromKeys(entries...)
}

// NewFromKeys builds a store from keys already in memory. It checks them as New does.
func NewFromKeys(entries ...Entry) (*Store, error) {
	s := &Store{byName: make(map[string]*Key, len(entries))}
	for _, e := range entries {
		if e.Name == "" {
			return nil, errors.New("soft: a key has no name")
		}
		if _, dup := s.byName[e.Name]; dup {
			return nil, fmt.Errorf("soft: key %q: configured twice", e.Name)
		}
		k, err := newKey(e)
		if err != nil {
			return nil, fmt.Errorf("soft: key %q: %w", e.Name, err)
		}
		s.byName[e.Name] = k
		s.sorted = append(s.sorted, k)
	}
	sort.Slice(s.sorted, func(i, j int) bool { return s.sorted[i].Name() < s.sorted[j].Name() })
	return s, nil
}

// Key returns the named key or an error wrapping keystore.ErrNotFound.
func (s *Store) Key(_ context.Context, name string) (keystore.Key, error) {
	k, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", keystore.ErrNotFound, name)
	}
	return k, nil
}

// Keys lists every key sorted by name.
func (s *Store) Keys(context.Context) ([]keystore.Key, error) {
	out := make([]keystore.Key, len(s.sorted))
	copy(out, s.sorted)
	return out, nil
}

// Close does nothing: the keys live as long as the process.
func (s *Store) Close() error { return nil }

// Key is one in-memory key and its certificate chain.
type Key struct {
	name   string
	signer crypto.Signer // *rsa.PrivateKey, *ecdsa.PrivateKey or *sm2Signer
	dec    crypto.Decrypter
	agreer *ecdh.PrivateKey
	chain  []*smx509.Certificate
	usages keystore.Usage
}

var (
	_ keystore.Key         = (*Key)(nil)
	_ keystore.GoNativeKey = (*Key)(nil)
)

// GoNative is true: every operation is Go's or gmsm's own code on key material this
// store validated when it loaded it, so the server need not verify its signatures
// before handing them out (see keystore.GoNativeKey).
func (k *Key) GoNative() bool { return true }

// Name is the logical key name.
func (k *Key) Name() string { return k.name }

// Public is the key's public key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Chain is the certificate chain, leaf first. Callers must not modify it.
func (k *Key) Chain() []*smx509.Certificate { return k.chain }

// Usages is what the configuration allows.
func (k *Key) Usages() keystore.Usage { return k.usages }

// Signer returns the private key, or nil when the configuration does not allow signing.
func (k *Key) Signer(context.Context) crypto.Signer {
	if !k.usages.Has(keystore.UsageSign) {
		return nil
	}
	return k.signer
}

// Decrypter returns a decrypter for RSA and SM2 keys allowed to decrypt, else nil.
func (k *Key) Decrypter(context.Context) crypto.Decrypter {
	if !k.usages.Has(keystore.UsageDecrypt) {
		return nil
	}
	return k.dec
}

// KeyAgreer returns the ECDH key of a P-256/P-384 key allowed to decrypt, else nil.
func (k *Key) KeyAgreer(context.Context) keystore.KeyAgreer {
	if !k.usages.Has(keystore.UsageDecrypt) || k.agreer == nil {
		return nil
	}
	return k.agreer
}

func newKey(e Entry) (*Key, error) {
	if e.Usages == 0 {
		return nil, errors.New("no key usage given")
	}
	if e.Usages&^(keystore.UsageSign|keystore.UsageDecrypt) != 0 {
		return nil, errors.New("unknown key usage")
	}
	if len(e.Chain) == 0 || e.Chain[0] == nil {
		return nil, errors.New("no certificate")
	}
	for i, c := range e.Chain {
		if c == nil {
			return nil, fmt.Errorf("certificate %d is missing", i)
		}
	}
	k := &Key{name: e.Name, usages: e.Usages, chain: append([]*smx509.Certificate(nil), e.Chain...)}
	switch priv := e.Key.(type) {
	case *rsa.PrivateKey:
		if err := keystore.CheckRSABits(priv.N.BitLen()); err != nil {
			return nil, err
		}
		if err := priv.Validate(); err != nil {
			return nil, fmt.Errorf("invalid RSA key: %w", err)
		}
		k.signer = priv
		k.dec = rsaDecrypter{priv}
	case *sm2.PrivateKey:
		s, err := newSM2Signer(priv)
		if err != nil {
			return nil, fmt.Errorf("invalid SM2 key: %w", err)
		}
		k.signer = s
		k.dec = priv
	case *ecdsa.PrivateKey:
		// The curve's family in the algorithm table decides what the key does: SM2
		// signs and decrypts with gmsm; ECDSA signs and, on the curves the table
		// agrees keys on, answers ECDH.
		switch f := algorithm.OfCurve(priv.Curve); {
		case f == algorithm.SM2:
			sk, err := new(sm2.PrivateKey).FromECPrivateKey(priv)
			if err != nil {
				return nil, err
			}
			s, err := newSM2Signer(sk)
			if err != nil {
				return nil, fmt.Errorf("invalid SM2 key: %w", err)
			}
			k.signer = s
			k.dec = sk
		case f.ECDH() != nil:
			a, err := priv.ECDH()
			if err != nil {
				return nil, fmt.Errorf("invalid EC key: %w", err)
			}
			k.signer = priv
			k.agreer = a
		default:
			return nil, fmt.Errorf("unsupported EC curve %s", priv.Curve.Params().Name)
		}
	case nil:
		return nil, errors.New("no private key")
	default:
		return nil, fmt.Errorf("unsupported private key type %T", e.Key)
	}
	if !publicKeysEqual(k.signer.Public(), e.Chain[0].PublicKey) {
		return nil, fmt.Errorf("certificate %q does not match the private key", e.Chain[0].Subject.String())
	}
	return k, nil
}

// publicKeysEqual compares through the Equal method every standard public key has.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	ae, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && ae.Equal(b)
}

// rsaDecrypter makes a nil random source mean crypto/rand, so implicit rejection
// (*rsa.PKCS1v15DecryptOptions with SessionKeyLen) never panics for lack of randomness.
type rsaDecrypter struct{ *rsa.PrivateKey }

func (d rsaDecrypter) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	return d.PrivateKey.Decrypt(r, msg, opts)
}

var _ keystore.ImplicitRejecter = rsaDecrypter{}

// DecryptPKCS1v15Implicit implements keystore.ImplicitRejecter.
func (d rsaDecrypter) DecryptPKCS1v15Implicit(ct []byte) ([]byte, error) {
	return rsaimplicit.Decrypt(d.PrivateKey, ct)
}

func load(kc KeyConfig) (Entry, error) {
	fail := func(format string, a ...any) (Entry, error) {
		return Entry{}, fmt.Errorf("soft: key %q: "+format, append([]any{kc.Name}, a...)...)
	}
	if kc.Name == "" {
		return Entry{}, fmt.Errorf("soft: a key (key_file %q) has no name", kc.KeyFile)
	}
	if kc.KeyFile == "" {
		return fail("no key_file given")
	}
	if kc.CertFile == "" {
		return fail("no cert_file given")
	}
	usages, err := keystore.ParseUsage(strings.Join(kc.Usages, ","))
	if err != nil {
		return fail("usages: %v", err)
	}
	password, err := readPassword(kc)
	if err != nil {
		return fail("%v", err)
	}
	keyPEM, err := os.ReadFile(kc.KeyFile)
	if err != nil {
		return fail("key_file: %v", err)
	}
	priv, err := ParsePrivateKeyPEM(keyPEM, password)
	if err != nil {
		return fail("key_file %s: %v", kc.KeyFile, err)
	}
	certPEM, err := os.ReadFile(kc.CertFile)
	if err != nil {
		return fail("cert_file: %v", err)
	}
	chain, err := keystore.ParseCertificatesPEM(certPEM)
	if err != nil {
		return fail("cert_file %s: %v", kc.CertFile, err)
	}
	e := Entry{Name: kc.Name, Key: priv, Chain: chain, Usages: usages}
	if _, err := newKey(e); err != nil {
		return fail("key_file %s, cert_file %s: %v", kc.KeyFile, kc.CertFile, err)
	}
	return e, nil
}

func readPassword(kc KeyConfig) ([]byte, error) {
	switch {
	case kc.PasswordFile != "" && kc.PasswordEnv != "":
		return nil, errors.New("give password_file or password_env, not both")
	case kc.PasswordFile != "":
		b, err := os.ReadFile(kc.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %v", err)
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	case kc.PasswordEnv != "":
		v, ok := os.LookupEnv(kc.PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("password_env: environment variable %s is not set", kc.PasswordEnv)
		}
		return []byte(v), nil
	}
	return nil, nil
}

// ParsePrivateKeyPEM reads the first private key block of a PEM file: a PKCS#8
// "PRIVATE KEY", an "ENCRYPTED PRIVATE KEY" (which needs password), or a legacy
// "RSA PRIVATE KEY" / "EC PRIVATE KEY". Error messages never include key bytes.
func ParsePrivateKeyPEM(data, password []byte) (crypto.PrivateKey, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no private key PEM block found")
		}
		if len(block.Headers) != 0 {
			return nil, errors.New("legacy PEM encryption (Proc-Type headers) is not supported; use PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc)")
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := smx509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PKCS#8 key: %v", err)
			}
			return k, nil
		case "ENCRYPTED PRIVATE KEY":
			if len(password) == 0 {
				return nil, errors.New("the key is encrypted and no password_file or password_env is given")
			}
			k, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, password)
			if err != nil {
				return nil, errors.New("cannot decrypt the key: wrong password or unsupported encryption (PBES2 with AES or SM4 is supported)")
			}
			return k, nil
		case "RSA PRIVATE KEY":
			k, err := smx509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PKCS#1 key: %v", err)
			}
			return k, nil
		case "EC PRIVATE KEY":
			k, err := smx509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse EC key: %v", err)
			}
			return k, nil
		}
		// Skip other blocks (e.g. "EC PARAMETERS" before an EC key).
	}
}
