package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/app"
)

// shared is one development server for the CLI tests, started by TestMain.
var shared struct {
	addr    string
	dataDir string
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "signsvr-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	shared.dataDir = filepath.Join(dir, "signsvr-data")
	var logs lockedBuffer
	srv, err := app.New(app.Options{DataDir: shared.dataDir, Listen: "127.0.0.1:0", LogLevel: "warn",
		GCPercent: app.DefaultGCPercent, MemoryLimit: app.DefaultMemoryLimit, Log: &logs})
	if err != nil {
		fmt.Fprintf(os.Stderr, "shared server: %v\n", err)
		return 1
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a net.Addr) { addrc <- a.String() }) }()
	select {
	case shared.addr = <-addrc:
	case <-done:
		fmt.Fprintf(os.Stderr, "shared server did not start:\n%s", logs.String())
		cancel()
		return 1
	}
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintf(os.Stderr, "shared server failed: %v\n%s", err, logs.String())
		return 1
	}
	return code
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cli runs a command line against the server at addr (given before the command
// name, as a script may) and returns exit code, stdout, stderr.
func cli(t *testing.T, addr string, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	var stdout bytes.Buffer
	var stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, append([]string{"--addr", addr}, args...), bytes.NewReader(stdin), &stdout, &stderr)
	return code, stdout.Bytes(), stderr.String()
}

func devFile(parts ...string) string {
	return filepath.Join(append([]string{shared.dataDir}, parts...)...)
}

func TestCLISignVerify(t *testing.T) {
	data := []byte("customs declaration via the CLI\n")
	for _, fam := range []string{"rsa", "ecdsa", "sm2"} {
		t.Run(fam, func(t *testing.T) {
			code, sig, errs := cli(t, shared.addr, data, "sign", "--key", fam+"-sign")
			if code != 0 || len(sig) == 0 {
				t.Fatalf("sign: exit %d: %s", code, errs)
			}
			if sig[0] != 0x30 {
				t.Fatalf("sign output is not DER")
			}
			code, out, errs := cli(t, shared.addr, sig, "verify")
			if code != 0 || !strings.Contains(string(out), "verified: yes") {
				t.Fatalf("verify: exit %d\n%s%s", code, out, errs)
			}
			if !strings.Contains(string(out), "certificate GOOD") || !strings.Contains(string(out), fam+"-sign") {
				t.Errorf("verify summary: %s", out)
			}

			// PEM, through files, with the content written out.
			dir := t.TempDir()
			in := filepath.Join(dir, "data")
			os.WriteFile(in, data, 0o600)
			sigFile := filepath.Join(dir, "sig.pem")
			if code, _, errs := cli(t, shared.addr, nil, "sign", "--key", fam+"-sign", "--pem", "--in", in, "--out", sigFile); code != 0 {
				t.Fatalf("sign --pem: %s", errs)
			}
			pemSig, _ := os.ReadFile(sigFile)
			if !bytes.HasPrefix(pemSig, []byte("-----BEGIN CMS-----")) {
				t.Fatalf("--pem output: %.40q", pemSig)
			}
			contentOut := filepath.Join(dir, "content")
			if code, _, errs := cli(t, shared.addr, nil, "verify", "--in", sigFile, "--out", contentOut); code != 0 {
				t.Fatalf("verify --in PEM: %s", errs)
			}
			if got, _ := os.ReadFile(contentOut); !bytes.Equal(got, data) {
				t.Errorf("verify --out wrote %q", got)
			}
			if fam != "sm2" {
				// OpenSSL reads the PEM form.
				out := opensslRun(t, "cms", "-verify", "-binary", "-inform", "PEM", "-in", sigFile, "-CAfile", devFile("roots.pem"))
				if !bytes.Equal(out, data) {
					t.Errorf("openssl reads %q", out)
				}
			}
		})
	}
}

