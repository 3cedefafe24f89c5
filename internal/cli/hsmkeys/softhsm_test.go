//go:build cgo

package hsmkeys

import (
	"bytes"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
)

const module = "/usr/lib/softhsm/libsofthsm2.so"

// TestLifecycleWithSoftHSM drives the three commands against a real SoftHSM2 token,
// then loads the key with the server's PKCS#11 store, certificate chain read back
// from the token, and runs the conformance suite on it.
func TestLifecycleWithSoftHSM(t *testing.T) {
	if _, err := os.Stat(module); err != nil {
		t.Fatalf("SoftHSM2 is not installed (%s missing): `make test` installs it (apt-get install softhsm2)", module)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "cli", "--so-pin", "12345678", "--pin", "24680").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	t.Setenv("CLI_TEST_PIN", "24680")
	tok := []string{"--module", module, "--token", "cli", "--pin-env", "CLI_TEST_PIN"}
	run := func(stdin string, args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := Run(args, strings.NewReader(stdin), &out, &errb)
		if code != 0 {
			t.Logf("signsvr keys %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return out.String(), code
	}

	out, code := run("", append([]string{"generate", "--label", "customs-p256-sign", "--type", "ecdsa-p256", "--usage", "sign"}, tok...)...)
	if code != 0 {
		t.Fatal("generate failed")
	}
	m := regexp.MustCompile(`(?m)^uri: (\S+)$`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "PUBLIC KEY") || !strings.Contains(out, "ECDSA-P256") {
		t.Fatalf("generate printed %q", out)
	}
	uri := m[1]
	if _, code := run("", append([]string{"generate", "--label", "customs-p256-sign", "--type", "ecdsa-p256"}, tok...)...); code != 1 {
		t.Fatal("a second key with the same label was accepted")
	}
	if _, code := run("", append([]string{"generate", "--label", "x", "--type", "sm2"}, tok...)...); code != 1 {
		t.Fatal("SM2 generation without SM2 mechanisms did not fail")
	}

	csrOut := filepath.Join(dir, "req.pem")
	if _, code := run("", append([]string{"csr", "--key", uri, "--subject", "CN=customs-p256-sign,O=Customs,C=CN", "--dns", "signsvr.example", "--out", csrOut}, tok...)...); code != 0 {
		t.Fatal("csr failed")
	}
	b, _ := os.ReadFile(csrOut)
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("csr wrote %q", b)
	}
	req, err := smx509.ParseCertificateRequest(blk.Bytes)
	if err != nil || req.CheckSignature() != nil || req.Subject.CommonName != "customs-p256-sign" || req.DNSNames[0] != "signsvr.example" {
		t.Fatalf("request %v: %+v", err, req)
	}
	// OpenSSL checks the request's signature too.
	if out, err := exec.Command("openssl", "req", "-in", csrOut, "-noout", "-verify").CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl req -verify: %v %s", err, out)
	}

	ca := keystoretest.NewCA(t, "RSA-2048")
	leaf := ca.Issue(t, "customs-p256-sign", req.PublicKey, true, false, 0)
	chainPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}))
	wrong := ca.Issue(t, "other", keystoretest.GenerateKey(t, "ECDSA-P256").Public(), true, false, 0)
	if _, code := run(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wrong.Raw})), append([]string{"import-cert", "--key", uri, "--cert", "-"}, tok...)...); code != 1 {
		t.Fatal("a certificate for another key was imported")
	}
	if _, code := run(chainPEM, append([]string{"import-cert", "--key", uri, "--cert", "-"}, tok...)...); code != 0 {
		t.Fatal("import-cert failed")
	}

	s, err := pkcs11.New(pkcs11.Config{
		Tokens: []pkcs11.TokenConfig{{Module: module, Label: "cli", PINEnv: "CLI_TEST_PIN"}},
		Keys:   []pkcs11.KeyConfig{{Name: "customs-p256-sign", URI: uri, Usages: []string{"sign"}}},
	}, pkcs11.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.Key(t.Context(), "customs-p256-sign")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Chain()) != 2 || !bytes.Equal(k.Chain()[0].Raw, leaf.Raw) || !bytes.Equal(k.Chain()[1].Raw, ca.Cert.Raw) {
		t.Fatalf("chain read back from the token has %d certificates", len(k.Chain()))
	}
	keystoretest.Run(t, s, keystoretest.Options{Require: []keystoretest.Want{{Algorithm: "ECDSA-P256", Usage: keystore.UsageSign}}})
}
