package testca

import (
	"crypto"
	"testing"

	"github.com/emmansun/gmsm/smx509"
)

func TestNew(t *testing.T) {
	for _, algo := range Algos {
		t.Run(string(algo), func(t *testing.T) {
			p := New(t, Options{Algo: algo, CRLURL: "http://127.0.0.1:1/inter.crl", OCSPURL: "http://127.0.0.1:2"})
			if err := p.Intermediate.Cert.CheckSignatureFrom(p.Root.Cert); err != nil {
				t.Fatalf("intermediate signature: %v", err)
			}
			for _, c := range []*Cert{p.Good, p.Encrypt, p.Revoked, p.Expired, p.WrongUsage, p.OCSPSigner} {
				if err := c.Cert.CheckSignatureFrom(p.Intermediate.Cert); err != nil {
					t.Fatalf("%s signature: %v", c.Cert.Subject, err)
				}
			}
			crl, err := smx509.ParseRevocationList(p.CRL)
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(p.Intermediate.Cert); err != nil {
				t.Fatalf("CRL signature: %v", err)
			}
			if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(p.Revoked.Cert.SerialNumber) != 0 {
				t.Fatalf("CRL entries: %+v", crl.RevokedCertificateEntries)
			}
			if got := p.Good.Cert.CRLDistributionPoints; len(got) != 1 || got[0] != "http://127.0.0.1:1/inter.crl" {
				t.Fatalf("CDP %v", got)
			}
			if got := p.Good.Cert.OCSPServer; len(got) != 1 || got[0] != "http://127.0.0.1:2" {
				t.Fatalf("AIA %v", got)
			}
			if !p.Good.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(p.Good.Cert.PublicKey) {
				t.Fatal("key does not match certificate")
			}
		})
	}
}
