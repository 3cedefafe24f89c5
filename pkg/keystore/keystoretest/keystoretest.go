// Package keystoretest is one conformance suite for every keystore backend.
//
// Run exercises each key a store holds through the keystore.Key interface only, the way
// the server does, and checks every answer with the public key and the standard
// library or gmsm, never with the backend itself: a backend that returns a wrong
// signature, a wrong plaintext or a public key that is not its certificate's fails.
//
// What is checked, per key, by the key's algorithm (keystore.Algorithm) and usages:
//   - the leaf certificate's public key is Public(); Key(name) finds it; Keys is sorted;
//   - RSA sign: PKCS#1 v1.5 with SHA-256/384/512, PSS with salt = hash length (and
//     PSSSaltLengthAuto, verified as such);
//   - ECDSA sign: SHA-256 and SHA-384 digests, DER output (ecdsa.VerifyASN1);
//   - SM2 sign: the whole message with the default and a custom user ID (Z computed by
//     the signer, gmsm's *sm2.SM2SignerOption convention), crypto.MessageSigner where
//     offered, and a precomputed e = SM3(Z || M) digest;
//   - RSA decrypt: PKCS#1 v1.5 plain, v1.5 with implicit rejection (SessionKeyLen: a
//     bad ciphertext gives random bytes of that length, not an error), OAEP SHA-256;
//   - SM2 decrypt: gmsm's ASN.1 ciphertext;
//   - EC key agreement: the agreer's ECDH equals an ephemeral key's ECDH with Public();
//   - abilities follow usages: Signer is nil exactly when the key may not sign, etc.;
//   - concurrent use from many goroutines (run the caller under -race).
package keystoretest

//lint:file-ignore SA1019 the suite checks RSA PKCS#1 v1.5 key transport, which CMS peers write and backends must decrypt.
//lint:file-ignore ST1005 its errors start with the method of keystore.Key that failed (Sign, Decrypt).

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
)

// Want is a key the store must hold: an algorithm as keystore.Algorithm names it
// ("RSA-2048", "ECDSA-P256", "SM2", ...) with at least the given usages.
type Want struct {
	Algorithm string
	Usage     keystore.Usage
}

// Options tune Run. The zero value runs everything with 8 goroutines.
type Options struct {
	// Require lists keys that must be present, so a store that silently lost a key type
	// fails instead of passing with less to test.
	Require []Want
	// Goroutines and OpsPerGoroutine shape the concurrency test (defaults 8 and 16).
	Goroutines      int
	OpsPerGoroutine int
}

// Run runs the whole suite against store as subtests of t.
func Run(t *testing.T, store keystore.Store, opts Options) {
	t.Helper()
	if opts.Goroutines <= 0 {
		opts.Goroutines = 8
	}
	if opts.OpsPerGoroutine <= 0 {
		opts.OpsPerGoroutine = 16
	}
	ctx := t.Context()
	keys, err := store.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if len(keys) == 0 {
		t.Fatal("the store holds no keys")
	}

	t.Run("Lookup", func(t *testing.T) { testLookup(t, store, keys) })
	t.Run("Require", func(t *testing.T) { testRequire(t, keys, opts.Require) })
	for _, k := range keys {
		k := k
		t.Run(k.Name(), func(t *testing.T) {
			t.Run("PublicMatchesLeaf", func(t *testing.T) { testPublic(t, k) })
			t.Run("AbilitiesFollowUsages", func(t *testing.T) { testAbilities(t, k) })
			for _, c := range checksFor(k) {
				c := c
				t.Run(c.name, func(t *testing.T) {
					if err := c.run(t.Context(), k); err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, keys, opts) })
}

func testLookup(t *testing.T, store keystore.Store, keys []keystore.Key) {
	ctx := t.Context()
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name()
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("Keys not sorted by name: %v", names)
	}
	for _, k := range keys {
		got, err := store.Key(ctx, k.Name())
		if err != nil {
			t.Errorf("Key(%q): %v", k.Name(), err)
			continue
		}
		if got.Name() != k.Name() {
			t.Errorf("Key(%q) returned key named %q", k.Name(), got.Name())
		}
	}
	_, err := store.Key(ctx, "no such key \x00")
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Key(unknown) = %v, want an error wrapping keystore.ErrNotFound", err)
	}
}

func testRequire(t *testing.T, keys []keystore.Key, wants []Want) {
	for _, w := range wants {
		found := false
		for _, k := range keys {
			if keystore.Algorithm(k.Public()) == w.Algorithm && k.Usages().Has(w.Usage) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no %s key with usage %s in the store", w.Algorithm, w.Usage)
		}
	}
}

func testPublic(t *testing.T, k keystore.Key) {
	chain := k.Chain()
	if len(chain) == 0 || chain[0] == nil {
		t.Fatal("no leaf certificate")
	}
	pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		t.Fatalf("Public() is %T, which has no Equal method", k.Public())
	}
	if !pub.Equal(chain[0].PublicKey) {
		t.Fatal("Public() is not the leaf certificate's public key")
	}
	if keystore.Algorithm(k.Public()) == "" {
		t.Fatalf("unsupported public key type %T", k.Public())
	}
	if s := k.Signer(t.Context()); s != nil && !pub.Equal(s.Public()) {
		t.Fatal("Signer().Public() is not Public()")
	}
	if d := k.Decrypter(t.Context()); d != nil && !pub.Equal(d.Public()) {
		t.Fatal("Decrypter().Public() is not Public()")
	}
}

