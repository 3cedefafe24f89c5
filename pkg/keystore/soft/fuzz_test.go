package soft_test

import (
	"encoding/pem"
	"testing"

	"github.com/emmansun/gmsm/pkcs8"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// FuzzParsePrivateKeyPEM feeds key files to the key parser: it must never panic,
// whatever the bytes. Encrypted keys are fed without a password (the PBES2 path with a
// password runs PBKDF2 with the file's own iteration count, which a mutated file makes
// arbitrarily slow; key files are operator input, and gmsm's pkcs8 has its own fuzzing).
func FuzzParsePrivateKeyPEM(f *testing.F) {
	for _, kind := range []string{"ECDSA-P256", "SM2"} {
		k := keystoretest.GenerateKey(f, kind)
		der, err := smx509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		enc, err := pkcs8.MarshalPrivateKey(k, []byte("pw"), nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}))
	}
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = soft.ParsePrivateKeyPEM(data, nil)
	})
}

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
		certs, err := soft.ParseCertificatesPEM(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
	})
}
