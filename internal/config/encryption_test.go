package config

import (
	"strings"
	"testing"
)

func TestParseSecretKeysAndEncryption(t *testing.T) {
	c, err := Parse([]byte(good+`  secret_keys:
    - name: customs-kek
      key_file: keys/kek.hex
      key_id: 6b656b2d31
encryption:
  max_pbkdf2_iterations: 200000
  max_raw_bytes: 1024
`), "/etc/signsvr")
	if err != nil {
		t.Fatal(err)
	}
	if k := c.Keystore.SecretKeys; len(k) != 1 || k[0].KeyFile != "/etc/signsvr/keys/kek.hex" || k[0].KeyID != "6b656b2d31" {
		t.Fatalf("secret_keys: %+v", k)
	}
	if c.Encryption.MaxPBKDF2Iterations != 200000 || c.Encryption.MaxRawBytes != 1024 {
		t.Fatalf("encryption: %+v", c.Encryption)
	}
	found := false
	for _, f := range c.SecretFiles() {
		found = found || f.Setting == "keystore.secret_keys[0].key_file"
	}
	if !found {
		t.Error("the KEK file is not a secret file")
	}
	for _, bad := range []string{
		good + "  secret_keys: [{name: a, key_file: k}]\n",
		good + "encryption: {max_raw_bytes: -1}\n",
	} {
		if _, err := Parse([]byte(bad), "/etc/signsvr"); err == nil || !strings.Contains(err.Error(), "secret_keys") && !strings.Contains(err.Error(), "encryption") {
			t.Errorf("accepted or wrong error: %v", err)
		}
	}
}
