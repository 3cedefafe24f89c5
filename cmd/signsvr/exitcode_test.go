package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProcessExitCodes runs the signsvr command as a process (this test binary in
// the role of main) against the shared development server: the exit status a
// script sees is 0 for a good signature, 1 for a forged one, 2 for a bad flag, 3 for
// a server that cannot be reached.
func TestProcessExitCodes(t *testing.T) {
	signsvr := func(stdin []byte, args ...string) (int, []byte, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out, stderr.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), out, stderr.String()
		}
		t.Fatalf("signsvr %v: %v", args, err)
		return 0, nil, ""
	}
	data := []byte("a declaration signed by a process\n")
	code, sig, errs := signsvr(data, "--addr", shared.addr, "sign", "--key", "ecdsa-sign")
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, errs)
	}
	forged := bytes.Replace(sig, data[:12], []byte("A DECLARATIO"), 1)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	sigFile := filepath.Join(t.TempDir(), "sig")
	os.WriteFile(sigFile, sig, 0o600)
	for _, tc := range []struct {
		name  string
		stdin []byte
		args  []string
		want  int
	}{
		{"good", sig, []string{"verify", "--addr", shared.addr}, exitOK},
		{"forged", forged, []string{"--addr", shared.addr, "verify"}, exitFailure},
		{"bad flag", sig, []string{"verify", "--addr", shared.addr, "--no-such-flag"}, exitUsage},
		{"malformed", []byte("not CMS"), []string{"verify", "--addr", shared.addr}, exitUsage},
		{"dead address", nil, []string{"verify", "--addr", dead, "--in", sigFile, "--timeout", "2s"}, exitServer},
		{"unknown key", data, []string{"sign", "--addr", shared.addr, "--key", "no-such-key"}, exitServer},
		{"version", nil, []string{"version"}, exitOK},
		{"keys alone", nil, []string{"keys"}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, errs := signsvr(tc.stdin, tc.args...); code != tc.want {
				t.Errorf("signsvr %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), code, tc.want, out, errs)
			}
		})
	}
}
