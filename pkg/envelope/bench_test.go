package envelope

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/emmansun/gmsm/sm2"
)

// Envelope and Open at 1 KiB for RSA-2048 (OAEP, AES-256-GCM), P-256 (ECDH,
// AES-256-GCM) and SM2 (SM4-CBC, GM/T 0010), each beside the bare key-management
// primitive it is built on, in the same run:
//
//	go test -run '^$' -bench . -benchmem ./pkg/envelope
func BenchmarkEnvelope(b *testing.B) {
	f := getFixture(b)
	content := testContent(1024)
	for _, p := range []*party{f.rsa, f.ec256, f.sm2a} {
		b.Run(string(p.alg), func(b *testing.B) {
			rs := certs(p)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Envelope(content, rs, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	f := getFixture(b)
	content := testContent(1024)
	for _, p := range []*party{f.rsa, f.ec256, f.sm2a} {
		b.Run(string(p.alg), func(b *testing.B) {
			der, err := Envelope(content, certs(p), nil)
			if err != nil {
				b.Fatal(err)
			}
			key := p.opener(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Open(der, key, p.cert, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPrimitive is the bare key management for one 32-byte (SM2: 16-byte) content
// key: what Envelope and Open cannot avoid.
func BenchmarkPrimitive(b *testing.B) {
	f := getFixture(b)
	key32 := make([]byte, 32)
	key16 := key32[:16]
	rsaPub := f.rsa.cert.PublicKey.(*rsa.PublicKey)
	b.Run("rsa-2048/encrypt-oaep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, key32, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rsa-2048/decrypt-oaep", func(b *testing.B) {
		ek, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, key32, nil)
		priv := f.rsa.key.(*rsa.PrivateKey)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := priv.Decrypt(rand.Reader, ek, &rsa.OAEPOptions{Hash: 5 /* SHA-256 */}); err != nil {
				b.Fatal(err)
			}
		}
	})
	ecPub, _ := f.ec256.cert.PublicKey.(*ecdsa.PublicKey).ECDH()
	b.Run("ecdsa-p256/ecdh-wrap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			eph, _ := ecPub.Curve().GenerateKey(rand.Reader)
			z, err := eph.ECDH(ecPub)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := aesKeyWrap(z[:32], key32); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ecdsa-p256/ecdh-unwrap", func(b *testing.B) {
		eph, _ := ecPub.Curve().GenerateKey(rand.Reader)
		z, _ := eph.ECDH(ecPub)
		wrapped, _ := aesKeyWrap(z[:32], key32)
		priv := f.ec256.opener(b).(KeyAgreer)
		b.ReportAllocs()
		for b.Loop() {
			z, err := priv.ECDH(eph.PublicKey())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := aesKeyUnwrap(z[:32], wrapped); err != nil {
				b.Fatal(err)
			}
		}
	})
	sm2Pub := f.sm2a.cert.PublicKey.(*ecdsa.PublicKey)
	b.Run("sm2/encrypt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sm2.EncryptASN1(rand.Reader, sm2Pub, key16); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sm2/decrypt", func(b *testing.B) {
		ek, _ := sm2.EncryptASN1(rand.Reader, sm2Pub, key16)
		priv := f.sm2a.key.(*sm2.PrivateKey)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := priv.Decrypt(rand.Reader, ek, sm2.ASN1DecrypterOpts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpenPassword is what one password envelope costs to open: the default
// count Envelope writes and the most Open spends by default (a hostile sender's
// envelope costs no more than that).
func BenchmarkOpenPassword(b *testing.B) {
	content := testContent(1024)
	pw := Password("benchmark password")
	for _, it := range []int{DefaultPBKDF2Iterations, DefaultMaxPBKDF2Iterations} {
		der, err := Envelope(content, nil, &Options{Cipher: AES256GCM, Passwords: []Password{pw}, PBKDF2Iterations: it})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("iterations=%d", it), func(b *testing.B) {
			for b.Loop() {
				if _, err := Open(der, pw, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenKEK opens a KEK envelope (AES key wrap in process).
func BenchmarkOpenKEK(b *testing.B) {
	content := testContent(1024)
	r := KEKRecipient{ID: []byte("kek"), Key: AESKey(bytes.Repeat([]byte{1}, 32))}
	der, err := Envelope(content, nil, &Options{Cipher: AES256GCM, KEKRecipients: []KEKRecipient{r}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Open(der, r, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
