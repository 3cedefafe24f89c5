package pkcs11

import (
	"context"
	"crypto"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
)

// provision generates keys in the token with Admin, has a test CA issue certificates
// for them from CSRs signed in the token, and stores the certificates in the token
// (every other key) or in a cert_file. It returns the key configuration.
type keyPlan struct {
	name, alg string
	usages    keystore.Usage
	certFile  bool
}

func provisionKeys(t testing.TB, ctx context.Context, open opener, dir string, tc TokenConfig, ca *keystoretest.CA, plans []keyPlan) []KeyConfig {
	t.Helper()
	adm, err := openAdmin(tc, open, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	var out []KeyConfig
	for _, p := range plans {
		uri, pub, err := adm.GenerateKey(ctx, KeySpec{Label: p.name, Algorithm: p.alg, Usages: p.usages})
		if err != nil {
			t.Fatalf("generate %s: %v", p.name, err)
		}
		certPub := pub
		if p.usages.Has(keystore.UsageSign) {
			// A key generated for decryption only has CKA_SIGN false and cannot sign a
			// request; the CA certifies its public key on other grounds.
			der, err := adm.CreateCSR(ctx, uri, &smx509.CertificateRequest{})
			if err != nil {
				t.Fatalf("CSR for %s: %v", p.name, err)
			}
			csr, err := smx509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			if eq, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
				t.Fatalf("CSR of %s holds another public key", p.name)
			}
			certPub = csr.PublicKey
		}
		cert := ca.Issue(t, p.name, certPub, p.usages.Has(keystore.UsageSign), p.usages.Has(keystore.UsageDecrypt), 0)
		kc := KeyConfig{Name: p.name, URI: uri, Usages: strings.Split(p.usages.String(), ",")}
		if p.certFile {
			kc.CertFile = filepath.Join(dir, p.name+".crt")
			var b []byte
			for _, c := range []*smx509.Certificate{cert, ca.Cert} {
				b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
			}
			if err := os.WriteFile(kc.CertFile, b, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := adm.ImportCertificates(ctx, uri, []*smx509.Certificate{cert, ca.Cert}); err != nil {
			t.Fatalf("import certificate of %s: %v", p.name, err)
		}
		out = append(out, kc)
	}
	return out
}
