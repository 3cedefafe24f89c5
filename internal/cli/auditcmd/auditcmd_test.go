package auditcmd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/keystore"
)

// writeLogs writes a closed log for each replica into dir and returns the audit
// certificate's PEM file.
func writeLogs(t *testing.T, dir string, replicas ...string) string {
	t.Helper()
	now := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	ca, err := devpki.NewCA(devpki.SM2, "audit CA", now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := ca.Issue(devpki.SM2, devpki.LeafOptions{CommonName: "audit", Usage: keystore.UsageSign, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		cfg := audit.Config{Dir: dir, ReplicaID: r, Hash: audit.SM3, MaxFileBytes: 3000,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		l, err := audit.New(cfg, key, cert, func() time.Time { now = now.Add(time.Second); return now })
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 12; i++ {
			rec := audit.Record{RequestID: "req", Caller: audit.DevCaller("dev"), Op: audit.OpSign, Key: "k", Input: []byte{byte(i)}, Code: "OK"}
			if err := l.Append(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	certPath := filepath.Join(t.TempDir(), "audit.pem")
	if err := devpki.WriteCertsPEM(certPath, cert); err != nil {
		t.Fatal(err)
	}
	return certPath
}

func TestVerifyCommand(t *testing.T) {
	tests := []struct {
		name    string
		args    func(dir, cert string) []string
		mutate  func(t *testing.T, dir string)
		code    int
		outputs []string
	}{
		{"two replicas, whole", func(d, c string) []string { return []string{"verify", "--cert", c, d} }, nil, ExitOK,
			[]string{"replica r1: OK:", "replica r2: OK:", "closed"}},
		{"files listed one by one", func(d, c string) []string {
			m, _ := filepath.Glob(filepath.Join(d, "audit-r2-*.jsonl"))
			return append([]string{"verify", "--cert", c}, m...)
		}, nil, ExitOK, []string{"replica r2: OK:"}},
		{"no certificate", func(d, c string) []string { return []string{"verify", d} }, nil, ExitIncomplete,
			[]string{"INCOMPLETE", "NOT checked"}},
		{"an edited record", func(d, c string) []string { return []string{"verify", "--cert", c, d} }, func(t *testing.T, d string) {
			m, _ := filepath.Glob(filepath.Join(d, "audit-r2-*.jsonl"))
			data, _ := os.ReadFile(m[1])
			os.WriteFile(m[1], bytes.Replace(data, []byte(`"key":"k"`), []byte(`"key":"x"`), 1), 0o640)
		}, ExitProblem, []string{"replica r1: OK:", "replica r2: FAILED: edited at ", ":2 (seq "}},
		{"the final checkpoint cut off", func(d, c string) []string { return []string{"verify", "--cert", c, d} }, func(t *testing.T, d string) {
			m, _ := filepath.Glob(filepath.Join(d, "audit-r1-*.jsonl"))
			last := m[len(m)-1]
			data, _ := os.ReadFile(last)
			lines := bytes.SplitAfter(data, []byte("\n"))
			os.WriteFile(last, bytes.Join(lines[:len(lines)-3], nil), 0o640)
		}, ExitIncomplete, []string{"replica r1: INCOMPLETE", "unsigned tail"}},
		{"a file that is not a log", func(d, c string) []string {
			p := filepath.Join(d, "junk.jsonl")
			os.WriteFile(p, []byte("{}\n"), 0o600)
			return []string{"verify", "--cert", c, d}
		}, nil, ExitProblem, []string{"FAILED: malformed at "}},
		{"no files", func(d, c string) []string { return []string{"verify", "--cert", c} }, nil, ExitUsage, nil},
		{"missing file", func(d, c string) []string { return []string{"verify", filepath.Join(d, "nope.jsonl")} }, nil, ExitUsage, nil},
		{"bad certificate file", func(d, c string) []string { return []string{"verify", "--cert", filepath.Join(d, "nope.pem"), d} }, nil, ExitUsage, nil},
		{"unknown command", func(d, c string) []string { return []string{"rotate"} }, nil, ExitUsage, nil},
		{"no command", func(d, c string) []string { return nil }, nil, ExitUsage, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cert := writeLogs(t, dir, "r1", "r2")
			if tc.mutate != nil {
				tc.mutate(t, dir)
			}
			var stdout, stderr bytes.Buffer
			code := Run(tc.args(dir, cert), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, want := range tc.outputs {
				if !strings.Contains(stdout.String(), want) {
					t.Fatalf("output lacks %q:\n%s", want, stdout.String())
				}
			}
			if tc.code == ExitUsage && stderr.Len() == 0 {
				t.Fatal("usage error without a message")
			}
		})
	}
}
