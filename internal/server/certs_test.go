package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"
)

// bigCert makes a self-signed certificate of about size bytes (a large private
// extension), distinct for each serial.
func bigCert(t *testing.T, key *ecdsa.PrivateKey, serial int64, size int) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "big"},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1},
			Value: make([]byte, size)}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// The attack: many distinct large certificates. The cache stays within its byte
// bound whatever is sent, and a certificate over the size bound is refused unparsed.
func TestCertCacheByteBound(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := certCache{maxBytes: 1 << 20}
	for i := int64(1); i <= 150; i++ {
		der := bigCert(t, key, i, 60<<10)
		if _, err := c.parse(der); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			cert, _ := c.parse(der)
			c.namesOf(cert)
		}
		if _, b := c.size(); b > 1<<20 {
			t.Fatalf("after %d certificates the cache holds %d bytes, bound %d", i, b, 1<<20)
		}
	}
	if n, _ := c.size(); n == 0 {
		t.Error("the cache keeps nothing")
	}

	over := bigCert(t, key, 999, DefaultMaxCertificateBytes)
	var tl *errCertTooLarge
	if _, err := c.parse(over); !errors.As(err, &tl) {
		t.Fatalf("certificate of %d bytes: err %v, want errCertTooLarge", len(over), err)
	}
	var d certCache
	if _, b := d.limits(); b != DefaultMaxCertificateBytes {
		t.Errorf("default certificate bound %d", b)
	}
}
