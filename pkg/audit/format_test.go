package audit

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/keystore"
)

// A log written by the signsvr-audit/1 writer (testdata/v1, kept as it wrote it)
// still verifies, alone and continued by today's writer, whose files say
// signsvr-audit/2: the chain runs on across the change of format.
func TestVerifyFormatV1Log(t *testing.T) {
	src, err := filepath.Glob(filepath.Join("testdata", "v1", "audit-v1-*.jsonl"))
	if err != nil || len(src) == 0 {
		t.Fatalf("fixture: %v", err)
	}
	pem, err := os.ReadFile(filepath.Join("testdata", "v1", "audit.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := keystore.ParseCertificatesPEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range src {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := logFiles(t, dir)
	for _, f := range old {
		if h, err := FileHeader(f); err != nil || h.Format != formatV1 {
			t.Fatalf("%s: header %+v, %v", f, h, err)
		}
	}
	if rep, err := VerifyWith(old, VerifyOptions{Certs: certs}); err != nil || !rep.OK() {
		t.Fatalf("the /1 log alone: %+v, %v", rep, err)
	}

	k := newAuditKey(t, devpki.ECDSAP256)
	cfg := testLogConfig(t)
	cfg.Dir, cfg.ReplicaID = dir, "v1"
	l, err := New(cfg, k.signer, k.cert, (&fakeClock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}).now)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	all := logFiles(t, dir)
	if len(all) != len(old)+1 {
		t.Fatalf("%d files, want %d", len(all), len(old)+1)
	}
	if h, err := FileHeader(all[len(all)-1]); err != nil || h.Format != formatName || formatName != "signsvr-audit/2" {
		t.Fatalf("new file's header %+v, %v", h, err)
	}
	rep, err := VerifyWith(all, VerifyOptions{Certs: append(certs, k.cert)})
	if err != nil || !rep.OK() {
		t.Fatalf("the /1 log continued in /2: %+v, %v", rep, err)
	}
}
