package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
)

// Store is the set of configured HSM keys. It is safe for concurrent use.
type Store struct {
	tokens []*token
	mods   []module
	byName map[string]*Key
	sorted []keystore.Key
}

var (
	_ keystore.Store         = (*Store)(nil)
	_ keystore.HealthChecker = (*Store)(nil)
)

// opener loads a PKCS#11 library by path.
type opener func(path string) (module, error)

// Options are for tests and embedding; the zero value is right for production.
type Options struct {
	// Now is the clock of the circuit breaker. Nil means time.Now.
	Now func() time.Time
}

// New opens every configured token, logs in, finds every key, loads its certificate
// chain and checks it: the certificate's public key must be the token key's, and each
// allowed operation is run once and verified. The error names the key or token that
// failed. Without cgo it fails with "PKCS#11 support needs a cgo build".
func New(cfg Config, opts Options) (*Store, error) {
	return newStore(cfg, opts, openModule)
}

func newStore(cfg Config, opts Options, open opener) (_ *Store, err error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{byName: map[string]*Key{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	mods := map[string]module{}
	for i, tc := range cfg.Tokens {
		if tc.Module == "" {
			return nil, fmt.Errorf("pkcs11: token %d (%q): no module path given", i+1, tc.Label)
		}
		mod, ok := mods[tc.Module]
		if !ok {
			mod, err = open(tc.Module)
			if err != nil {
				return nil, fmt.Errorf("pkcs11: token %q: module %s: %w", tc.Label, tc.Module, err)
			}
			mods[tc.Module] = mod
			s.mods = append(s.mods, mod)
		}
		for _, other := range s.tokens {
			if other.cfg.Label == tc.Label && other.cfg.Serial == tc.Serial {
				return nil, fmt.Errorf("pkcs11: token %q configured twice", tc.Label)
			}
		}
		t, err := newToken(tc, mod, now)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: token %q (module %s): %w", tc.Label, tc.Module, err)
		}
		s.tokens = append(s.tokens, t)
	}
	ctx := context.Background()
	for _, kc := range cfg.Keys {
		if kc.Name == "" {
			return nil, fmt.Errorf("pkcs11: a key (uri %s) has no name", redactURI(kc.URI))
		}
		if _, dup := s.byName[kc.Name]; dup {
			return nil, fmt.Errorf("pkcs11: key %q configured twice", kc.Name)
		}
		k, err := s.loadKey(ctx, kc)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: key %q (%s): %w", kc.Name, redactURI(kc.URI), err)
		}
		s.byName[k.name] = k
		s.sorted = append(s.sorted, k)
	}
	sort.Slice(s.sorted, func(i, j int) bool { return s.sorted[i].Name() < s.sorted[j].Name() })
	return s, nil
}

func (s *Store) tokenFor(u *URI) (*token, error) {
	for _, t := range s.tokens {
		if t.cfg.Label == u.Token && (!u.Has("serial") || u.Serial == t.cfg.Serial) {
			return t, nil
		}
	}
	return nil, fmt.Errorf("no token labelled %q is configured", u.Token)
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
	return append([]keystore.Key(nil), s.sorted...), nil
}

