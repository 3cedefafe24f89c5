package cli

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// TestKeysNextGeneration: the new key has the algorithm of the current certificate
// and is the owner's only, the request has its subject and is signed by the new key,
// and the printed entry names the files.
func TestKeysNextGeneration(t *testing.T) {
	for _, alg := range []devpki.Algorithm{devpki.ECDSAP256, devpki.SM2} {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			ca, err := devpki.NewCA(alg, "rotation ca", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, cert, err := ca.Issue(alg, devpki.LeafOptions{CommonName: "customs enc", Usage: keystore.UsageDecrypt, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			like := filepath.Join(dir, "enc-2025.pem")
			if err := devpki.WriteCertsPEM(like, cert); err != nil {
				t.Fatal(err)
			}
			var out, errs bytes.Buffer
			args := []string{"--name", "enc", "--generation", "2026", "--like", like, "--dir", dir}
			if code := runKeysNextGeneration(args, &out, &errs); code != ExitOK {
				t.Fatalf("exit %d: %s", code, errs.String())
			}
			keyFile := filepath.Join(dir, "enc-2026.key.pem")
			if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v %v", fi, err)
			}
			blk, _ := pem.Decode(readT(t, filepath.Join(dir, "enc-2026.csr.pem")))
			csr, err := smx509.ParseCertificateRequest(blk.Bytes)
			if err != nil || csr.CheckSignature() != nil || csr.Subject.String() != cert.Subject.String() {
				t.Fatalf("request: %v, subject %q", err, csr.Subject)
			}
			// The new key certified by the CA loads into the soft store beside the old.
			leaf, err := ca.Certify(csr.PublicKey, devpki.LeafOptions{CommonName: "customs enc", Usage: keystore.UsageDecrypt, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			chain := filepath.Join(dir, "enc-2026.chain.pem")
			if err := devpki.WriteCertsPEM(chain, leaf); err != nil {
				t.Fatal(err)
			}
			if _, err := soft.New([]soft.KeyConfig{{Name: "enc", KeyFile: keyFile, CertFile: chain, Usages: []string{"decrypt"}}}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "key_file: "+keyFile) || !strings.Contains(out.String(), `generation: "2026"`) {
				t.Errorf("printed entry:\n%s", out.String())
			}
			if code := runKeysNextGeneration(args, &out, &errs); code == ExitOK {
				t.Error("a second run overwrote the generation's key")
			}
		})
	}
}

func readT(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
