package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A production server with a key-encryption key in a file (keystore.secret_keys)
// and a PBKDF2 bound (encryption): KEK envelopes go both ways with openssl, the
// operations wrap and password are what the policy grants, and a password envelope
// over the bound is refused.
func TestServeKEKAndPasswordFromConfig(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is required")
	}
	dir := t.TempDir()
	tlsFiles(t, dir, "good")
	kek := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	kekID := hex.EncodeToString([]byte("acme-kek-1"))
	if err := os.WriteFile(filepath.Join(dir, "kek.hex"), []byte(kek+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
tls:
  cert_file: good-server.pem
  key_file: good-server.key
  client_ca_files: [good-ca.pem]
trust:
  anchors: [%s]
keystore:
  soft:
    keys:
      - name: customs-rsa-enc
        key_file: %s
        cert_file: %s
        usages: [decrypt]
  secret_keys:
    - name: acme-kek
      key_file: kek.hex
      key_id: %s
encryption:
  max_pbkdf2_iterations: 1500
authorization:
  rules:
    - subjects: ["CN=good client,O=signsvr development"]
      issuer: "CN=good tls ca,O=signsvr development"
      keys: [acme-kek]
      operations: [envelope, wrap, decrypt, password]
`, devFile("roots.pem"), devFile("keys", "rsa-enc.key.pem"), devFile("keys", "rsa-enc.chain.pem"), kekID)
	cfgFile := filepath.Join(dir, "signsvr.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ds := startServe(t, "--config", cfgFile)
	tlsArgs := []string{"--tls-ca", filepath.Join(dir, "good-ca.pem"), "--tls-server-name", "localhost",
		"--tls-cert", filepath.Join(dir, "good-client.pem"), "--tls-key", filepath.Join(dir, "good-client.key"), "--timeout", "10s"}
	data := []byte("for the holders of the ACME key-encryption key\n")
	runOpenSSL := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(openssl, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	code, env, errs := cli(t, ds.addr, data, append([]string{"envelope", "--to-kek", "acme-kek"}, tlsArgs...)...)
	if code != 0 {
		t.Fatalf("envelope --to-kek: exit %d: %s", code, errs)
	}
	if out := runOpenSSL(env, "cms", "-decrypt", "-binary", "-inform", "DER", "-secretkey", kek, "-secretkeyid", kekID); !bytes.Equal(out, data) {
		t.Fatalf("openssl: %q", out)
	}
	theirs := runOpenSSL(data, "cms", "-encrypt", "-binary", "-outform", "DER", "-aes256", "-secretkey", kek, "-secretkeyid", kekID)
	if code, out, errs := cli(t, ds.addr, theirs, append([]string{"decrypt", "--key", "acme-kek"}, tlsArgs...)...); code != 0 || !bytes.Equal(out, data) {
		t.Fatalf("decrypt --key acme-kek: exit %d: %s", code, errs)
	}
	// No rule grants decrypt on the RSA key.
	if code, _, errs := cli(t, ds.addr, theirs, append([]string{"decrypt", "--key", "customs-rsa-enc"}, tlsArgs...)...); code == 0 || !strings.Contains(errs, "PERMISSION_DENIED") {
		t.Fatalf("decrypt with an ungranted key: exit %d: %s", code, errs)
	}
	// openssl writes 2048 PBKDF2 iterations, over this server's 1500.
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("pw words\n"), 0o600)
	pwEnv := runOpenSSL(data, "cms", "-encrypt", "-binary", "-outform", "DER", "-aes128", "-pwri_password", "pw words")
	if code, _, errs := cli(t, ds.addr, pwEnv, append([]string{"decrypt", "--password-file", pwFile}, tlsArgs...)...); code == 0 || !strings.Contains(errs, "TOO_LARGE") {
		t.Fatalf("a password envelope over the bound: exit %d: %s", code, errs)
	}
	code, ours, errs := cli(t, ds.addr, data, append([]string{"envelope", "--password-file", pwFile, "--pbkdf2-iterations", "1200"}, tlsArgs...)...)
	if code != 0 {
		t.Fatalf("envelope --password-file: exit %d: %s", code, errs)
	}
	if code, out, errs := cli(t, ds.addr, ours, append([]string{"decrypt", "--password-file", pwFile}, tlsArgs...)...); code != 0 || !bytes.Equal(out, data) {
		t.Fatalf("decrypt --password-file: exit %d: %s", code, errs)
	}
	if strings.Contains(ds.stderr.String(), "pw words") || strings.Contains(ds.stderr.String(), kek) {
		t.Fatal("the server log holds a secret")
	}
}
