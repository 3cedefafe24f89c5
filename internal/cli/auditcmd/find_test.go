package auditcmd

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/keystore"
)

// TestFindCommand: in an SM3 log, an OpenSSL-made SignedData is found by its
// signerInfos (a verify record) and its content (a sign record's input), in DER
// and in PEM; an envelope by its whole bytes; a file nobody saw is not (exit 1).
func TestFindCommand(t *testing.T) {
	obj, err := os.ReadFile(filepath.Join("..", "..", "..", "pkg", "cms", "testdata", "signed", "ecdsa-attached.der"))
	if err != nil {
		t.Fatal(err)
	}
	si, err := cms.SignerInfosDER(obj)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := cms.ParseSignedDataContentInfo(obj)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	ca, err := devpki.NewCA(devpki.SM2, "audit CA", now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := ca.Issue(devpki.SM2, devpki.LeafOptions{CommonName: "audit", Usage: keystore.UsageSign, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := audit.New(audit.Config{Dir: dir, ReplicaID: "r1", Hash: audit.SM3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		key, cert, func() time.Time { now = now.Add(time.Second); return now })
	if err != nil {
		t.Fatal(err)
	}
	envelope := []byte("an envelope's bytes")
	for _, r := range []audit.Record{
		{Op: audit.OpSign, Key: "k", Input: sd.EContent, Output: []byte("another signature's signerInfos"), Code: "OK"},
		{Op: audit.OpVerify, Input: si, Output: []byte("verdict"), Code: "OK"},
		{Op: audit.OpDecrypt, Key: "e", Input: envelope, Code: "InvalidArgument", Reason: "DECRYPTION_FAILED"},
	} {
		r.RequestID, r.Caller = "req", audit.DevCaller("dev")
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	der := write("sig.der", obj)
	pemFile := write("sig.pem", append([]byte("a note before the block\n"), pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: obj})...))
	env := write("env.der", envelope)
	other := write("other", []byte("nobody saw this"))

	tests := []struct {
		args  []string
		code  int
		wants []string
	}{
		{[]string{der, pemFile}, ExitOK, []string{"sig.der: 2 record(s)", "sig.pem: 2 record(s)", "op sign key \"k\"", "(in = content)",
			"op verify", "(in = signerInfos)", "caller \"dev dev\" code OK", "replica r1 seq "}},
		{[]string{env}, ExitOK, []string{"op decrypt key \"e\"", "code InvalidArgument reason DECRYPTION_FAILED (in = file)"}},
		{[]string{der, other}, ExitProblem, []string{"sig.der: 2 record(s)", "other: no record"}},
	}
	for _, tc := range tests {
		var out, errs bytes.Buffer
		code := Run(append([]string{"find", "--log", dir}, tc.args...), &out, &errs)
		if code != tc.code {
			t.Errorf("find %v: exit %d, want %d\n%s%s", tc.args, code, tc.code, out.String(), errs.String())
		}
		for _, w := range tc.wants {
			if !strings.Contains(out.String(), w) {
				t.Errorf("find %v: no %q in\n%s", tc.args, w, out.String())
			}
		}
	}
	var out, errs bytes.Buffer
	if code := Run([]string{"find", "--log", filepath.Join(dir, "nothing"), der}, &out, &errs); code != ExitUsage {
		t.Errorf("a missing log: exit %d", code)
	}
}
