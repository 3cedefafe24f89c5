//go:build cgo

package hsmkeys

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"signsvr.dev/signsvr/pkg/keystore/pkcs11"
	"signsvr.dev/signsvr/pkg/keywrap"
)

// import-secret stores an AES key in a SoftHSM2 token that the server's store then
// finds by the printed URI and that wraps as RFC 3394 does with the same key.
func TestImportSecretWithSoftHSM(t *testing.T) {
	if _, err := os.Stat(module); err != nil {
		t.Fatalf("SoftHSM2 is not installed (%s missing)", module)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "kek", "--so-pin", "12345678", "--pin", "24680").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	t.Setenv("CLI_TEST_PIN", "24680")
	key := bytes.Repeat([]byte{0x5a}, 16)
	keyFile := filepath.Join(dir, "kek.hex")
	os.WriteFile(keyFile, []byte("5a5a5a5a5a5a5a5a 5a5a5a5a5a5a5a5a\n"), 0o600)
	var out, errb bytes.Buffer
	code := Run([]string{"import-secret", "--module", module, "--token", "kek", "--pin-env", "CLI_TEST_PIN",
		"--label", "acme-kek", "--id", "01", "--key-file", keyFile}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("import-secret: exit %d: %s", code, errb.String())
	}
	m := regexp.MustCompile(`(?m)^uri: (\S+)$`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "AES-128") {
		t.Fatalf("import-secret printed %q", out.String())
	}
	s, err := pkcs11.New(pkcs11.Config{
		Tokens:     []pkcs11.TokenConfig{{Module: module, Label: "kek", PINEnv: "CLI_TEST_PIN"}},
		SecretKeys: []pkcs11.SecretKeyConfig{{Name: "acme-kek", URI: m[1], KeyID: "616263"}},
	}, pkcs11.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.SecretKey(context.Background(), "acme-kek")
	if err != nil {
		t.Fatal(err)
	}
	cek := bytes.Repeat([]byte{7}, 16)
	w, err := k.WrapKey(context.Background(), cek)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := keywrap.Wrap(key, cek); !bytes.Equal(w, want) {
		t.Fatal("the imported key wraps differently")
	}
	errb.Reset()
	if code := Run([]string{"import-secret", "--module", module, "--token", "kek", "--pin-env", "CLI_TEST_PIN", "--label", "x"}, nil, &out, &errb); code != 2 {
		t.Fatalf("missing flags: exit %d", code)
	}
}
