package envelope

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/keystore"
)

// party is a recipient (or signer) with its key and certificate.
type party struct {
	name string
	alg  devpki.Algorithm
	key  crypto.Signer
	cert *smx509.Certificate
}

// opener returns what Open takes for this party: the crypto.Decrypter for RSA and
// SM2, an *ecdh.PrivateKey (a KeyAgreer) for EC.
func (p *party) opener(t testing.TB) any {
	t.Helper()
	if k, ok := p.key.(*ecdsa.PrivateKey); ok && (p.alg == devpki.ECDSAP256 || p.alg == devpki.ECDSAP384) {
		e, err := k.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	return p.key
}

type fixture struct {
	rsa, rsa2, ec256, ec384, sm2a, sm2b *party
	// signers for sign-then-envelope.
	rsaSign, ecSign, sm2Sign *party
	// noSKI is an RSA recipient whose certificate lacks the SubjectKeyIdentifier.
	noSKI *party
	cas   map[devpki.Algorithm]*devpki.CA
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

// testNow is the clock the test PKI is made at.
var testNow = time.Now()

// getFixture builds the test PKI once per test binary: RSA-2048 key generation is
// the slow part, and every test can share the keys.
func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = buildFixture() })
	if fixErr != nil {
		t.Fatalf("test PKI: %v", fixErr)
	}
	return fix
}

func buildFixture() (*fixture, error) {
	f := &fixture{cas: map[devpki.Algorithm]*devpki.CA{}}
	for _, a := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.SM2} {
		ca, err := devpki.NewCA(a, "envelope test root "+string(a), testNow)
		if err != nil {
			return nil, err
		}
		f.cas[a] = ca
	}
	issue := func(name string, alg devpki.Algorithm, caAlg devpki.Algorithm, usage keystore.Usage, noSKI bool) (*party, error) {
		key, cert, err := f.cas[caAlg].Issue(alg, devpki.LeafOptions{CommonName: name, Usage: usage, Now: testNow, NoSubjectKeyID: noSKI})
		if err != nil {
			return nil, err
		}
		return &party{name: name, alg: alg, key: key, cert: cert}, nil
	}
	var err error
	for _, p := range []struct {
		out          **party
		name         string
		alg, caAlg   devpki.Algorithm
		usage        keystore.Usage
		noSubjectKID bool
	}{
		{&f.rsa, "rsa recipient", devpki.RSA2048, devpki.RSA2048, keystore.UsageDecrypt, false},
		{&f.rsa2, "rsa recipient 2", devpki.RSA2048, devpki.RSA2048, keystore.UsageDecrypt, false},
		{&f.ec256, "p256 recipient", devpki.ECDSAP256, devpki.ECDSAP256, keystore.UsageDecrypt, false},
		{&f.ec384, "p384 recipient", devpki.ECDSAP384, devpki.ECDSAP256, keystore.UsageDecrypt, false},
		{&f.sm2a, "sm2 recipient", devpki.SM2, devpki.SM2, keystore.UsageDecrypt, false},
		{&f.sm2b, "sm2 recipient 2", devpki.SM2, devpki.SM2, keystore.UsageDecrypt, false},
		{&f.rsaSign, "rsa signer", devpki.RSA2048, devpki.RSA2048, keystore.UsageSign, false},
		{&f.ecSign, "p256 signer", devpki.ECDSAP256, devpki.ECDSAP256, keystore.UsageSign, false},
		{&f.sm2Sign, "sm2 signer", devpki.SM2, devpki.SM2, keystore.UsageSign, false},
		{&f.noSKI, "rsa recipient without ski", devpki.RSA2048, devpki.RSA2048, keystore.UsageDecrypt, true},
	} {
		if *p.out, err = issue(p.name, p.alg, p.caAlg, p.usage, p.noSubjectKID); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *fixture) chain(p *party) []*smx509.Certificate {
	caAlg := p.alg
	if caAlg == devpki.ECDSAP384 {
		caAlg = devpki.ECDSAP256
	}
	return []*smx509.Certificate{p.cert, f.cas[caAlg].Cert}
}

func certs(ps ...*party) []*smx509.Certificate {
	out := make([]*smx509.Certificate, len(ps))
	for i, p := range ps {
		out[i] = p.cert
	}
	return out
}

// --- openssl ---

// opensslPath finds the openssl binary; a test that needs it fails (never skips)
// when it is missing.
func opensslPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("these tests need the openssl command (OpenSSL 3.0) on PATH: %v", err)
	}
	return p
}

// runOpenSSL runs openssl with args in dir, feeding stdin, and returns stdout. It
// fails the test with openssl's stderr when the command fails.
func runOpenSSL(t testing.TB, dir string, stdin []byte, args ...string) []byte {
	t.Helper()
	out, err := tryOpenSSL(t, dir, stdin, args...)
	if err != nil {
		t.Fatalf("openssl %v: %v", args, err)
	}
	return out
}

func tryOpenSSL(t testing.TB, dir string, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(opensslPath(t), args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &opensslError{err: err, stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

type opensslError struct {
	err    error
	stderr string
}

func (e *opensslError) Error() string { return e.err.Error() + ": " + e.stderr }

// writePEM writes p's certificate and PKCS#8 key into dir and returns the paths.
func (p *party) writePEM(t testing.TB, dir string) (certPath, keyPath string) {
	t.Helper()
	base := filepath.Join(dir, sanitize(p.name))
	certPath, keyPath = base+".crt", base+".key"
	if err := devpki.WriteCertsPEM(certPath, p.cert); err != nil {
		t.Fatal(err)
	}
	if err := devpki.WriteKeyPEM(keyPath, p.key); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