// Health is nil while every token serves, else an error wrapping keystore.ErrUnavailable
// naming the tokens that are down. It probes a token that is down when a probe is due,
// so polling Health heals the store even without traffic.
func (s *Store) Health(ctx context.Context) error {
	var errs []error
	for _, t := range s.tokens {
		if err := t.health(ctx); err != nil {
			if !errors.Is(err, keystore.ErrUnavailable) {
				err = t.unavailable(err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats reports each token's pool counters, in configuration order.
func (s *Store) Stats() []Stats {
	out := make([]Stats, len(s.tokens))
	for i, t := range s.tokens {
		out[i] = t.stats()
	}
	return out
}

// Close closes every session and releases the libraries.
func (s *Store) Close() error {
	for _, t := range s.tokens {
		t.close()
	}
	var errs []error
	for _, m := range s.mods {
		errs = append(errs, m.Close())
	}
	s.mods = nil
	return errors.Join(errs...)
}

type keyKind int

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindSM2
)

// Key is one key in a token.
type Key struct {
	name   string
	tok    *token
	uri    *URI
	usages keystore.Usage
	kind   keyKind
	pub    crypto.PublicKey
	chain  []*smx509.Certificate
	size   int // RSA modulus bytes, or EC coordinate bytes

	handles handleCache
	check   *keystore.SelfCheck

	oaepMu sync.Mutex
	oaep   map[oaepKey]oaepMode
}

var _ keystore.Key = (*Key)(nil)

// Name is the logical key name.
func (k *Key) Name() string { return k.name }

// Public is the key's public key, from its certificate.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Chain is the certificate chain, leaf first.
func (k *Key) Chain() []*smx509.Certificate { return k.chain }

// Usages is what the configuration allows.
func (k *Key) Usages() keystore.Usage { return k.usages }

// SelfCheck is the key's self-check policy, from its token's self_check setting.
func (k *Key) SelfCheck() *keystore.SelfCheck { return k.check }

var _ keystore.SelfCheckedKey = (*Key)(nil)

// Signer returns a signer bound to ctx, or nil when the key may not sign.
func (k *Key) Signer(ctx context.Context) crypto.Signer {
	if !k.usages.Has(keystore.UsageSign) {
		return nil
	}
	if k.kind == kindSM2 {
		return &sm2Signer{signer{k, ctx}}
	}
	return &signer{k, ctx}
}

// Decrypter returns a decrypter bound to ctx for RSA and SM2 keys allowed to decrypt.
func (k *Key) Decrypter(ctx context.Context) crypto.Decrypter {
	if !k.usages.Has(keystore.UsageDecrypt) || k.kind == kindEC {
		return nil
	}
	return &decrypter{k, ctx}
}

// KeyAgreer returns an ECDH agreer bound to ctx for EC keys allowed to decrypt.
func (k *Key) KeyAgreer(ctx context.Context) keystore.KeyAgreer {
	if !k.usages.Has(keystore.UsageDecrypt) || k.kind != kindEC {
		return nil
	}
	return &agreer{k, ctx}
}

// handleCache remembers a key's object handle for one handle generation of its token.
type handleCache struct {
	mu  sync.Mutex
	h   objectHandle
	gen uint64
	ok  bool
}

func (k *Key) privateHandle(h sessionHandle, gen uint64) (objectHandle, error) {
	c := &k.handles
	c.mu.Lock()
	if c.ok && c.gen == gen {
		oh := c.h
		c.mu.Unlock()
		return oh, nil
	}
	c.mu.Unlock()
	oh, err := findPrivateKey(k.tok.mod, h, k.uri)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.h, c.gen, c.ok = oh, gen, true
	c.mu.Unlock()
	return oh, nil
}

// errKeyMissing means the URI matches no private key in the token.
var errKeyMissing = errors.New("no private key in the token matches the URI")

func findPrivateKey(mod module, h sessionHandle, u *URI) (objectHandle, error) {
	tmpl := []attribute{ulongAttr(ckaClass, ckoPrivateKey)}
	if u.Has("object") {
		tmpl = append(tmpl, attribute{ckaLabel, []byte(u.Object)})
	}
	if u.Has("id") {
		tmpl = append(tmpl, attribute{ckaID, u.ID})
	}
	objs, err := mod.FindObjects(h, tmpl)
	if err != nil {
		return 0, err
	}
	switch len(objs) {
	case 0:
		return 0, errKeyMissing
	case 1:
		return objs[0], nil
	}
	return 0, fmt.Errorf("the URI matches %d private keys; add id= or a more specific object=", len(objs))
}

// op runs one key operation on a pooled session, with the key's handle.
func (k *Key) op(ctx context.Context, fn func(h sessionHandle, oh objectHandle) error) error {
	return k.tok.do(ctx, func(h sessionHandle, gen uint64) error {
		oh, err := k.privateHandle(h, gen)
		if err != nil {
			return err
		}
		return fn(h, oh)
	})
}

func (k *Key) rawSign(ctx context.Context, m mechanism, data []byte) (sig []byte, err error) {
	err = k.op(ctx, func(h sessionHandle, oh objectHandle) error {
		var e error
		sig, e = k.tok.mod.Sign(h, m, oh, data)
		return e
	})
	return sig, err
}

func (k *Key) rawDecrypt(ctx context.Context, m mechanism, data []byte) (pt []byte, err error) {
	err = k.op(ctx, func(h sessionHandle, oh objectHandle) error {
		var e error
		pt, e = k.tok.mod.Decrypt(h, m, oh, data)
		return e
	})
	return pt, err
}

type signer struct {
	k   *Key
	ctx context.Context
}

func (s *signer) Public() crypto.PublicKey { return s.k.pub }

// Sign signs digest: RSA PKCS#1 v1.5 (opts a crypto.Hash) or PSS (*rsa.PSSOptions),
// ECDSA (DER output), or for SM2 keys as sm2Signer documents.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k := s.k
	switch k.kind {
	case kindRSA:
		return k.signRSA(s.ctx, digest, opts)
	case kindEC:
		if opts != nil && opts.HashFunc() != 0 && len(digest) != opts.HashFunc().Size() {
			return nil, fmt.Errorf("pkcs11: digest is %d bytes, %v needs %d", len(digest), opts.HashFunc(), opts.HashFunc().Size())
		}
		d := digest
		if len(d) > k.size {
			d = d[:k.size] // leftmost bits; P-256/P-384 orders are whole bytes
		}
		raw, err := k.rawSign(s.ctx, mechanism{Type: ckmECDSA}, d)
		if err != nil {
			return nil, err
		}
		return rawToDER(raw, k.size)
	case kindSM2:
		return k.signSM2(s.ctx, digest, opts)
	}
	return nil, errors.New("pkcs11: unknown key kind")
}

func (k *Key) signRSA(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, errors.New("pkcs11: RSA signing needs the hash in opts")
	}
	h := opts.HashFunc()
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		ckm, mgf, err := hashMechanisms(h)
		if err != nil {
			return nil, err
		}
		if len(digest) != h.Size() {
			return nil, fmt.Errorf("pkcs11: digest is %d bytes, %v needs %d", len(digest), h, h.Size())
		}
		salt := pss.SaltLength
		emLen := (k.pub.(*rsa.PublicKey).N.BitLen() - 1 + 7) / 8
		switch salt {
		case rsa.PSSSaltLengthEqualsHash:
			salt = h.Size()
		case rsa.PSSSaltLengthAuto:
			salt = emLen - h.Size() - 2
		}
		if salt < 0 || salt > emLen-h.Size()-2 {
			return nil, fmt.Errorf("pkcs11: PSS salt length %d out of range", pss.SaltLength)
		}
		return k.rawSign(ctx, mechanism{Type: ckmRSAPKCSPSS, PSS: &pssParams{Hash: ckm, MGF: mgf, SaltLen: uint(salt)}}, digest)
	}
	var data []byte
	if h == 0 {
		data = digest // pre-formatted input, as crypto/rsa allows with hash 0
	} else {
		var err error
		if data, err = DigestInfo(h, digest); err != nil {
			return nil, err
		}
	}
	return k.rawSign(ctx, mechanism{Type: ckmRSAPKCS}, data)
}

// sm2Signer follows gmsm's convention: with *sm2.SM2SignerOption{forceGMSign: true}
// (sm2.DefaultSM2SignerOpts, sm2.NewSM2SignerOption(true, uid)) the argument is the
// whole message and Z is computed with the option's user ID; otherwise the argument is
// the 32-byte e = SM3(Z || M). It is also a crypto.MessageSigner.
type sm2Signer struct{ signer }

// SignMessage signs msg with Z computed from the user ID in opts (default ID if none).
func (s *sm2Signer) SignMessage(r io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	isMsg, uid, err := sm2SignerOptions(opts)
	if err != nil {
		return nil, err
	}
	if !isMsg {
		uid = defaultSM2UID
	}
	return s.k.signSM2Message(s.ctx, msg, uid)
}

// SignWithSM2 is gmsm's (deprecated) sm2.Signer method.
func (s *sm2Signer) SignWithSM2(_ io.Reader, uid, msg []byte) ([]byte, error) {
	if len(uid) == 0 {
		uid = defaultSM2UID
	}
	return s.k.signSM2Message(s.ctx, msg, uid)
}

func (k *Key) signSM2(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	isMsg, uid, err := sm2SignerOptions(opts)
	if err != nil {
		return nil, err
	}
	if isMsg {
		return k.signSM2Message(ctx, digest, uid)
	}
	if len(digest) != 32 {
		return nil, fmt.Errorf("pkcs11: SM2 digest is %d bytes, want 32 (pass sm2.DefaultSM2SignerOpts to sign a message)", len(digest))
	}
	return k.signSM2e(ctx, digest)
}

func (k *Key) signSM2Message(ctx context.Context, msg, uid []byte) ([]byte, error) {
	cfg := k.tok.sm2
	if cfg.HSMComputesZ && bytes.Equal(uid, defaultSM2UID) {
		sig, err := k.rawSign(ctx, mechanism{Type: cfg.SignWithZ}, msg)
		if err != nil {
			return nil, err
		}
		return k.sm2SigToDER(sig)
	}
	e, err := sm2.CalculateSM2Hash(k.pub.(*ecdsa.PublicKey), msg, uid)
	if err != nil {
		return nil, err
	}
	return k.signSM2e(ctx, e)
}

func (k *Key) signSM2e(ctx context.Context, e []byte) ([]byte, error) {
	cfg := k.tok.sm2
	if cfg.Sign == 0 {
		return nil, errors.New("pkcs11: no SM2 sign_mechanism configured for signing a digest")
	}
	sig, err := k.rawSign(ctx, mechanism{Type: cfg.Sign}, e)
	if err != nil {
		return nil, err
	}
	return k.sm2SigToDER(sig)
}

func (k *Key) sm2SigToDER(sig []byte) ([]byte, error) {
	if k.tok.sm2.SignatureFormat == "raw" {
		return rawToDER(sig, 32)
	}
	return normalizeDERSignature(sig)
}

type decrypter struct {
	k   *Key
	ctx context.Context
}

func (d *decrypter) Public() crypto.PublicKey { return d.k.pub }

// errDecrypt is what a failed decryption returns: it never says why, so it cannot
// serve as a padding oracle. The PKCS#11 cause is kept for logs via Unwrap.
type errDecrypt struct{ cause error }

func (e errDecrypt) Error() string { return "pkcs11: decryption failed" }
func (e errDecrypt) Unwrap() error { return e.cause }

// Decrypt decrypts RSA (PKCS#1 v1.5, with implicit rejection when opts is
// *rsa.PKCS1v15DecryptOptions with SessionKeyLen > 0; OAEP with *rsa.OAEPOptions) or
// SM2 (gmsm ciphertext, ASN.1 or plain per *sm2.DecrypterOpts).
func (d *decrypter) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k := d.k
	if k.kind == kindSM2 {
		cfg := k.tok.sm2
		if cfg.Decrypt == 0 {
			return nil, errors.New("pkcs11: no SM2 decrypt_mechanism configured")
		}
		ct, err := sm2Ciphertext(msg, opts, cfg.CiphertextFormat)
		if err != nil {
			return nil, errDecrypt{err}
		}
		pt, err := k.rawDecrypt(d.ctx, mechanism{Type: cfg.Decrypt}, ct)
		if err != nil {
			if isPoolError(err) {
				return nil, err
			}
			return nil, errDecrypt{err}
		}
		return pt, nil
	}
	switch o := opts.(type) {
	case *rsa.OAEPOptions:
		mgf := o.MGFHash
		if mgf == 0 {
			mgf = o.Hash
		}
		if _, _, err := hashMechanisms(o.Hash); err != nil {
			return nil, err
		}
		if _, _, err := hashMechanisms(mgf); err != nil {
			return nil, err
		}
		mode, err := k.oaepModeFor(d.ctx, o.Hash, mgf)
		if err != nil {
			return nil, err
		}
		pt, err := k.decryptOAEP(d.ctx, mode, o.Hash, mgf, o.Label, msg)
		if err != nil {
			if isPoolError(err) {
				return nil, err
			}
			return nil, errDecrypt{err}
		}
		return pt, nil
	case *rsa.PKCS1v15DecryptOptions:
		if o != nil && o.SessionKeyLen > 0 {
			return k.decryptSessionKey(d.ctx, r, msg, o.SessionKeyLen)
		}
	case nil:
	default:
		return nil, fmt.Errorf("pkcs11: unsupported decrypter options %T", opts)
	}
	pt, err := k.rawDecrypt(d.ctx, mechanism{Type: ckmRSAPKCS}, msg)
	if err != nil {
		if isPoolError(err) {
			return nil, err
		}
		return nil, errDecrypt{err}
	}
	return pt, nil
}

