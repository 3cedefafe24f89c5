package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
listen: 0.0.0.0:6000
shutdown_timeout: 10s
tls:
  cert_file: tls/server.pem
  key_file: /abs/server.key
  client_ca_files: [tls/clients.pem]
trust:
  anchors: [trust/root.pem]
  revocation:
    hard_fail: true
    fetch_timeout: 3s
keystore:
  soft:
    keys:
      - name: customs-sm2-sign
        key_file: keys/sm2.key.pem
        cert_file: keys/sm2.chain.pem
        usages: [sign]
        password_file: secrets/sm2.pass
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good), "/etc/signsvr")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:6000" || c.ShutdownTimeout != 10*time.Second {
		t.Errorf("listen %q timeout %v", c.Listen, c.ShutdownTimeout)
	}
	// Defaults.
	if c.MaxMessageBytes != 64<<20 || c.MaxBatchItems != 1024 || c.Log.Level != "info" || c.Log.Format != "json" || c.TLS.MinVersion != "1.2" {
		t.Errorf("defaults: %+v", c)
	}
	// Relative paths are relative to the config file's directory; absolute ones stay.
	for got, want := range map[string]string{
		c.TLS.CertFile:                       "/etc/signsvr/tls/server.pem",
		c.TLS.KeyFile:                        "/abs/server.key",
		c.TLS.ClientCAFiles[0]:               "/etc/signsvr/tls/clients.pem",
		c.Trust.Anchors[0]:                   "/etc/signsvr/trust/root.pem",
		c.Keystore.Soft.Keys[0].KeyFile:      "/etc/signsvr/keys/sm2.key.pem",
		c.Keystore.Soft.Keys[0].PasswordFile: "/etc/signsvr/secrets/sm2.pass",
	} {
		if got != want {
			t.Errorf("path %q, want %q", got, want)
		}
	}
	if !c.Trust.Revocation.HardFail || c.Trust.Revocation.FetchTimeout != 3*time.Second {
		t.Errorf("trust revocation: %+v", c.Trust.Revocation)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, edit, want string
	}{
		{"typo in a key", strings.Replace(good, "client_ca_files", "client_cas", 1), "client_cas"},
		{"no tls", strings.Replace(good, "  cert_file: tls/server.pem\n", "", 1), "tls: cert_file and key_file are required"},
		{"no client CAs", strings.Replace(good, "  client_ca_files: [tls/clients.pem]\n", "", 1), "client_ca_files is required"},
		{"no anchors", strings.Replace(good, "  anchors: [trust/root.pem]\n", "", 1), "trust.anchors"},
		{"no keystore", good[:strings.Index(good, "keystore:")], "keystore: no backend"},
		{"bad listen", strings.Replace(good, "0.0.0.0:6000", "nowhere", 1), "listen"},
		{"bad level", good + "log:\n  level: loud\n", "log.level"},
		{"bad tls version", strings.Replace(good, "tls:\n", "tls:\n  min_version: \"1.0\"\n", 1), "min_version"},
		{"tiny limit", good + "max_message_bytes: 10\n", "max_message_bytes"},
		{"bad duration", strings.Replace(good, "10s", "ten seconds", 1), "line 3"},
		{"empty", "", "empty"},
		{"rule without client", good + "authorization:\n  rules:\n    - keys: [a]\n      operations: [sign]\n", "names no client"},
		{"rule with bad operation", good + "authorization:\n  rules:\n    - subjects: [CN=a]\n      issuer: CN=CA\n      keys: [a]\n      operations: [delete]\n", "unknown operation"},
		{"subject without issuer", good + "authorization:\n  rules:\n    - subjects: [CN=a]\n      keys: [a]\n      operations: [sign]\n", "subjects need the issuer"},
		{"issuer without subjects", good + "authorization:\n  rules:\n    - issuer: CN=CA\n      fingerprints: [ab]\n      operations: [verify]\n", "issuer without subjects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.edit), "/etc/signsvr")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("listen: [\n"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Load error %v does not name the file", err)
	}
}

func TestExampleConfigParses(t *testing.T) {
	// The shipped, commented example must stay a valid configuration.
	b, err := os.ReadFile("../../deploy/signsvr.example.yaml")
	if err != nil {
		t.Fatalf("the example configuration is missing: %v", err)
	}
	c, err := Parse(b, "/etc/signsvr")
	if err != nil {
		t.Fatalf("deploy/signsvr.example.yaml: %v", err)
	}
	if len(c.Keystore.Soft.Keys) == 0 {
		t.Errorf("the example configures no keys")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("keystore: {soft: {keys: [{name: a, usages: [sign]}]}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, "/etc/signsvr")
		if err == nil && c.Validate() != nil {
			t.Fatalf("Parse accepted a configuration that Validate refuses")
		}
	})
}

// TestGenerationStateNamesItsLine: a key entry with a state that is not one names the
// file's line.
func TestGenerationStateNamesItsLine(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{"        generation: \"1\"\n        state: dormant\n", "line 6: keystore.soft.keys[0].state"},
		{"        state: retired\n", "line 5: keystore.soft.keys[0]: state without generation"},
	} {
		cfg := "keystore:\n  soft:\n    keys:\n      - name: enc\n" + tc.entry
		_, err := Parse([]byte(cfg), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.entry, err, tc.want)
		}
	}
}

func TestVerifyDefaults(t *testing.T) {
	c, err := Parse([]byte(good+"verify:\n  allow_sm2_without_z: true\n"), "/etc/signsvr")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Verify.AllowSM2WithoutZ {
		t.Error("verify.allow_sm2_without_z not read")
	}
	if _, err := Parse([]byte(good+"verify:\n  allow_sm2_without: true\n"), "/etc/signsvr"); err == nil {
		t.Error("a misspelt verify key was accepted")
	}
}

// TestStreamsAndClientDigests: the streams section and client_digests load, and a
// digest name outside the table is refused.
func TestStreamsAndClientDigests(t *testing.T) {
	b, err := os.ReadFile("../../deploy/signsvr.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good := string(b) + "\nclient_digests:\n  customs-sm2-sign: [sm3]\n  customs-rsa-sign: [sha256, sha512]\n"
	c, err := Parse([]byte(good), "../../deploy")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ClientDigestAlgorithms(); len(got["customs-rsa-sign"]) != 2 || got["customs-sm2-sign"][0].String() != "SM3" {
		t.Fatalf("client digests %v", got)
	}
	if c.Streams.MaxBytes != 16<<30 || c.Streams.IdleTimeout.String() != "2m0s" {
		t.Fatalf("streams %+v", c.Streams)
	}
	if _, err := Parse([]byte(string(b)+"\nclient_digests:\n  k: [md5]\n"), "../../deploy"); err == nil || !strings.Contains(err.Error(), "client_digests.k[0]") {
		t.Fatalf("md5 accepted: %v", err)
	}
}