func TestCLIDetachedAndJSON(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	other := filepath.Join(dir, "other")
	os.WriteFile(data, []byte("the real content"), 0o600)
	os.WriteFile(other, []byte("forged content"), 0o600)
	sig := filepath.Join(dir, "sig.der")
	if code, _, errs := cli(t, shared.addr, nil, "sign", "--key", "ecdsa-sign", "--detached", "--in", data, "--out", sig); code != 0 {
		t.Fatalf("sign --detached: %s", errs)
	}
	if code, out, errs := cli(t, shared.addr, nil, "verify", "--in", sig, "--content", data); code != 0 {
		t.Fatalf("verify --content: exit %d %s %s", code, out, errs)
	}
	code, out, _ := cli(t, shared.addr, nil, "verify", "--in", sig, "--content", other)
	if code != ExitFailure || !strings.Contains(string(out), "verified: NO") || !strings.Contains(string(out), "INVALID") {
		t.Fatalf("verify of forged content: exit %d\n%s", code, out)
	}
	code, out, _ = cli(t, shared.addr, nil, "verify", "--json", "--in", sig, "--content", other)
	if code != ExitFailure {
		t.Errorf("verify --json of forged content: exit %d", code)
	}
	var res struct {
		Verified bool `json:"verified"`
		Signers  []struct {
			Signature struct {
				Valid  bool   `json:"valid"`
				Reason string `json:"reason"`
			} `json:"signature"`
			CertificateVerdict struct {
				Status string `json:"status"`
			} `json:"certificateVerdict"`
		} `json:"signers"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	if res.Verified || len(res.Signers) != 1 || res.Signers[0].Signature.Valid || res.Signers[0].Signature.Reason == "" ||
		res.Signers[0].CertificateVerdict.Status != "CERTIFICATE_STATUS_GOOD" {
		t.Errorf("verify --json: %s", out)
	}
}

func TestCLIEnvelopeDecrypt(t *testing.T) {
	data := []byte("sealed for the customs backend\n")
	for _, fam := range []string{"rsa", "ecdsa", "sm2"} {
		t.Run(fam, func(t *testing.T) {
			code, env, errs := cli(t, shared.addr, data, "envelope", "--to", fam+"-enc")
			if code != 0 {
				t.Fatalf("envelope --to: %s", errs)
			}
			code, out, errs := cli(t, shared.addr, env, "decrypt", "--key", fam+"-enc")
			if code != 0 || !bytes.Equal(out, data) {
				t.Fatalf("decrypt: exit %d %q %s", code, out, errs)
			}
			// By certificate file (the chain PEM: its leaf is the recipient), PEM output.
			code, envPEM, errs := cli(t, shared.addr, data, "envelope", "--pem", "--cert", devFile("keys", fam+"-enc.chain.pem"))
			if code != 0 || !bytes.HasPrefix(envPEM, []byte("-----BEGIN CMS-----")) {
				t.Fatalf("envelope --cert --pem: exit %d %s", code, errs)
			}
			code, out, errs = cli(t, shared.addr, envPEM, "decrypt", "--key", fam+"-enc")
			if code != 0 || !bytes.Equal(out, data) {
				t.Fatalf("decrypt of PEM: exit %d %q %s", code, out, errs)
			}
		})
	}
	t.Run("wrong-key", func(t *testing.T) {
		_, env, _ := cli(t, shared.addr, data, "envelope", "--to", "rsa-enc", "--cipher", "aes256-cbc")
		code, out, errs := cli(t, shared.addr, env, "decrypt", "--key", "ecdsa-enc")
		if code != ExitUsage || len(out) != 0 || !strings.Contains(errs, "DECRYPTION_FAILED") {
			t.Fatalf("decrypt with the wrong key: exit %d, stdout %q, stderr %s", code, out, errs)
		}
	})
	t.Run("openssl-decrypts", func(t *testing.T) {
		dir := t.TempDir()
		envFile := filepath.Join(dir, "env.pem")
		if code, _, errs := cli(t, shared.addr, data, "envelope", "--to", "rsa-enc", "--pem", "--out", envFile); code != 0 {
			t.Fatal(errs)
		}
		leaf := filepath.Join(dir, "leaf.pem")
		os.WriteFile(leaf, opensslRun(t, "x509", "-in", devFile("keys", "rsa-enc.chain.pem")), 0o600)
		out := opensslRun(t, "cms", "-decrypt", "-binary", "-inform", "PEM", "-in", envFile,
			"-inkey", devFile("keys", "rsa-enc.key.pem"), "-recip", leaf)
		if !bytes.Equal(out, data) {
			t.Errorf("openssl decrypts %q", out)
		}
	})
}

func TestCLIErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown key", []string{"sign", "--key", "no-such-key"}, ExitServer, "NotFound (KEY_NOT_FOUND)"},
		{"sign without key", []string{"sign"}, ExitUsage, "--key is required"},
		{"bad digest", []string{"sign", "--key", "rsa-sign", "--digest", "md5"}, ExitUsage, "--digest"},
		{"wrong usage", []string{"sign", "--key", "rsa-enc"}, ExitServer, "KEY_USAGE_NOT_ALLOWED"},
		{"malformed", []string{"verify"}, ExitUsage, "MALFORMED_INPUT"},
		{"envelope without recipient", []string{"envelope"}, ExitUsage, "--recipient-keys (--to)"},
		{"decrypt garbage", []string{"decrypt", "--key", "rsa-enc"}, ExitUsage, "MALFORMED_INPUT"},
		{"stray argument", []string{"sign", "--key", "rsa-sign", "file"}, ExitUsage, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := cli(t, shared.addr, []byte("not a CMS message"), tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs, tc.code, tc.want)
			}
			if tc.code != ExitOK && len(out) != 0 {
				t.Errorf("a failed command wrote to stdout: %q", out)
			}
		})
	}
	// No server.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := lis.Addr().String()
	lis.Close()
	code, _, errs := cli(t, dead, nil, "keys", "list", "--timeout", "2s")
	if code != ExitServer || !strings.Contains(errs, "Unavailable") {
		t.Errorf("no server: exit %d %q", code, errs)
	}
}

func TestCLIKeysList(t *testing.T) {
	code, out, errs := cli(t, shared.addr, nil, "keys", "list")
	if code != 0 {
		t.Fatal(errs)
	}
	s := string(out)
	for _, want := range []string{"# rsa-sign\tRSA-2048\tsign", "# ecdsa-enc\tEC-P-256\tdecrypt", "# sm2-sign\tSM2\tsign", "-----BEGIN CERTIFICATE-----"} {
		if !strings.Contains(s, want) {
			t.Errorf("keys list lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "-----BEGIN CERTIFICATE-----"); n != 12 {
		t.Errorf("keys list shows %d certificates, want 12 (leaf + root for 6 keys)", n)
	}
}

func opensslRun(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required (apt-get install openssl): %v", err)
	}
	var stderr strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
