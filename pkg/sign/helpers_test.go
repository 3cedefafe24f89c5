package sign

import (
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/keystore"
)

// testNow is the injected clock of every test.
var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// testPKI is a root CA and one signing leaf of an algorithm.
type testPKI struct {
	alg   devpki.Algorithm
	ca    *devpki.CA
	key   crypto.Signer
	leaf  *smx509.Certificate
	chain []*smx509.Certificate // leaf, root
	// other is a second leaf of the same CA, for wrong-certificate cases.
	otherKey  crypto.Signer
	otherLeaf *smx509.Certificate
}

var (
	pkiMu    sync.Mutex
	pkiCache = map[devpki.Algorithm]*testPKI{}
)

// pkiFor builds (once per test binary) a root and two leaves of alg. RSA key
// generation is slow under -race, so every test shares them.
func pkiFor(t testing.TB, alg devpki.Algorithm) *testPKI {
	t.Helper()
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if p := pkiCache[alg]; p != nil {
		return p
	}
	ca, err := devpki.NewCA(alg, "signsvr test root "+string(alg), testNow)
	if err != nil {
		t.Fatal(err)
	}
	key, leaf, err := ca.Issue(alg, devpki.LeafOptions{CommonName: "signer " + string(alg), Usage: keystore.UsageSign, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	okey, oleaf, err := ca.Issue(alg, devpki.LeafOptions{CommonName: "other " + string(alg), Usage: keystore.UsageSign, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{alg: alg, ca: ca, key: key, leaf: leaf, chain: []*smx509.Certificate{leaf, ca.Cert}, otherKey: okey, otherLeaf: oleaf}
	pkiCache[alg] = p
	return p
}

var allAlgs = []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.ECDSAP384, devpki.SM2}

// opensslPath finds openssl or fails the test: the interop tests never skip.
func opensslPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required for this test but is not on PATH (apt-get install openssl): %v", err)
	}
	return p
}

// runOpenSSL runs openssl in dir and fails the test with its output on error.
func runOpenSSL(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	out, err := tryOpenSSL(t, dir, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func tryOpenSSL(t testing.TB, dir string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(opensslPath(t), args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// writePKI writes root.pem, signer.pem and signer.key (PKCS#8) for p into dir.
func writePKI(t testing.TB, dir string, p *testPKI) {
	t.Helper()
	if err := devpki.WriteCertsPEM(filepath.Join(dir, "root.pem"), p.ca.Cert); err != nil {
		t.Fatal(err)
	}
	if err := devpki.WriteCertsPEM(filepath.Join(dir, "signer.pem"), p.leaf); err != nil {
		t.Fatal(err)
	}
	if err := devpki.WriteKeyPEM(filepath.Join(dir, "signer.key"), p.key); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testContent(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func leaf2chain(leaf *smx509.Certificate) []*smx509.Certificate { return []*smx509.Certificate{leaf} }

// signedAttrsSET returns what a signature over signed attributes covers: their DER
// with the SET OF tag instead of the [0] IMPLICIT tag of a SignerInfo.
func signedAttrsSET(si *cms.SignerInfo) []byte {
	return append([]byte{0x31}, si.RawSignedAttrs[1:]...)
}