func testAbilities(t *testing.T, k keystore.Key) {
	ctx := t.Context()
	alg := keystore.Algorithm(k.Public())
	isEC := strings.HasPrefix(alg, "ECDSA-")
	if got, want := k.Signer(ctx) != nil, k.Usages().Has(keystore.UsageSign); got != want {
		t.Errorf("Signer present = %v, want %v (usages %s)", got, want, k.Usages())
	}
	dec := k.Usages().Has(keystore.UsageDecrypt)
	if got, want := k.Decrypter(ctx) != nil, dec && !isEC; got != want {
		t.Errorf("Decrypter present = %v, want %v (%s, usages %s)", got, want, alg, k.Usages())
	}
	if got, want := k.KeyAgreer(ctx) != nil, dec && isEC; got != want {
		t.Errorf("KeyAgreer present = %v, want %v (%s, usages %s)", got, want, alg, k.Usages())
	}
}

type check struct {
	name string
	run  func(ctx context.Context, k keystore.Key) error
}

var testMessage = []byte("signsvr keystore conformance: the quick brown fox jumps over the lazy dog")

// checksFor lists the operations k must support, by algorithm and usage.
func checksFor(k keystore.Key) []check {
	alg := keystore.Algorithm(k.Public())
	var cs []check
	if k.Usages().Has(keystore.UsageSign) {
		switch {
		case strings.HasPrefix(alg, "RSA-"):
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
				h := h
				cs = append(cs,
					check{"Sign/PKCS1v15-" + hashName(h), func(ctx context.Context, k keystore.Key) error { return signRSA(ctx, k, h, nil) }},
					check{"Sign/PSS-" + hashName(h), func(ctx context.Context, k keystore.Key) error {
						return signRSA(ctx, k, h, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
					}})
			}
			cs = append(cs, check{"Sign/PSS-SHA256-SaltAuto", func(ctx context.Context, k keystore.Key) error {
				return signRSA(ctx, k, crypto.SHA256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256})
			}})
		case strings.HasPrefix(alg, "ECDSA-"):
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384} {
				h := h
				cs = append(cs, check{"Sign/ECDSA-" + hashName(h), func(ctx context.Context, k keystore.Key) error { return signECDSA(ctx, k, h) }})
			}
		case alg == "SM2":
			cs = append(cs,
				check{"Sign/SM2-DefaultUID", func(ctx context.Context, k keystore.Key) error { return signSM2(ctx, k, nil) }},
				check{"Sign/SM2-CustomUID", func(ctx context.Context, k keystore.Key) error { return signSM2(ctx, k, []byte("alice@signsvr.dev")) }},
				check{"Sign/SM2-MessageSigner", signSM2Message},
				check{"Sign/SM2-Prehashed", signSM2Prehashed})
		}
	}
	if k.Usages().Has(keystore.UsageDecrypt) {
		switch {
		case strings.HasPrefix(alg, "RSA-"):
			cs = append(cs,
				check{"Decrypt/PKCS1v15", decryptRSAv15},
				check{"Decrypt/PKCS1v15-ImplicitRejection", decryptRSAImplicitRejection},
				check{"Decrypt/OAEP-SHA256", decryptRSAOAEP})
		case strings.HasPrefix(alg, "ECDSA-"):
			cs = append(cs, check{"KeyAgree/ECDH", agreeECDH})
		case alg == "SM2":
			cs = append(cs, check{"Decrypt/SM2-ASN1", decryptSM2})
		}
	}
	return cs
}

func hashName(h crypto.Hash) string { return strings.ReplaceAll(h.String(), "-", "") }