// decryptSessionKey is PKCS#1 v1.5 decryption with implicit rejection: whatever is
// wrong with the ciphertext, the answer is keyLen bytes, random when the padding or
// the length is bad, so a caller learns nothing from the outcome (RFC 3218 2.3.2).
// Only a failure of the token itself (unavailable, busy) is an error.
func (k *Key) decryptSessionKey(ctx context.Context, r io.Reader, msg []byte, keyLen int) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	out := make([]byte, keyLen)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	if len(msg) != k.size {
		return out, nil
	}
	pt, err := k.rawDecrypt(ctx, mechanism{Type: ckmRSAPKCS}, msg)
	if err != nil {
		if isPoolError(err) {
			return nil, err
		}
		return out, nil
	}
	subtle.ConstantTimeCopy(subtle.ConstantTimeEq(int32(len(pt)), int32(keyLen)), out, padTo(pt, keyLen))
	return out, nil
}

// isPoolError reports whether err is about the token (down, busy) rather than the data.
func isPoolError(err error) bool {
	return errors.Is(err, keystore.ErrUnavailable) || errors.Is(err, keystore.ErrBusy)
}

func padTo(b []byte, n int) []byte {
	if len(b) == n {
		return b
	}
	return make([]byte, n)
}

type agreer struct {
	k   *Key
	ctx context.Context
}

