package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileCommandsStream: sign, verify, envelope and decrypt stream files through
// StreamService, attached, detached and from a digest computed here; outputs are
// written only on success; no progress bar when stderr is not a terminal.
func TestFileCommandsStream(t *testing.T) {
	ds := startServe(t, "--data-dir", filepath.Join(t.TempDir(), "data"))
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	data := make([]byte, 9<<20+3)
	for i := range data {
		data[i] = byte(i*13 + i>>9)
	}
	if err := os.WriteFile(p("doc"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(want int, args ...string) string {
		t.Helper()
		code, _, errs := cli(t, ds.addr, nil, args...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d: %s", args, code, want, errs)
		}
		if want == 0 && errs != "" {
			t.Fatalf("%v wrote to stderr (no terminal, so no progress bar): %q", args, errs)
		}
		return errs
	}
	for _, key := range []string{"rsa-sign", "sm2-sign"} {
		run(0, "sign", "--key", key, "--in", p("doc"), "--out", p("att.p7"))
		run(0, "verify", "--in", p("att.p7"), "--out", p("back"))
		if back, _ := os.ReadFile(p("back")); !bytes.Equal(back, data) {
			t.Fatalf("%s: the content extracted by verify differs", key)
		}
		run(0, "sign", "--key", key, "--detached", "--pem", "--in", p("doc"), "--out", p("det.pem"))
		run(0, "verify", "--in", p("det.pem"), "--content", p("doc"))
		run(0, "verify", "--in", p("det.pem"), "--content", p("doc"), "--digest-only")
		run(0, "sign", "--key", key, "--digest-only", "--in", p("doc"), "--out", p("dig.p7"))
		run(0, "verify", "--in", p("dig.p7"), "--content", p("doc"))
		os.WriteFile(p("other"), append(bytes.Clone(data), 1), 0o600)
		run(1, "verify", "--in", p("dig.p7"), "--content", p("other"))
	}
	if bin, err := exec.LookPath("openssl"); err == nil {
		// A signature from a digest made here verifies with openssl cms -content.
		// (-noverify: the chain is checked in internal/server's tests; here the
		// signature over the file.)
		run(0, "sign", "--key", "rsa-sign", "--digest-only", "--in", p("doc"), "--out", p("dig.p7"))
		cmd := exec.Command(bin, "cms", "-verify", "-binary", "-inform", "DER", "-in", p("dig.p7"), "-content", p("doc"), "-noverify", "-out", os.DevNull)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Verification successful") {
			t.Fatalf("openssl: %v %s", err, out)
		}
	}
	for _, cipher := range []string{"aes256-gcm", "aes128-cbc"} {
		run(0, "envelope", "--to", "rsa-enc", "--cipher", cipher, "--in", p("doc"), "--out", p("env"))
		run(0, "decrypt", "--key", "rsa-enc", "--in", p("env"), "--out", p("plain"))
		if plain, _ := os.ReadFile(p("plain")); !bytes.Equal(plain, data) {
			t.Fatalf("%s: decrypted content differs", cipher)
		}
	}
	// A failed decryption (DECRYPTION_FAILED, input refused: exit 2) leaves no
	// output file, nor a partial one.
	run(exitUsage, "decrypt", "--key", "ecdsa-enc", "--in", p("env"), "--out", p("nothing"))
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() == "nothing" || strings.Contains(e.Name(), ".part-") {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}
