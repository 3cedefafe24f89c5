package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
	"signsvr.dev/signsvr/pkg/keystore/soft"
)

// TestCheckSecretFiles: a key, password, PIN or challenge key file that group or others
// may read or write is refused, naming the setting and the file; 0600 and 0400 pass.
func TestCheckSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // the umask does not decide here
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		mode    os.FileMode
		setting string
		cfg     func(c *Config, path string)
	}{
		{"tls key", 0o644, "tls.key_file", func(c *Config, p string) { c.TLS.KeyFile = p }},
		{"soft key", 0o640, "keystore.soft.keys[0].key_file", func(c *Config, p string) {
			c.Keystore.Soft = &SoftKeystore{Keys: []soft.KeyConfig{{KeyFile: p}}}
		}},
		{"key password", 0o604, "keystore.soft.keys[0].password_file", func(c *Config, p string) {
			c.Keystore.Soft = &SoftKeystore{Keys: []soft.KeyConfig{{PasswordFile: p}}}
		}},
		{"HSM PIN", 0o620, "keystore.pkcs11.tokens[0].pin_file", func(c *Config, p string) {
			c.Keystore.PKCS11 = &PKCS11Keystore{Config: pkcs11.Config{Tokens: []pkcs11.TokenConfig{{PINFile: p}}}}
		}},
		{"challenge key", 0o660, "login.challenge_key_files[0]", func(c *Config, p string) {
			c.Login = &Login{ChallengeKeyFiles: []string{p}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			p := file(strings.ReplaceAll(tc.name, " ", "-"), tc.mode)
			tc.cfg(&c, p)
			err := c.CheckSecretFiles()
			if err == nil || !strings.Contains(err.Error(), tc.setting) || !strings.Contains(err.Error(), p) {
				t.Fatalf("mode %04o: %v, want a refusal naming %s and %s", tc.mode, err, tc.setting, p)
			}
			for _, ok := range []os.FileMode{0o600, 0o400} {
				if err := os.Chmod(p, ok); err != nil {
					t.Fatal(err)
				}
				if err := c.CheckSecretFiles(); err != nil {
					t.Errorf("mode %04o: %v", ok, err)
				}
			}
		})
	}
	// A file that is not there is for the code that reads it to report.
	c := Config{TLS: TLS{KeyFile: filepath.Join(dir, "missing")}}
	if err := c.CheckSecretFiles(); err != nil {
		t.Errorf("missing file: %v", err)
	}
}

// TestSecretModeOK: a root-owned secret may be group-readable for a server that is
// not root (a Kubernetes Secret mounted with fsGroup: root:fsGroup 0440), and in no
// other case; nothing else ever relaxes.
func TestSecretModeOK(t *testing.T) {
	for _, tc := range []struct {
		perm               os.FileMode
		rootFile, rootProc bool
		ok                 bool
	}{
		{0o600, false, false, true},
		{0o400, false, false, true},
		{0o640, false, false, false},
		{0o440, false, false, false},
		{0o440, true, false, true},
		{0o640, true, false, true},
		{0o660, true, false, false},
		{0o444, true, false, false},
		{0o450, true, false, false},
		{0o604, true, false, false},
		{0o440, true, true, false},
		{0o400, true, true, true},
	} {
		if got := secretModeOK(tc.perm, tc.rootFile, tc.rootProc); got != tc.ok {
			t.Errorf("mode %04o, root-owned %v, server root %v: ok %v, want %v", tc.perm, tc.rootFile, tc.rootProc, got, tc.ok)
		}
	}
}