func digest(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

func signRSA(ctx context.Context, k keystore.Key, h crypto.Hash, pss *rsa.PSSOptions) error {
	pub := k.Public().(*rsa.PublicKey)
	d := digest(h, testMessage)
	var opts crypto.SignerOpts = h
	if pss != nil {
		opts = pss
	}
	sig, err := k.Signer(ctx).Sign(rand.Reader, d, opts)
	if err != nil {
		return fmt.Errorf("Sign: %w", err)
	}
	if len(sig) != pub.Size() {
		return fmt.Errorf("signature is %d bytes, want %d", len(sig), pub.Size())
	}
	if pss != nil {
		vopts := &rsa.PSSOptions{SaltLength: pss.SaltLength, Hash: h}
		if pss.SaltLength == rsa.PSSSaltLengthEqualsHash {
			// Check the salt length strictly, as CMS states it in the parameters.
			vopts.SaltLength = h.Size()
		}
		if err := rsa.VerifyPSS(pub, h, d, sig, vopts); err != nil {
			return fmt.Errorf("PSS signature does not verify: %w", err)
		}
		return nil
	}
	if err := rsa.VerifyPKCS1v15(pub, h, d, sig); err != nil {
		return fmt.Errorf("PKCS#1 v1.5 signature does not verify: %w", err)
	}
	return nil
}

func signECDSA(ctx context.Context, k keystore.Key, h crypto.Hash) error {
	pub := k.Public().(*ecdsa.PublicKey)
	d := digest(h, testMessage)
	sig, err := k.Signer(ctx).Sign(rand.Reader, d, h)
	if err != nil {
		return fmt.Errorf("Sign: %w", err)
	}
	if !ecdsa.VerifyASN1(pub, d, sig) {
		return fmt.Errorf("ECDSA signature (%d bytes) does not verify as DER", len(sig))
	}
	return nil
}

func signSM2(ctx context.Context, k keystore.Key, uid []byte) error {
	pub := k.Public().(*ecdsa.PublicKey)
	sig, err := k.Signer(ctx).Sign(rand.Reader, testMessage, sm2.NewSM2SignerOption(true, uid))
	if err != nil {
		return fmt.Errorf("Sign: %w", err)
	}
	if !sm2.VerifyASN1WithSM2(pub, uid, testMessage, sig) {
		return errors.New("SM2 signature over the message (with Z) does not verify")
	}
	if uid != nil && sm2.VerifyASN1WithSM2(pub, nil, testMessage, sig) {
		return errors.New("SM2 signature with a custom user ID verifies with the default one: the ID was ignored")
	}
	return nil
}

func signSM2Message(ctx context.Context, k keystore.Key) error {
	pub := k.Public().(*ecdsa.PublicKey)
	ms, ok := k.Signer(ctx).(crypto.MessageSigner)
	if !ok {
		return nil // optional
	}
	sig, err := ms.SignMessage(rand.Reader, testMessage, sm2.DefaultSM2SignerOpts)
	if err != nil {
		return fmt.Errorf("SignMessage: %w", err)
	}
	if !sm2.VerifyASN1WithSM2(pub, nil, testMessage, sig) {
		return errors.New("SM2 SignMessage signature does not verify")
	}
	return nil
}

func signSM2Prehashed(ctx context.Context, k keystore.Key) error {
	pub := k.Public().(*ecdsa.PublicKey)
	e, err := sm2.CalculateSM2Hash(pub, testMessage, nil)
	if err != nil {
		return err
	}
	sig, err := k.Signer(ctx).Sign(rand.Reader, e, sm2.NewSM2SignerOption(false, nil))
	if err != nil {
		return fmt.Errorf("Sign: %w", err)
	}
	if !sm2.VerifyASN1(pub, e, sig) {
		return errors.New("SM2 signature over a precomputed digest does not verify")
	}
	return nil
}

func decryptRSAv15(ctx context.Context, k keystore.Key) error {
	pub := k.Public().(*rsa.PublicKey)
	msg := []byte("a 32-byte content-encryption key")
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	if err != nil {
		return err
	}
	for _, opts := range []crypto.DecrypterOpts{nil, &rsa.PKCS1v15DecryptOptions{}} {
		pt, err := k.Decrypter(ctx).Decrypt(rand.Reader, ct, opts)
		if err != nil {
			return fmt.Errorf("Decrypt(opts %#v): %w", opts, err)
		}
		if !bytes.Equal(pt, msg) {
			return fmt.Errorf("Decrypt(opts %#v) gave the wrong plaintext", opts)
		}
	}
	return nil
}

func decryptRSAImplicitRejection(ctx context.Context, k keystore.Key) error {
	pub := k.Public().(*rsa.PublicKey)
	dec := k.Decrypter(ctx)
	key := make([]byte, 32)
	rand.Read(key)
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, key)
	if err != nil {
		return err
	}
	opts := &rsa.PKCS1v15DecryptOptions{SessionKeyLen: len(key)}
	pt, err := dec.Decrypt(rand.Reader, ct, opts)
	if err != nil {
		return fmt.Errorf("good ciphertext: %w", err)
	}
	if !bytes.Equal(pt, key) {
		return errors.New("good ciphertext gave the wrong session key")
	}
	// A ciphertext that is not PKCS#1 v1.5 padding: a random value below the modulus.
	bad := make([]byte, pub.Size())
	rand.Read(bad)
	bad[0] = 0
	// Another whose padding is right but whose message has the wrong length.
	short, err := rsa.EncryptPKCS1v15(rand.Reader, pub, key[:16])
	if err != nil {
		return err
	}
	for name, c := range map[string][]byte{"bad padding": bad, "wrong length": short} {
		got1, err := dec.Decrypt(rand.Reader, c, opts)
		if err != nil {
			return fmt.Errorf("%s: implicit rejection must not fail, got %v", name, err)
		}
		got2, err := dec.Decrypt(rand.Reader, c, opts)
		if err != nil {
			return fmt.Errorf("%s: implicit rejection must not fail, got %v", name, err)
		}
		if len(got1) != len(key) || len(got2) != len(key) {
			return fmt.Errorf("%s: rejected key is %d bytes, want %d", name, len(got1), len(key))
		}
		if bytes.Equal(got1, key[:len(got1)]) || bytes.Equal(got1, make([]byte, len(key))) {
			return fmt.Errorf("%s: rejected key is not random", name)
		}
	}
	return nil
}

