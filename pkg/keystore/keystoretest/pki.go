package keystoretest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
)

// CA is a throwaway certificate authority for tests: it issues leaf certificates for
// public keys whose private half lives anywhere (a file, an HSM).
type CA struct {
	Cert *smx509.Certificate
	Key  crypto.Signer
	// Now is the time certificates start at; NewCA sets it to time.Now().
	Now    time.Time
	serial int64
}

// NewCA makes a self-signed root CA with a fresh key of the given kind: "RSA-2048",
// "ECDSA-P256", "ECDSA-P384" or "SM2".
func NewCA(t testing.TB, kind string) *CA {
	t.Helper()
	key := GenerateKey(t, kind)
	ca := &CA{Key: key, Now: time.Now().Add(-time.Hour)}
	tmpl := &smx509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "keystoretest root " + kind, Organization: []string{"signsvr tests"}},
		NotBefore:             ca.Now,
		NotAfter:              ca.Now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("keystoretest: create CA certificate: %v", err)
	}
	ca.Cert, err = smx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial = 1
	return ca
}

// Issue makes a leaf certificate for pub, valid for validFor from ca.Now (a year when
// zero), with key usages fitting signing and/or encryption.
func (ca *CA) Issue(t testing.TB, cn string, pub crypto.PublicKey, sign, encrypt bool, validFor time.Duration) *smx509.Certificate {
	t.Helper()
	if validFor == 0 {
		validFor = 365 * 24 * time.Hour
	}
	ca.serial++
	var ku smx509.KeyUsage
	if sign {
		ku |= smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment
	}
	if encrypt {
		switch p := pub.(type) {
		case *rsa.PublicKey:
			ku |= smx509.KeyUsageKeyEncipherment
		case *ecdsa.PublicKey:
			if algorithm.Of(p) == algorithm.SM2 {
				ku |= smx509.KeyUsageKeyEncipherment | smx509.KeyUsageDataEncipherment
			} else {
				ku |= smx509.KeyUsageKeyAgreement
			}
		}
	}
	tmpl := &smx509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"signsvr tests"}},
		NotBefore:    ca.Now,
		NotAfter:     ca.Now.Add(validFor),
		KeyUsage:     ku,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatalf("keystoretest: issue certificate for %s: %v", cn, err)
	}
	c, err := smx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// GenerateKey makes a fresh private key: "RSA-2048", "RSA-3072", "ECDSA-P256",
// "ECDSA-P384" or "SM2".
func GenerateKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch f := algorithm.ByKeyName(kind); {
	case kind == "RSA-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case kind == "RSA-3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case f.IsECDSA():
		k, err = ecdsa.GenerateKey(f.Curve(), rand.Reader)
	case f == algorithm.SM2:
		k, err = sm2.GenerateKey(rand.Reader)
	default:
		t.Fatalf("keystoretest: unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatalf("keystoretest: generate %s key: %v", kind, err)
	}
	return k
}
