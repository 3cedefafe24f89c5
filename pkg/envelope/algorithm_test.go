package envelope

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// ECDSA P-521 is outside the algorithm table: enveloping to a P-521 recipient is
// refused as unsupported, as every other path refuses P-521 keys.
func TestP521RecipientRefused(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(521), Subject: pkix.Name{CommonName: "p521 recipient"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageKeyAgreement,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Envelope([]byte("content"), []*smx509.Certificate{cert}, nil); !errors.Is(err, cms.ErrUnsupported) {
		t.Fatalf("Envelope to P-521: %v, want ErrUnsupported", err)
	}
}
