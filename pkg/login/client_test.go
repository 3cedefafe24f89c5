package login

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// TestSignChallengeEachKey: SignChallenge makes the signature its doc names for
// each key type, checked here with the standard library and gmsm.
func TestSignChallengeEachKey(t *testing.T) {
	msg := []byte("signsvr-login-v1.challenge")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sm2Key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s256, s384 := sha256.Sum256(msg), sha512.Sum384(msg)
	ecdsaCase := func(c elliptic.Curve, digest []byte) (crypto.Signer, func([]byte) bool) {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k, func(sig []byte) bool { return ecdsa.VerifyASN1(&k.PublicKey, digest, sig) }
	}
	p256, v256 := ecdsaCase(elliptic.P256(), s256[:])
	p384, v384 := ecdsaCase(elliptic.P384(), s384[:])
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		verify func(sig []byte) bool
	}{
		{"rsa", rsaKey, func(sig []byte) bool {
			return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, s256[:], sig) == nil
		}},
		{"p256", p256, v256},
		{"p384", p384, v384},
		{"sm2", sm2Key, func(sig []byte) bool { return sm2.VerifyASN1WithSM2(&sm2Key.PublicKey, nil, msg, sig) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := SignChallenge(tc.key, msg)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.verify(sig) {
				t.Fatalf("the %s signature does not verify", tc.name)
			}
		})
	}
	if _, err := SignChallenge(unknownSigner{}, msg); err == nil {
		t.Error("a key of no supported type was accepted")
	}
	// P-521 is refused here as the server refuses it everywhere (the algorithm table).
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignChallenge(p521, msg); !errors.Is(err, algorithm.ErrUnsupported) {
		t.Errorf("a P-521 key: %v, want algorithm.ErrUnsupported", err)
	}
}

type unknownSigner struct{}

func (unknownSigner) Public() crypto.PublicKey { return "not a key" }
func (unknownSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, nil
}

func TestParseSignerPEM(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sm2Key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	for _, tc := range []struct {
		name string
		pem  []byte
		pub  crypto.PublicKey
		err  string
	}{
		{"pkcs8 rsa", block("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(rsaKey))), rsaKey.Public(), ""},
		{"pkcs1 rsa", block("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey.Public(), ""},
		{"pkcs8 ecdsa", block("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey))), ecKey.Public(), ""},
		{"sec1 ecdsa", block("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ecKey))), ecKey.Public(), ""},
		{"pkcs8 sm2", block("PRIVATE KEY", must(smx509.MarshalPKCS8PrivateKey(sm2Key))), sm2Key.Public(), ""},
		{"sec1 sm2", block("EC PRIVATE KEY", must(smx509.MarshalSM2PrivateKey(sm2Key))), sm2Key.Public(), ""},
		{"no PEM", []byte("not PEM at all"), nil, "no PEM block"},
		{"encrypted", block("ENCRYPTED PRIVATE KEY", []byte{0x30, 0}), nil, `unsupported PEM block "ENCRYPTED PRIVATE KEY"`},
		{"garbage", block("PRIVATE KEY", []byte{0x30, 0x01}), nil, "asn1"},
		{"not a signing key", block("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(x25519))), nil, "not a signing key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSignerPEM(tc.pem)
			if tc.err != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.err)) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if eq, ok := s.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tc.pub) {
				t.Fatalf("the parsed key is not the key written")
			}
		})
	}
}
