package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/keystore"
)

// tlsFiles makes a TLS CA, a server certificate for localhost and a client
// certificate, and writes them (with keys) into dir.
func tlsFiles(t *testing.T, dir, prefix string) {
	t.Helper()
	now := time.Now()
	ca, err := devpki.NewCA(devpki.ECDSAP256, prefix+" tls ca", now)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(devpki.WriteCertsPEM(filepath.Join(dir, prefix+"-ca.pem"), ca.Cert))
	for _, leaf := range []struct {
		name string
		eku  smx509.ExtKeyUsage
		dns  []string
	}{
		{"server", smx509.ExtKeyUsageServerAuth, []string{"localhost"}},
		{"client", smx509.ExtKeyUsageClientAuth, nil},
		{"intruder", smx509.ExtKeyUsageClientAuth, nil},
	} {
		key, cert, err := ca.Issue(devpki.ECDSAP256, devpki.LeafOptions{
			CommonName: prefix + " " + leaf.name, Usage: keystore.UsageSign, Now: now,
			ExtKeyUsage: []smx509.ExtKeyUsage{leaf.eku}, DNSNames: leaf.dns,
		})
		must(err)
		must(devpki.WriteKeyPEM(filepath.Join(dir, prefix+"-"+leaf.name+".key"), key))
		must(devpki.WriteCertsPEM(filepath.Join(dir, prefix+"-"+leaf.name+".pem"), cert))
	}
}

