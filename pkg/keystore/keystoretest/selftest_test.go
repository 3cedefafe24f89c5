package keystoretest

//lint:file-ignore SA1019 these tests exercise RSA PKCS#1 v1.5 key transport, which CMS peers write and the server reads with implicit rejection.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"io"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
)

// brokenKey is a backend that lies in one way; every check must catch the lie.
type brokenKey struct {
	priv   crypto.Signer
	usages keystore.Usage
	chain  []*smx509.Certificate
	fault  string
}

func (k *brokenKey) Name() string                         { return "broken" }
func (k *brokenKey) Public() crypto.PublicKey             { return k.priv.Public() }
func (k *brokenKey) Chain() []*smx509.Certificate         { return k.chain }
func (k *brokenKey) Usages() keystore.Usage               { return k.usages }
func (k *brokenKey) Signer(context.Context) crypto.Signer { return brokenSigner{k} }
func (k *brokenKey) Decrypter(context.Context) crypto.Decrypter {
	return brokenSigner{k}
}
func (k *brokenKey) KeyAgreer(context.Context) keystore.KeyAgreer { return nil }

type brokenSigner struct{ k *brokenKey }

func (b brokenSigner) Public() crypto.PublicKey { return b.k.priv.Public() }
func (b brokenSigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	switch b.k.fault {
	case "flip":
		sig, err := b.k.priv.Sign(r, d, opts)
		if err == nil {
			sig[len(sig)/2] ^= 1
		}
		return sig, err
	case "ignore-uid":
		if _, ok := opts.(*sm2.SM2SignerOption); ok {
			opts = sm2.DefaultSM2SignerOpts
		}
	case "raw-ecdsa":
		pk := b.k.priv.(*ecdsa.PrivateKey)
		rr, s, err := ecdsa.Sign(r, pk, d)
		if err != nil {
			return nil, err
		}
		return append(rr.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...), nil
	case "pss-as-v15":
		if p, ok := opts.(*rsa.PSSOptions); ok {
			opts = p.Hash
		}
	}
	return b.k.priv.Sign(r, d, opts)
}

func (b brokenSigner) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	switch b.k.fault {
	case "oracle":
		// Reports padding errors even with SessionKeyLen: no implicit rejection.
		if _, ok := opts.(*rsa.PKCS1v15DecryptOptions); ok {
			return rsa.DecryptPKCS1v15(r, b.k.priv.(*rsa.PrivateKey), msg)
		}
	case "flip":
		pt, err := b.k.priv.(crypto.Decrypter).Decrypt(r, msg, opts)
		if err == nil && len(pt) > 0 {
			pt[0] ^= 1
		}
		return pt, err
	}
	return b.k.priv.(crypto.Decrypter).Decrypt(r, msg, opts)
}

func TestChecksCatchBrokenBackends(t *testing.T) {
	ca := NewCA(t, "ECDSA-P256")
	keys := map[string]crypto.Signer{"RSA-2048": GenerateKey(t, "RSA-2048"), "ECDSA-P256": GenerateKey(t, "ECDSA-P256"), "SM2": GenerateKey(t, "SM2")}
	tests := []struct {
		kind, fault, check string
	}{
		{"RSA-2048", "flip", "Sign/PKCS1v15-SHA256"},
		{"RSA-2048", "pss-as-v15", "Sign/PSS-SHA256"},
		{"RSA-2048", "flip", "Decrypt/PKCS1v15"},
		{"RSA-2048", "flip", "Decrypt/OAEP-SHA256"},
		{"RSA-2048", "oracle", "Decrypt/PKCS1v15-ImplicitRejection"},
		{"ECDSA-P256", "flip", "Sign/ECDSA-SHA256"},
		{"ECDSA-P256", "raw-ecdsa", "Sign/ECDSA-SHA256"},
		{"SM2", "flip", "Sign/SM2-DefaultUID"},
		{"SM2", "ignore-uid", "Sign/SM2-CustomUID"},
		{"SM2", "flip", "Decrypt/SM2-ASN1"},
	}
	for _, tc := range tests {
		t.Run(tc.kind+"/"+tc.fault+"/"+tc.check, func(t *testing.T) {
			priv := keys[tc.kind]
			k := &brokenKey{priv: priv, usages: keystore.UsageSign | keystore.UsageDecrypt, fault: tc.fault,
				chain: []*smx509.Certificate{ca.Issue(t, "x", priv.Public(), true, true, 0)}}
			for _, c := range checksFor(k) {
				if c.name == tc.check {
					if err := c.run(t.Context(), k); err == nil {
						t.Fatalf("check %s passed a backend with fault %q", c.name, tc.fault)
					} else {
						t.Logf("caught: %v", err)
					}
					return
				}
			}
			t.Fatalf("no check named %s", tc.check)
		})
	}
	// And a healthy key passes every check.
	for kind, priv := range keys {
		k := &brokenKey{priv: priv, usages: keystore.UsageSign | keystore.UsageDecrypt,
			chain: []*smx509.Certificate{ca.Issue(t, "x", priv.Public(), true, true, 0)}}
		for _, c := range checksFor(k) {
			if c.name == "KeyAgree/ECDH" {
				continue
			}
			if err := c.run(t.Context(), k); err != nil {
				t.Errorf("%s %s: healthy key fails: %v", kind, c.name, err)
			}
		}
	}
}
