package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/identity"
)

// TestSerialHex pins the encoding: audit records already written carry serials in this
// form, and new records must compare equal to them.
func TestSerialHex(t *testing.T) {
	long, _ := new(big.Int).SetString("00a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3", 16)
	for _, tc := range []struct {
		n    *big.Int
		want string
	}{
		{nil, ""},
		{big.NewInt(0), "0"},
		{big.NewInt(1), "1"},
		{big.NewInt(255), "ff"},
		{big.NewInt(0x1f2e), "1f2e"},
		{big.NewInt(-255), "-ff"},
		{long, "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3"},
	} {
		if got := identity.SerialHex(tc.n); got != tc.want {
			t.Errorf("SerialHex(%v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestOf(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0xc0ffee),
		Subject:      pkix.Name{CommonName: "acme-fep", Organization: []string{"ACME, Inc."}},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<32, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	xc, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := smx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	want := identity.Holder{
		Subject:           `CN=acme-fep,O=ACME\, Inc.`,
		Issuer:            `CN=acme-fep,O=ACME\, Inc.`,
		Serial:            "c0ffee",
		FingerprintSHA256: hex.EncodeToString(sum[:]),
	}
	if got := identity.Of(sc); got != want {
		t.Errorf("Of = %+v, want %+v", got, want)
	}
	if got := identity.OfX509(xc); got != want {
		t.Errorf("OfX509 = %+v, want %+v", got, want)
	}
}
