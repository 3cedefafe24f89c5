package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const withPKCS11 = `listen: 127.0.0.1:6000
tls:
  cert_file: tls/server.pem
  key_file: tls/server.key
  client_ca_files: [tls/clients.pem]
trust:
  anchors: [trust/root.pem]
keystore:
  expiry_warning: 240h
  soft:
    keys:
      - name: customs-sm2-sign
        key_file: keys/sm2.key.pem
        cert_file: keys/sm2.chain.pem
        usages: [sign]
  pkcs11:
    tokens:
      - module: /usr/lib/softhsm/libsofthsm2.so
        label: customs
        pin_file: secrets/customs.pin
        pool_size: 4
        wait_timeout: 500ms
        retry_interval: 2s
      - module: vendor/libhsm.so
        label: sm2-hsm
        pin_env: SM2_HSM_PIN
        sm2:
          preset: sansec
      - module: libbare.so
        label: bare
        pin_env: BARE_PIN
    keys:
      - name: customs-rsa-sign
        uri: "pkcs11:token=customs;object=customs-rsa-sign"
        usages: [sign]
      - name: customs-rsa-enc
        uri: "pkcs11:token=customs;object=customs-rsa-enc"
        cert_file: certs/rsa-enc.pem
        usages: [decrypt]
`

func TestParsePKCS11(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signsvr.yaml")
	if err := os.WriteFile(path, []byte(withPKCS11), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Keystore.PKCS11
	if p == nil || len(p.Tokens) != 3 || len(p.Keys) != 2 {
		t.Fatalf("pkcs11 section: %+v", p)
	}
	tok := p.Tokens[0]
	if tok.Label != "customs" || tok.PoolSize != 4 || tok.WaitTimeout != 500*time.Millisecond || tok.RetryInterval != 2*time.Second {
		t.Errorf("token 0: %+v", tok)
	}
	if p.Tokens[1].SM2 == nil || p.Tokens[1].SM2.Preset != "sansec" || p.Tokens[1].PINEnv != "SM2_HSM_PIN" {
		t.Errorf("token 1: %+v", p.Tokens[1])
	}
	if c.Keystore.ExpiryWarning != 240*time.Hour {
		t.Errorf("expiry_warning = %v", c.Keystore.ExpiryWarning)
	}
	// Relative paths are relative to the file; a bare library name is left to the loader.
	for _, tc := range []struct{ got, want string }{
		{tok.Module, "/usr/lib/softhsm/libsofthsm2.so"},
		{tok.PINFile, filepath.Join(dir, "secrets/customs.pin")},
		{p.Tokens[1].Module, filepath.Join(dir, "vendor/libhsm.so")},
		{p.Tokens[2].Module, "libbare.so"},
		{p.Keys[0].CertFile, ""},
		{p.Keys[1].CertFile, filepath.Join(dir, "certs/rsa-enc.pem")},
	} {
		if tc.got != tc.want {
			t.Errorf("path %q, want %q", tc.got, tc.want)
		}
	}
	// Where sends the operator to the line.
	// lineOf is the line of the nth (from 1) line of the file that starts, after
	// indentation, with prefix.
	lineOf := func(prefix string, nth int) int {
		for i, l := range strings.Split(withPKCS11, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				if nth--; nth == 0 {
					return i + 1
				}
			}
		}
		t.Fatalf("no line %q", prefix)
		return 0
	}
	for _, tc := range []struct {
		path []any
		line int
	}{
		{[]any{"keystore", "pkcs11"}, lineOf("pkcs11:", 1)},
		{[]any{"keystore", "pkcs11", "tokens", 0}, lineOf("- module:", 1)},
		{[]any{"keystore", "pkcs11", "tokens", 0, "module"}, lineOf("- module:", 1)},
		{[]any{"keystore", "pkcs11", "tokens", 0, "pin_file"}, lineOf("pin_file:", 1)},
		{[]any{"keystore", "pkcs11", "tokens", 1, "pin_env"}, lineOf("pin_env:", 1)},
		{[]any{"keystore", "pkcs11", "keys", 1}, lineOf("- name: customs-rsa-enc", 1)},
		{[]any{"keystore", "pkcs11", "keys", 1, "uri"}, lineOf("uri:", 2)},
		{[]any{"keystore", "pkcs11", "keys", 1, "cert_file"}, lineOf("cert_file: certs", 1)},
		// Not in the file: the deepest part that is.
		{[]any{"keystore", "pkcs11", "keys", 0, "cert_file"}, lineOf("- name: customs-rsa-sign", 1)},
		{[]any{"keystore", "pkcs11", "keys", 7, "uri"}, lineOf("keys:", 2)},
	} {
		want := path + ":" + strconv.Itoa(tc.line)
		if got := c.Where(tc.path...); got != want {
			t.Errorf("Where%v = %s, want %s", tc.path, got, want)
		}
	}
	if got := (&Config{}).Where("keystore"); got != "" {
		t.Errorf("Where without a file = %q", got)
	}
}

func TestValidatePKCS11(t *testing.T) {
	base := strings.SplitN(withPKCS11, "keystore:", 2)[0]
	for _, tc := range []struct{ name, keystore, want string }{
		{"no backend", "keystore: {}\n", "no backend configured"},
		{"pkcs11 without keys", "keystore:\n  pkcs11:\n    tokens: [{module: /x.so, label: a, pin_env: P}]\n", "keystore.pkcs11.keys"},
		{"pkcs11 without tokens", "keystore:\n  pkcs11:\n    keys: [{name: a, uri: \"pkcs11:token=a;object=a\", usages: [sign]}]\n", "keystore.pkcs11.tokens"},
		{"unknown field", "keystore:\n  pkcs11:\n    tokens: [{module: /x.so, label: a, pin: \"1234\"}]\n", "field pin not found"},
		{"negative expiry warning", "keystore:\n  expiry_warning: -1h\n  soft:\n    keys: [{name: a, key_file: a, cert_file: a, usages: [sign]}]\n", "expiry_warning"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.keystore), "/etc/signsvr")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	c, err := Parse([]byte(base+"keystore:\n  pkcs11:\n    tokens: [{module: /x.so, label: a, pin_env: P}]\n    keys: [{name: a, uri: \"pkcs11:token=a;object=a\", usages: [sign]}]\n"), "/etc")
	if err != nil {
		t.Fatalf("a pkcs11-only keystore: %v", err)
	}
	if c.Keystore.Soft != nil || c.Keystore.ExpiryWarning != 30*24*time.Hour {
		t.Errorf("pkcs11-only: soft %v, expiry warning %v", c.Keystore.Soft, c.Keystore.ExpiryWarning)
	}
}