func decryptRSAOAEP(ctx context.Context, k keystore.Key) error {
	pub := k.Public().(*rsa.PublicKey)
	msg := []byte("an OAEP-wrapped content key.....")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
	if err != nil {
		return err
	}
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256}
	pt, err := k.Decrypter(ctx).Decrypt(rand.Reader, ct, opts)
	if err != nil {
		return fmt.Errorf("Decrypt: %w", err)
	}
	if !bytes.Equal(pt, msg) {
		return errors.New("OAEP decryption gave the wrong plaintext")
	}
	bad := append([]byte(nil), ct...)
	bad[len(bad)-1] ^= 1
	if pt, err := k.Decrypter(ctx).Decrypt(rand.Reader, bad, opts); err == nil && bytes.Equal(pt, msg) {
		return errors.New("a tampered OAEP ciphertext decrypted to the message")
	} else if err == nil {
		return errors.New("a tampered OAEP ciphertext decrypted without error")
	}
	return nil
}

func decryptSM2(ctx context.Context, k keystore.Key) error {
	pub := k.Public().(*ecdsa.PublicKey)
	msg := []byte("an SM4 key,16 b")
	ct, err := sm2.EncryptASN1(rand.Reader, pub, msg)
	if err != nil {
		return err
	}
	pt, err := k.Decrypter(ctx).Decrypt(rand.Reader, ct, sm2.ASN1DecrypterOpts)
	if err != nil {
		return fmt.Errorf("Decrypt: %w", err)
	}
	if !bytes.Equal(pt, msg) {
		return errors.New("SM2 decryption gave the wrong plaintext")
	}
	bad := append([]byte(nil), ct...)
	bad[len(bad)-1] ^= 1
	if _, err := k.Decrypter(ctx).Decrypt(rand.Reader, bad, sm2.ASN1DecrypterOpts); err == nil {
		return errors.New("a tampered SM2 ciphertext decrypted without error")
	}
	return nil
}

func agreeECDH(ctx context.Context, k keystore.Key) error {
	pub := k.Public().(*ecdsa.PublicKey)
	curve := algorithm.Of(pub).ECDH()
	if curve == nil {
		return fmt.Errorf("unexpected curve %s", pub.Curve.Params().Name)
	}
	staticPub, err := pub.ECDH()
	if err != nil {
		return err
	}
	eph, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	want, err := eph.ECDH(staticPub)
	if err != nil {
		return err
	}
	got, err := k.KeyAgreer(ctx).ECDH(eph.PublicKey())
	if err != nil {
		return fmt.Errorf("ECDH: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("ECDH shared secret differs from the one computed with the public key")
	}
	return nil
}

func testConcurrent(t *testing.T, keys []keystore.Key, opts Options) {
	type op struct {
		key keystore.Key
		c   check
	}
	var ops []op
	for _, k := range keys {
		for _, c := range checksFor(k) {
			ops = append(ops, op{k, c})
		}
	}
	if len(ops) == 0 {
		t.Fatal("no operations to run")
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, opts.Goroutines)
	for g := 0; g < opts.Goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < opts.OpsPerGoroutine; i++ {
				o := ops[(g*7+i)%len(ops)]
				if err := o.c.run(ctx, o.key); err != nil {
					errs <- fmt.Errorf("goroutine %d, %s %s: %w", g, o.key.Name(), o.c.name, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
