package login

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
)

func TestTokenRefusals(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	smKey, _ := sm2.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	claims := &Claims{Issuer: "signsvr", Subject: "CN=x", Audience: "portal", IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(5 * time.Minute).Unix()}
	for _, tc := range []struct {
		alg    string
		signer *tokenSigner
	}{
		{AlgRS256, mustSigner(t, rsaKey)},
		{AlgES256, mustSigner(t, ecKey)},
		{AlgES384, mustSigner(t, ec384)},
		{AlgSM2SM3, mustSigner(t, smKey)},
	} {
		if tc.signer.alg != tc.alg {
			t.Fatalf("alg %s, want %s", tc.signer.alg, tc.alg)
		}
		tok, err := tc.signer.sign(rand.Reader, claims)
		if err != nil {
			t.Fatal(err)
		}
		opts := VerifyOptions{Now: now, Audience: "portal", Issuer: "signsvr"}
		if _, err := VerifyToken(tok, tc.signer.pub, opts); err != nil {
			t.Fatalf("%s: %v", tc.alg, err)
		}
		parts := strings.Split(tok, ".")
		forged, _ := json.Marshal(Claims{Issuer: "signsvr", Subject: "CN=admin", Audience: "portal", Expiry: now.Add(time.Hour).Unix()})
		noneHdr, _ := json.Marshal(tokenHeader{Alg: "none"})
		critHdr, _ := json.Marshal(tokenHeader{Alg: tc.alg, Crit: []string{"x"}})
		bad := map[string]struct {
			tok  string
			pub  any
			opts VerifyOptions
		}{
			"tampered claims":  {parts[0] + "." + b64.EncodeToString(forged) + "." + parts[2], tc.signer.pub, opts},
			"alg none":         {b64.EncodeToString(noneHdr) + "." + parts[1] + ".", tc.signer.pub, opts},
			"crit":             {b64.EncodeToString(critHdr) + "." + parts[1] + "." + parts[2], tc.signer.pub, opts},
			"other key":        {tok, otherPub(tc.alg, rsaKey, ecKey, ec384, smKey), opts},
			"expired":          {tok, tc.signer.pub, VerifyOptions{Now: now.Add(10 * time.Minute)}},
			"not yet valid":    {tok, tc.signer.pub, VerifyOptions{Now: now.Add(-10 * time.Minute)}},
			"other audience":   {tok, tc.signer.pub, VerifyOptions{Now: now, Audience: "other"}},
			"other issuer":     {tok, tc.signer.pub, VerifyOptions{Now: now, Issuer: "other"}},
			"no time":          {tok, tc.signer.pub, VerifyOptions{}},
			"two parts":        {parts[0] + "." + parts[1], tc.signer.pub, opts},
			"truncated sig":    {tok[:len(tok)-4], tc.signer.pub, opts},
			"padding in parts": {tok + "=", tc.signer.pub, opts},
		}
		for name, b := range bad {
			if _, err := VerifyToken(b.tok, b.pub, b.opts); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("%s %s: %v", tc.alg, name, err)
			}
		}
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := newTokenSigner(small, ""); err == nil {
		t.Fatal("1024-bit RSA token key accepted")
	}
}

// otherPub returns a key of another algorithm, or of the same one but another key.
func otherPub(alg string, r *rsa.PrivateKey, e, e384 *ecdsa.PrivateKey, s *sm2.PrivateKey) any {
	switch alg {
	case AlgRS256:
		return e.Public()
	case AlgES256:
		return s.Public() // same curve size: SM2 must not pass as ES256
	case AlgES384:
		return r.Public()
	}
	return e.Public() // SM2SM3 token checked with a P-256 key
}

func mustSigner(t *testing.T, k crypto.Signer) *tokenSigner {
	t.Helper()
	s, err := newTokenSigner(k, "k")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChallengeRotation(t *testing.T) {
	oldKey := []byte("old-key-old-key-old-key-old-key-old-key!")
	now := time.Unix(1_800_000_000, 0)
	c := encodeChallenge(oldKey, "aud", now, now.Add(time.Minute), make([]byte, 16))
	if _, err := decodeChallenge([][]byte{challengeKey, oldKey}, "aud", c); err != nil {
		t.Fatalf("challenge under the previous key: %v", err)
	}
	if _, err := decodeChallenge([][]byte{challengeKey}, "aud", c); !errors.Is(err, errChallengeMAC) {
		t.Fatalf("challenge under a retired key: %v", err)
	}
}

func FuzzDecodeChallenge(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add(encodeChallenge(challengeKey, "aud", now, now.Add(time.Minute), make([]byte, 16)))
	f.Add(ChallengePrefix)
	f.Add(ChallengePrefix + "AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		ch, err := decodeChallenge([][]byte{challengeKey}, "aud", s)
		if err == nil && (ch == nil || len(ch.nonce) != nonceLen) {
			t.Fatal("accepted without a nonce")
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	smKey, _ := sm2.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	c := &Claims{Subject: "CN=x", Expiry: now.Add(time.Minute).Unix()}
	for _, k := range []crypto.Signer{ecKey, smKey} {
		s, _ := newTokenSigner(k, "")
		tok, _ := s.sign(rand.Reader, c)
		f.Add(tok)
	}
	f.Add("e30.e30.")
	pubs := []any{ecKey.Public(), smKey.Public()}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, p := range pubs {
			VerifyToken(tok, p, VerifyOptions{Now: now})
		}
	})
}
