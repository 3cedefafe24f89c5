package tsa

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
)

var testNow = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func fixedClock() time.Time { return testNow }

type tsaPKI struct {
	root  *devpki.CA
	key   crypto.Signer
	cert  *smx509.Certificate
	chain []*smx509.Certificate
}

var (
	pkiMu    sync.Mutex
	pkiCache = map[devpki.Algorithm]*tsaPKI{}
)

// pkiFor builds (once per test binary) a root and a TSA certificate of alg.
func pkiFor(t testing.TB, alg devpki.Algorithm) *tsaPKI {
	t.Helper()
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if p := pkiCache[alg]; p != nil {
		return p
	}
	ca, err := devpki.NewCA(alg, "tsa test root "+string(alg), testNow)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := ca.IssueTSA(alg, devpki.LeafOptions{CommonName: "test TSA " + string(alg), Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	p := &tsaPKI{root: ca, key: key, cert: cert, chain: []*smx509.Certificate{cert, ca.Cert}}
	pkiCache[alg] = p
	return p
}

func newAuthority(t testing.TB, p *tsaPKI) *Authority {
	t.Helper()
	a, err := NewAuthority(AuthorityConfig{Chain: p.chain, Now: fixedClock, Accuracy: Accuracy{Seconds: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// opensslPath finds openssl or fails the test: interop tests never skip.
func opensslPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required for this test but is not on PATH (apt-get install openssl): %v", err)
	}
	return p
}

func runOpenSSL(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(opensslPath(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
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

// OpenSSLTSAConfig writes tsa.cnf, tsa.pem (the TSA certificate), tsa.key and a
// serial file into dir, for `openssl ts -reply -config tsa.cnf`. essAlg is the
// ess_cert_id_alg ("sha1" gives a v1 signingCertificate, "sha256" a v2 one).
func writeOpenSSLTSA(t testing.TB, dir string, p *tsaPKI, essAlg string) {
	t.Helper()
	if err := devpki.WriteCertsPEM(filepath.Join(dir, "tsa.pem"), p.cert); err != nil {
		t.Fatal(err)
	}
	if err := devpki.WriteCertsPEM(filepath.Join(dir, "root.pem"), p.root.Cert); err != nil {
		t.Fatal(err)
	}
	if err := devpki.WriteKeyPEM(filepath.Join(dir, "tsa.key"), p.key); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tsaserial"), []byte("01\n"))
	cnf := `[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = .
serial = ./tsaserial
crypto_device = builtin
signer_cert = ./tsa.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 3
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = ` + essAlg + "\n"
	writeFile(t, filepath.Join(dir, "tsa.cnf"), []byte(cnf))
}
