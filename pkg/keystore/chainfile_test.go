package keystore_test

import (
	"encoding/pem"
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
)

// FuzzParseCertificatesPEM feeds certificate chains to the chain parser.
func FuzzParseCertificatesPEM(f *testing.F) {
	ca := keystoretest.NewCA(f, "SM2")
	k := keystoretest.GenerateKey(f, "ECDSA-P256")
	leaf := ca.Issue(f, "leaf", k.Public(), true, false, 0)
	var chain []byte
	for _, c := range []*smx509.Certificate{leaf, ca.Cert} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	f.Add(chain)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := keystore.ParseCertificatesPEM(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
	})
}

// TestMinRSABits: a key store takes an RSA key exactly when the algorithm table lets
// it sign on signsvr's behalf, so a key is never loaded that then cannot sign.
func TestMinRSABits(t *testing.T) {
	for _, p := range []algorithm.Purpose{algorithm.SignCMS, algorithm.LoginToken} {
		if p.MinRSABits() != keystore.MinRSABits {
			t.Errorf("%s needs %d bits, the key stores %d", p, p.MinRSABits(), keystore.MinRSABits)
		}
	}
	if err := keystore.CheckRSABits(keystore.MinRSABits); err != nil {
		t.Errorf("CheckRSABits(%d) = %v", keystore.MinRSABits, err)
	}
	if err := keystore.CheckRSABits(keystore.MinRSABits - 1); err == nil {
		t.Errorf("CheckRSABits(%d) = nil", keystore.MinRSABits-1)
	}
}
