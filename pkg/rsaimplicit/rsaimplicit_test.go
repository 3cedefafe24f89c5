package rsaimplicit

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDecrypt(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("a content key or a short secret")
	//lint:ignore SA1019 PKCS#1 v1.5 is what is being tested.
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(priv, ct)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	lens := map[int]bool{}
	for i := range 50 {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x55
		a, err := Decrypt(priv, bad)
		if err != nil {
			t.Fatalf("a bad padding gave an error: %v", err)
		}
		b, _ := Decrypt(priv, bad)
		if !bytes.Equal(a, b) {
			t.Fatal("the synthetic message is not deterministic")
		}
		if bytes.Equal(a, msg) || len(a) > priv.Size()-11 {
			t.Fatalf("synthetic message of %d bytes", len(a))
		}
		if !bytes.Equal(a, Synthetic(priv, bad)) {
			t.Fatal("Decrypt did not answer with Synthetic")
		}
		lens[len(a)] = true
	}
	if len(lens) < 10 {
		t.Fatalf("synthetic lengths hardly vary: %v", lens)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	bad := bytes.Clone(ct)
	bad[0] ^= 1
	if bytes.Equal(Synthetic(priv, bad), Synthetic(other, bad)) {
		t.Fatal("the synthetic message does not depend on the key")
	}
	if _, err := Decrypt(priv, ct[1:]); !errors.Is(err, ErrSize) {
		t.Fatalf("short ciphertext: %v", err)
	}
}

// TestOpenSSLVectors replays what OpenSSL 4.0 (through pyca/cryptography, an
// implementation we did not write) answers for good and bad ciphertexts of two
// throwaway keys: the synthetic messages must be the same bytes (testdata/make-vectors.py).
func TestOpenSSLVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "openssl-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ Key, Ciphertext, Plaintext string }
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d vectors", len(cases))
	}
	for i, c := range cases {
		blk, _ := pem.Decode([]byte(c.Key))
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := hex.DecodeString(c.Ciphertext)
		want, _ := hex.DecodeString(c.Plaintext)
		got, err := Decrypt(k.(*rsa.PrivateKey), ct)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("vector %d: %x (%v), OpenSSL answers %x", i, got, err, want)
		}
	}
}
