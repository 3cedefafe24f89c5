package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"testing"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// ECDSA P-521 is outside the algorithm table: a login answer signed with it is refused
// although the signature itself is good, and it cannot sign tokens.
func TestP521Refused(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("signsvr-login-v1.challenge")
	d := sha512.Sum512(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyRaw(k.Public(), SchemeAuto, msg, sig); !errors.Is(err, algorithm.ErrUnsupported) {
		t.Errorf("P-521 login answer: %v, want ErrUnsupported", err)
	}
	if _, err := newTokenSigner(k, "kid"); !errors.Is(err, algorithm.ErrUnsupported) {
		t.Errorf("P-521 token signer: %v, want ErrUnsupported", err)
	}
}
