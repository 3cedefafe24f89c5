package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeDevelopmentAudits: the embedded default audits every call into
// <data-dir>/audit under the development identity, and `signsvr audit verify`
// says OK on the log after a stop.
func TestServeDevelopmentAudits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "signsvr-data")
	ds := startServe(t, "--data-dir", dir)
	if !strings.Contains(ds.stderr.String(), "development audit log") {
		t.Fatalf("the startup log does not mention the audit log:\n%s", ds.stderr.String())
	}
	if code, _, errs := cli(t, ds.addr, []byte("audited document"), "sign", "--key", "ecdsa-sign"); code != 0 {
		t.Fatalf("sign: %d %s", code, errs)
	}
	if code, _, _ := cli(t, ds.addr, []byte("x"), "sign", "--key", "no-such-key"); code == 0 {
		t.Fatal("sign with an unknown key succeeded")
	}
	ds.shutdown(t)

	files, err := filepath.Glob(filepath.Join(dir, "audit", "audit-dev-*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no audit files: %v", err)
	}
	var all strings.Builder
	for _, f := range files {
		all.WriteString(string(readFileT(t, f)))
	}
	for _, want := range []string{`"op":"sign","key":"ecdsa-sign"`, `"code":"NotFound","reason":"KEY_NOT_FOUND"`, `"kind":"dev"`, `"final":true`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the audit log lacks %s:\n%s", want, all.String())
		}
	}
	var out, errOut strings.Builder
	args := append([]string{"audit", "verify", "--cert", filepath.Join(dir, "keys", "audit.chain.pem")}, files...)
	if code := run(t.Context(), args, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "OK") {
		t.Fatalf("signsvr audit verify: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

func readFileT(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
