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
