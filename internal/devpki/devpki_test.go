package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
)

var fixedNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestEnsureCreatesThenReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	now := func() time.Time { return fixedNow }
	p1, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Keys) != 6 || len(p1.Roots) != 3 {
		t.Fatalf("got %d keys and %d roots, want 6 and 3", len(p1.Keys), len(p1.Roots))
	}
	p2, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p1.Roots {
		if !p1.Roots[i].Equal(p2.Roots[i]) {
			t.Fatal("second start made a new PKI instead of reusing the first")
		}
	}
	roots := smx509.NewCertPool()
	for _, r := range p1.Roots {
		roots.AddCert(r)
	}
	for _, kf := range p1.Keys {
		chain, err := ReadCertsPEM(kf.CertPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 2 {
			t.Fatalf("%s: chain of %d, want leaf and root", kf.Name, len(chain))
		}
		if _, err := chain[0].Verify(smx509.VerifyOptions{Roots: roots, CurrentTime: fixedNow, KeyUsages: []smx509.ExtKeyUsage{smx509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: chain does not verify: %v", kf.Name, err)
		}
		der, err := os.ReadFile(kf.KeyPath)
		if err != nil {
			t.Fatal(err)
		}
		key, err := smx509.ParsePKCS8PrivateKey(pemBody(t, der))
		if err != nil {
			t.Fatalf("%s: %v", kf.Name, err)
		}
		pub := key.(crypto.Signer).Public()
		if !chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			t.Errorf("%s: certificate does not match key", kf.Name)
		}
		wantKU := map[keystore.Usage]smx509.KeyUsage{keystore.UsageSign: smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment}
		if ku, ok := wantKU[kf.Usage]; ok && chain[0].KeyUsage != ku {
			t.Errorf("%s: key usage %b, want %b", kf.Name, chain[0].KeyUsage, ku)
		}
		if kf.Usage == keystore.UsageDecrypt {
			switch k := pub.(type) {
			case *rsa.PublicKey:
				if chain[0].KeyUsage&smx509.KeyUsageKeyEncipherment == 0 {
					t.Errorf("%s: no keyEncipherment", kf.Name)
				}
			case *ecdsa.PublicKey:
				want := smx509.KeyUsageKeyAgreement
				if sm2.IsSM2PublicKey(k) {
					want = smx509.KeyUsageKeyEncipherment
				}
				if chain[0].KeyUsage&want == 0 {
					t.Errorf("%s: key usage %b lacks %b", kf.Name, chain[0].KeyUsage, want)
				}
			}
		}
		// OpenSSL, an independent implementation, accepts the RSA and ECDSA chains.
		if kf.Algorithm != SM2 {
			out, err := exec.Command(openssl(t), "verify", "-CAfile", p1.RootsPath, "-attime", strconv.FormatInt(fixedNow.Unix(), 10), kf.CertPath).CombinedOutput()
			if err != nil || !strings.Contains(string(out), ": OK") {
				t.Errorf("%s: openssl verify: %v: %s", kf.Name, err, out)
			}
		}
	}
}

func TestEnsureRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "something"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir, func() time.Time { return fixedNow }); err == nil {
		t.Fatal("Ensure used a non-empty directory without a complete PKI")
	}
}

func TestIssueRequiresNow(t *testing.T) {
	ca, err := NewCA(ECDSAP256, "root", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Issue(ECDSAP256, LeafOptions{CommonName: "x"}); err == nil {
		t.Fatal("Issue without Now succeeded")
	}
	inter, err := ca.NewIntermediate(SM2, "inter", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	_, leaf, err := inter.Issue(SM2, LeafOptions{CommonName: "leaf", Usage: keystore.UsageSign, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(inter.Cert); err != nil {
		t.Fatal(err)
	}
	if len(inter.Chain) != 2 || len(leaf.SubjectKeyId) != 20 {
		t.Fatalf("chain %d, ski %x", len(inter.Chain), leaf.SubjectKeyId)
	}
}

func openssl(t *testing.T) string {
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed; `make test` installs it (Debian package openssl)")
	}
	return p
}

func pemBody(t *testing.T, data []byte) []byte {
	t.Helper()
	s := string(data)
	s = s[strings.Index(s, "\n")+1 : strings.Index(s, "-----END")]
	b, err := decodeBase64(strings.ReplaceAll(s, "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeBase64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// TestServiceKeysAddedToOldDataDir: a data directory made before the audit and TSA
// keys existed gets them on its next start; the other keys stay as they were.
func TestServiceKeysAddedToOldDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	now := func() time.Time { return fixedNow }
	p1, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, kf := range []KeyFile{p1.Audit, p1.TSA} {
		os.Remove(kf.KeyPath)
		os.Remove(kf.CertPath)
	}
	before, _ := os.ReadFile(p1.Keys[0].CertPath)
	p2, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(p2.Keys[0].CertPath)
	if string(before) != string(after) {
		t.Fatal("an existing key was replaced")
	}
	tsaChain, err := ReadCertsPEM(p2.TSA.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	crit := false
	for _, e := range tsaChain[0].Extensions {
		if e.Id.Equal(oidExtKeyUsage) && e.Critical {
			crit = true
		}
	}
	if !crit || len(tsaChain[0].ExtKeyUsage) != 1 || tsaChain[0].ExtKeyUsage[0] != smx509.ExtKeyUsageTimeStamping {
		t.Fatalf("TSA certificate EKU %v (critical %v)", tsaChain[0].ExtKeyUsage, crit)
	}
	if !tsaChain[1].Equal(p2.Roots[1]) {
		t.Fatal("TSA certificate not issued by the ECDSA root")
	}
	if _, err := os.Stat(p2.Audit.KeyPath); err != nil {
		t.Fatal(err)
	}
}

// TestCertifyPublicKey: a public key whose private key is elsewhere (an HSM's) gets a
// certificate for it, signed by the CA, with the requested IP address.
func TestCertifyPublicKey(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(ECDSAP256, "certify test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := GenerateKey(RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	ip := net.IPv4(127, 0, 0, 1)
	cert, err := ca.Certify(key.Public(), LeafOptions{CommonName: "hsm key", Usage: keystore.UsageSign, Now: now, IPAddresses: []net.IP{ip}})
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(*rsa.PublicKey).Equal(key.Public()) {
		t.Fatal("certificate for another key")
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("not signed by the CA: %v", err)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(ip) {
		t.Fatalf("IP addresses %v", cert.IPAddresses)
	}
	if cert.KeyUsage != smx509.KeyUsageDigitalSignature|smx509.KeyUsageContentCommitment {
		t.Fatalf("key usage %v", cert.KeyUsage)
	}
	if _, err := ca.Certify(key.Public(), LeafOptions{CommonName: "no time"}); err == nil {
		t.Fatal("Certify without Now succeeded")
	}
}

// TestDataDirIsPrivate: the development data directory is its owner's only (0700),
// and every private key in it is 0600, whatever the umask.
func TestDataDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "signsvr-data")
	if _, err := Ensure(dir, time.Now); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("data directory mode %04o, want 0700", perm)
	}
	keys := 0
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".key.pem") {
			return err
		}
		keys++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", p, perm)
		}
		return nil
	})
	if err != nil || keys == 0 {
		t.Fatalf("walk: %v, %d private keys", err, keys)
	}
}