// ECDH derives the shared secret (the x-coordinate) with CKM_ECDH1_DERIVE into a
// session object, reads it and destroys the object.
func (a *agreer) ECDH(remote *ecdh.PublicKey) ([]byte, error) {
	k := a.k
	want := ecdhCurve(k.pub.(*ecdsa.PublicKey).Curve)
	if remote == nil || want == nil || remote.Curve() != want {
		return nil, errors.New("pkcs11: ECDH peer key is on another curve")
	}
	m := mechanism{Type: ckmECDH1Derive, ECDH: &ecdh1Params{KDF: ckdNull, PublicData: remote.Bytes()}}
	tmpl := []attribute{
		ulongAttr(ckaClass, ckoSecretKey), ulongAttr(ckaKeyType, ckkGenericSecret),
		boolAttr(ckaToken, false), boolAttr(ckaSensitive, false), boolAttr(ckaExtractable, true),
		ulongAttr(ckaValueLen, uint(k.size)),
	}
	var secret []byte
	err := k.op(a.ctx, func(h sessionHandle, oh objectHandle) error {
		sk, err := k.tok.mod.DeriveKey(h, m, oh, tmpl)
		if err != nil {
			return err
		}
		defer k.tok.mod.DestroyObject(h, sk)
		attrs, err := k.tok.mod.Attributes(h, sk, []uint{ckaValue})
		if err != nil {
			return err
		}
		secret = attrs[ckaValue]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(secret) != k.size {
		return nil, fmt.Errorf("pkcs11: derived secret is %d bytes, want %d", len(secret), k.size)
	}
	return secret, nil
}

func ecdhCurve(c elliptic.Curve) ecdh.Curve {
	switch c {
	case elliptic.P256():
		return ecdh.P256()
	case elliptic.P384():
		return ecdh.P384()
	}
	return nil
}

// loadKey finds a configured key, loads its chain and checks that they belong together.
func (s *Store) loadKey(ctx context.Context, kc KeyConfig) (*Key, error) {
	u, err := keyURI(kc.URI)
	if err != nil {
		return nil, err
	}
	usages, err := parseUsages(kc.Usages)
	if err != nil {
		return nil, err
	}
	t, err := s.tokenFor(u)
	if err != nil {
		return nil, err
	}
	k := &Key{name: kc.Name, tok: t, uri: u, usages: usages}

	var (
		keyType uint
		attrs   map[uint][]byte
		chain   []*smx509.Certificate
	)
	err = t.do(ctx, func(h sessionHandle, gen uint64) error {
		oh, err := k.privateHandle(h, gen)
		if err != nil {
			return err
		}
		a, err := t.mod.Attributes(h, oh, []uint{ckaKeyType, ckaID, ckaLabel})
		if err != nil {
			return fmt.Errorf("read key attributes: %w", err)
		}
		kt, ok := decodeULong(a[ckaKeyType])
		if !ok {
			return errors.New("bad CKA_KEY_TYPE")
		}
		keyType = kt
		var more []uint
		switch {
		case kt == ckkRSA:
			more = []uint{ckaModulus, ckaPublicExponent}
		case kt == ckkEC:
			more = []uint{ckaECParams}
		}
		if len(more) > 0 {
			b, err := t.mod.Attributes(h, oh, more)
			if err != nil {
				return fmt.Errorf("read key attributes: %w", err)
			}
			for t, v := range b {
				a[t] = v
			}
		}
		attrs = a
		if kc.CertFile == "" {
			chain, err = chainFromToken(t.mod, h, a[ckaID], a[ckaLabel])
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if kc.CertFile != "" {
		b, err := os.ReadFile(kc.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %v", err)
		}
		if chain, err = keystore.ParseCertificatesPEM(b); err != nil {
			return nil, fmt.Errorf("cert_file %s: %v", kc.CertFile, err)
		}
	}
	k.chain = chain
	k.pub = chain[0].PublicKey
	k.check = keystore.NewSelfCheck(t.selfCheck, k.pub)

	// The certificate must be for this key.
	mismatch := fmt.Errorf("the certificate %q does not match the key in the token", chain[0].Subject.String())
	switch {
	case keyType == ckkRSA:
		pub, ok := k.pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("the token key is RSA but the certificate holds a %T", k.pub)
		}
		n := new(big.Int).SetBytes(attrs[ckaModulus])
		e := new(big.Int).SetBytes(attrs[ckaPublicExponent])
		if n.Cmp(pub.N) != 0 || !e.IsInt64() || e.Int64() != int64(pub.E) {
			return nil, mismatch
		}
		if err := keystore.CheckRSABits(pub.N.BitLen()); err != nil {
			return nil, err
		}
		k.kind, k.size = kindRSA, pub.Size()
	case keyType == ckkEC:
		curve, err := curveFromParams(attrs[ckaECParams])
		if err != nil {
			return nil, err
		}
		pub, ok := k.pub.(*ecdsa.PublicKey)
		if !ok || pub.Curve != curve {
			return nil, fmt.Errorf("the token key is on %s but the certificate holds another key type", curve.Params().Name)
		}
		if curve == sm2.P256() {
			if t.sm2 == nil {
				return nil, errors.New("an SM2 key, but the token has no sm2 mechanism configuration")
			}
			k.kind = kindSM2
		} else {
			k.kind = kindEC
		}
		k.size = (curve.Params().BitSize + 7) / 8
	case t.sm2 != nil && keyType == t.sm2.KeyType:
		if !sm2.IsSM2PublicKey(k.pub) {
			return nil, errors.New("the token key is SM2 but the certificate is not")
		}
		k.kind, k.size = kindSM2, 32
	default:
		return nil, fmt.Errorf("unsupported key type 0x%X (for SM2 keys configure the token's sm2 mechanisms)", keyType)
	}
	if err := k.selfTest(ctx); err != nil {
		if errors.Is(err, errSelfTestMismatch) {
			return nil, mismatch
		}
		return nil, err
	}
	return k, nil
}

var errSelfTestMismatch = errors.New("self-test result does not verify with the certificate's key")

// selfTest runs each allowed operation once and checks the result with the
// certificate's public key: it proves the certificate matches the key (for EC and SM2
// keys whose public point the private object does not carry) and that the configured
// mechanisms work, at startup rather than on the first request.
func (k *Key) selfTest(ctx context.Context) error {
	msg := []byte("signsvr pkcs11 startup self-test")
	if k.usages.Has(keystore.UsageSign) {
		s := k.Signer(ctx)
		var ok bool
		switch k.kind {
		case kindRSA:
			d := sha256.Sum256(msg)
			sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
			if err != nil {
				return fmt.Errorf("self-test sign: %w", err)
			}
			ok = rsa.VerifyPKCS1v15(k.pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
		case kindEC:
			d := sha256.Sum256(msg)
			sig, err := s.Sign(rand.Reader, d[:], crypto.SHA256)
			if err != nil {
				return fmt.Errorf("self-test sign: %w", err)
			}
			ok = ecdsa.VerifyASN1(k.pub.(*ecdsa.PublicKey), d[:], sig)
		case kindSM2:
			sig, err := s.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
			if err != nil {
				return fmt.Errorf("self-test sign: %w", err)
			}
			ok = sm2.VerifyASN1WithSM2(k.pub.(*ecdsa.PublicKey), nil, msg, sig)
		}
		if !ok {
			return errSelfTestMismatch
		}
	}
	if k.usages.Has(keystore.UsageDecrypt) {
		secret := make([]byte, 32)
		rand.Read(secret)
		var (
			got []byte
			err error
		)
		switch k.kind {
		case kindRSA:
			var ct []byte
			if ct, err = rsa.EncryptPKCS1v15(rand.Reader, k.pub.(*rsa.PublicKey), secret); err != nil {
				return err
			}
			got, err = k.Decrypter(ctx).Decrypt(rand.Reader, ct, nil)
		case kindSM2:
			var ct []byte
			if ct, err = sm2.EncryptASN1(rand.Reader, k.pub.(*ecdsa.PublicKey), secret); err != nil {
				return err
			}
			got, err = k.Decrypter(ctx).Decrypt(rand.Reader, ct, sm2.ASN1DecrypterOpts)
		case kindEC:
			pub, _ := k.pub.(*ecdsa.PublicKey).ECDH()
			eph, e := ecdhCurve(k.pub.(*ecdsa.PublicKey).Curve).GenerateKey(rand.Reader)
			if e != nil {
				return e
			}
			if secret, err = eph.ECDH(pub); err != nil {
				return err
			}
			got, err = k.KeyAgreer(ctx).ECDH(eph.PublicKey())
		}
		if err != nil {
			var de errDecrypt
			if errors.As(err, &de) {
				err = de.cause // startup errors are for the operator: show the cause
			}
			return fmt.Errorf("self-test decrypt: %w", err)
		}
		if !bytes.Equal(got, secret) {
			return errSelfTestMismatch
		}
	}
	return nil
}

// chainFromToken reads the key's certificate (a CKO_CERTIFICATE with the key's CKA_ID,
// else its CKA_LABEL) and then each issuer by CKA_SUBJECT, up to a self-signed one.
func chainFromToken(mod module, h sessionHandle, id, label []byte) ([]*smx509.Certificate, error) {
	find := func(tmpl []attribute) (*smx509.Certificate, error) {
		tmpl = append([]attribute{ulongAttr(ckaClass, ckoCertificate)}, tmpl...)
		objs, err := mod.FindObjects(h, tmpl)
		if err != nil || len(objs) == 0 {
			return nil, err
		}
		a, err := mod.Attributes(h, objs[0], []uint{ckaValue})
		if err != nil {
			return nil, err
		}
		return smx509.ParseCertificate(a[ckaValue])
	}
	var leaf *smx509.Certificate
	var err error
	if len(id) > 0 {
		if leaf, err = find([]attribute{{ckaID, id}}); err != nil {
			return nil, fmt.Errorf("read certificate: %w", err)
		}
	}
	if leaf == nil && len(label) > 0 {
		if leaf, err = find([]attribute{{ckaLabel, label}}); err != nil {
			return nil, fmt.Errorf("read certificate: %w", err)
		}
	}
	if leaf == nil {
		return nil, errors.New("no cert_file given and no certificate in the token for this key (import one with `signsvr keys import-cert`)")
	}
	chain := []*smx509.Certificate{leaf}
	for c := leaf; len(chain) < 8 && !bytes.Equal(c.RawIssuer, c.RawSubject); {
		issuer, err := find([]attribute{{ckaSubject, c.RawIssuer}})
		if err != nil {
			return nil, fmt.Errorf("read issuer certificate: %w", err)
		}
		if issuer == nil {
			break
		}
		chain = append(chain, issuer)
		c = issuer
	}
	return chain, nil
}
