package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runRawCmd runs one command function against the shared server.
func runRawCmd(t *testing.T, cmd func(context.Context, []string, io.Reader, io.Writer, io.Writer) int, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	var stdout bytes.Buffer
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := cmd(ctx, append([]string{"--addr", shared.addr}, args...), bytes.NewReader(stdin), &stdout, &stderr)
	return code, stdout.Bytes(), stderr.String()
}

func TestCLIRawCrypt(t *testing.T) {
	data := []byte("a short secret")
	for _, tc := range []struct {
		key  string
		opts []string
	}{
		{"rsa-enc", nil},
		{"rsa-enc", []string{"--oaep-digest", "sha512"}},
		{"rsa-enc", []string{"--rsa-scheme", "pkcs1v15"}},
		{"sm2-enc", nil},
		{"sm2-enc", []string{"--sm2-encoding", "c1c2c3-no-prefix"}},
	} {
		t.Run(tc.key+strings.Join(tc.opts, " "), func(t *testing.T) {
			code, ct, errs := runRawCmd(t, EncryptRaw, data, append([]string{"--key", tc.key}, tc.opts...)...)
			if code != ExitOK || len(ct) == 0 {
				t.Fatalf("encrypt-raw: exit %d: %s", code, errs)
			}
			code, pt, errs := runRawCmd(t, DecryptRaw, ct, append([]string{"--key", tc.key}, tc.opts...)...)
			if code != ExitOK || !bytes.Equal(pt, data) {
				t.Fatalf("decrypt-raw: exit %d: %s", code, errs)
			}
		})
	}
	if code, _, _ := runRawCmd(t, EncryptRaw, data); code != ExitUsage {
		t.Errorf("encrypt-raw without --key or --cert: exit %d", code)
	}
	if code, _, _ := runRawCmd(t, DecryptRaw, data, "--key", "rsa-enc", "--sm2-encoding", "nonsense"); code != ExitUsage {
		t.Errorf("decrypt-raw with a bad flag value: exit %d", code)
	}
	if code, _, errs := runRawCmd(t, DecryptRaw, []byte("not a ciphertext"), "--key", "sm2-enc"); code != ExitUsage || !strings.Contains(errs, "DECRYPTION_FAILED") {
		t.Errorf("decrypt-raw of garbage: exit %d: %s", code, errs)
	}
}

func TestCLIPasswordEnvelope(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cret words\n"), 0o600)
	badFile := filepath.Join(dir, "bad")
	os.WriteFile(badFile, []byte("other words\n"), 0o600)
	data := []byte("for whoever knows the password")
	code, env, errs := runRawCmd(t, Envelope, data, "--password-file", pwFile, "--pbkdf2-iterations", "2000", "--cipher", "aes256-cbc")
	if code != ExitOK {
		t.Fatalf("envelope --password-file: exit %d: %s", code, errs)
	}
	// OpenSSL reads it with the same password.
	envFile := filepath.Join(dir, "env.der")
	os.WriteFile(envFile, env, 0o600)
	if out := opensslRun(t, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", envFile, "-pwri_password", "s3cret words"); !bytes.Equal(out, data) {
		t.Fatalf("openssl: %q", out)
	}
	code, pt, errs := runRawCmd(t, Decrypt, env, "--password-file", pwFile)
	if code != ExitOK || !bytes.Equal(pt, data) {
		t.Fatalf("decrypt --password-file: exit %d: %s", code, errs)
	}
	t.Setenv("SIGNSVR_TEST_PW", "s3cret words")
	if code, pt, errs := runRawCmd(t, Decrypt, env, "--password-env", "SIGNSVR_TEST_PW"); code != ExitOK || !bytes.Equal(pt, data) {
		t.Fatalf("decrypt --password-env: exit %d: %s", code, errs)
	}
	if code, _, errs := runRawCmd(t, Decrypt, env, "--password-file", badFile); code != ExitUsage || !strings.Contains(errs, "DECRYPTION_FAILED") {
		t.Fatalf("decrypt with the wrong password: exit %d: %s", code, errs)
	}
	if code, _, _ := runRawCmd(t, Decrypt, env, "--password-file", pwFile, "--key", "rsa-enc"); code != ExitUsage {
		t.Fatalf("decrypt with a key and a password: exit %d", code)
	}
	// Cofactor ECDH to an EC key.
	code, env, errs = runRawCmd(t, Envelope, data, "--to", "ecdsa-enc", "--ecdh-cofactor")
	if code != ExitOK {
		t.Fatalf("envelope --ecdh-cofactor: exit %d: %s", code, errs)
	}
	if code, pt, errs := runRawCmd(t, Decrypt, env, "--key", "ecdsa-enc"); code != ExitOK || !bytes.Equal(pt, data) {
		t.Fatalf("decrypt cofactor: exit %d: %s", code, errs)
	}
}