func TestServeProductionConfigRequiresMutualTLS(t *testing.T) {
	dir := t.TempDir()
	tlsFiles(t, dir, "good")
	tlsFiles(t, dir, "other") // a client CA the server does not trust
	// Keys and trust anchors: the shared development PKI's files, named by absolute
	// path; TLS files by paths relative to the config file.
	cfg := fmt.Sprintf(`# production test config
listen: 127.0.0.1:0
max_message_bytes: 1048576
streams:
  max_bytes: 1048576
log:
  level: debug
  format: json
tls:
  cert_file: good-server.pem
  key_file: good-server.key
  client_ca_files: [good-ca.pem]
  min_version: "1.3"
trust:
  anchors: [%s]
keystore:
  soft:
    keys:
      - name: customs-ecdsa-sign
        key_file: %s
        cert_file: %s
        usages: [sign]
      - name: customs-rsa-enc
        key_file: %s
        cert_file: %s
        usages: [decrypt]
authorization:
  rules:
    - subjects: ["CN=good client,O=signsvr development"]
      issuer: "CN=good tls ca,O=signsvr development"
      keys: [customs-ecdsa-sign]
      operations: [sign, envelope, verify, list_keys]
`, devFile("roots.pem"),
		devFile("keys", "ecdsa-sign.key.pem"), devFile("keys", "ecdsa-sign.chain.pem"),
		devFile("keys", "rsa-enc.key.pem"), devFile("keys", "rsa-enc.chain.pem"))
	cfgFile := filepath.Join(dir, "signsvr.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ds := startServe(t, "--config", cfgFile)
	if strings.Contains(ds.stderr.String(), "DEVELOPMENT") {
		t.Errorf("production mode says it is a development setup")
	}
	tlsAs := func(prefix, who string) []string {
		return []string{"--tls-ca", filepath.Join(dir, "good-ca.pem"), "--tls-server-name", "localhost",
			"--tls-cert", filepath.Join(dir, prefix+"-"+who+".pem"), "--tls-key", filepath.Join(dir, prefix+"-"+who+".key"), "--timeout", "5s"}
	}
	tlsArgs := func(prefix string) []string { return tlsAs(prefix, "client") }

	code, out, errs := cli(t, ds.addr, nil, append([]string{"keys", "list"}, tlsArgs("good")...)...)
	if code != 0 || !strings.Contains(string(out), "# customs-ecdsa-sign") || !strings.Contains(string(out), "# customs-rsa-enc") {
		t.Fatalf("keys list over mTLS: exit %d\n%s%s", code, out, errs)
	}
	data := []byte("production signature")
	code, sig, errs := cli(t, ds.addr, data, append([]string{"sign", "--key", "customs-ecdsa-sign"}, tlsArgs("good")...)...)
	if code != 0 {
		t.Fatalf("sign over mTLS: %s", errs)
	}
	if code, out, errs := cli(t, ds.addr, sig, append([]string{"verify"}, tlsArgs("good")...)...); code != 0 {
		t.Fatalf("verify over mTLS: exit %d %s %s", code, out, errs)
	}
	// The same with the address and the TLS flags before the command name.
	{
		var stdout, stderr bytes.Buffer
		args := append(append([]string{"--addr", ds.addr}, tlsArgs("good")...), "verify")
		if code := run(t.Context(), args, bytes.NewReader(sig), &stdout, &stderr); code != 0 {
			t.Fatalf("signsvr %s: exit %d %s %s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
	}
	// Authorization denies by default: the client may sign with its key only, and
	// another client of the same CA may not sign at all.
	_, env, _ := cli(t, ds.addr, data, append([]string{"envelope", "--to", "customs-rsa-enc"}, tlsArgs("good")...)...)
	if code, _, errs := cli(t, ds.addr, env, append([]string{"decrypt", "--key", "customs-rsa-enc"}, tlsArgs("good")...)...); code != exitServer || !strings.Contains(errs, "PermissionDenied (PERMISSION_DENIED)") {
		t.Errorf("decrypt without a rule: exit %d %s", code, errs)
	}
	if code, _, errs := cli(t, ds.addr, data, append([]string{"sign", "--key", "customs-ecdsa-sign"}, tlsAs("good", "intruder")...)...); code != exitServer || !strings.Contains(errs, "PERMISSION_DENIED") {
		t.Errorf("sign by a client no rule names: exit %d %s", code, errs)
	}
	if code, _, errs := cli(t, ds.addr, nil, append([]string{"keys", "list"}, tlsAs("good", "intruder")...)...); code != exitServer || !strings.Contains(errs, "PERMISSION_DENIED") {
		t.Errorf("keys list by a client no rule names: exit %d %s", code, errs)
	}
	if !strings.Contains(ds.stderr.String(), `no rule allows \"CN=good intruder`) {
		t.Errorf("the refusal's cause is not logged:\n%s", ds.stderr.String())
	}
	// The configured message limit applies.
	big := make([]byte, 2<<20)
	if code, _, errs := cli(t, ds.addr, big, append([]string{"sign", "--key", "customs-ecdsa-sign"}, tlsArgs("good")...)...); code != exitServer || !strings.Contains(errs, "ResourceExhausted") {
		t.Errorf("oversized sign: exit %d %s", code, errs)
	}

	// Refused: plaintext, TLS without a client certificate, an untrusted client.
	if code, _, errs := cli(t, ds.addr, nil, "keys", "list", "--timeout", "5s"); code != exitServer {
		t.Errorf("plaintext client: exit %d %s", code, errs)
	}
	noCert := []string{"keys", "list", "--tls-ca", filepath.Join(dir, "good-ca.pem"), "--tls-server-name", "localhost", "--timeout", "5s"}
	if code, _, errs := cli(t, ds.addr, nil, noCert...); code != exitServer {
		t.Errorf("client without certificate: exit %d %s", code, errs)
	}
	if code, _, errs := cli(t, ds.addr, nil, append([]string{"keys", "list"}, tlsArgs("other")...)...); code != exitServer {
		t.Errorf("untrusted client certificate: exit %d %s", code, errs)
	}
	if !strings.Contains(ds.stderr.String(), `"level":"INFO","msg":"serving"`) || !strings.Contains(ds.stderr.String(), `"tls":true`) {
		t.Errorf("the JSON log does not show a TLS server:\n%s", ds.stderr.String())
	}
}
