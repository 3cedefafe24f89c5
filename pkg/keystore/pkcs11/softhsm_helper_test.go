//go:build cgo

package pkcs11

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
)

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// softHSM is one SoftHSM2 installation private to a test: its own configuration and
// token directory in t.TempDir(), selected through SOFTHSM2_CONF. The library reads
// that variable at C_Initialize, and the module registry finalises the library when
// the last store of a test closes, so tests do not see each other's tokens.
type softHSM struct {
	t        testing.TB
	dir      string
	conf     string
	tokenDir string
	pinFile  string
	pin      string
}

func requireSoftHSM(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(softhsmModule); err != nil {
		t.Fatalf("SoftHSM2 is not installed (%s missing): `make test` installs it (apt-get install softhsm2)", softhsmModule)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		t.Fatal("softhsm2-util is not installed: `make test` installs it (apt-get install softhsm2)")
	}
}

func newSoftHSM(t testing.TB) *softHSM {
	t.Helper()
	requireSoftHSM(t)
	dir := t.TempDir()
	s := &softHSM{t: t, dir: dir, conf: filepath.Join(dir, "softhsm2.conf"), tokenDir: filepath.Join(dir, "tokens"),
		pinFile: filepath.Join(dir, "pin"), pin: "123456"}
	if err := os.MkdirAll(s.tokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := "directories.tokendir = " + s.tokenDir + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.pinFile, []byte(s.pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", s.conf)
	return s
}

// initToken makes a token with the given label (softhsm2-util --init-token --free).
func (s *softHSM) initToken(label string) {
	s.t.Helper()
	s.util("--init-token", "--free", "--label", label, "--so-pin", "12345678", "--pin", s.pin)
}

// initTokenIn makes a token with the given label and the same PIN in tokenDir, a token
// directory of its own that this installation's library does not read until it is
// moved to s.tokenDir.
func (s *softHSM) initTokenIn(tokenDir, label string) {
	s.t.Helper()
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	conf := tokenDir + ".conf"
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokenDir+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.utilConf(conf, "--init-token", "--free", "--label", label, "--so-pin", "12345678", "--pin", s.pin)
}

func (s *softHSM) util(args ...string) string {
	s.t.Helper()
	return s.utilConf(s.conf, args...)
}

func (s *softHSM) utilConf(conf string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("softhsm2-util", args...)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("softhsm2-util %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *softHSM) tokenConfig(label string) TokenConfig {
	return TokenConfig{Module: softhsmModule, Label: label, PINFile: s.pinFile}
}

func (s *softHSM) provision(ctx context.Context, tc TokenConfig, ca *keystoretest.CA, plans []keyPlan) []KeyConfig {
	s.t.Helper()
	return provisionKeys(s.t, ctx, openModule, s.dir, tc, ca, plans)
}
