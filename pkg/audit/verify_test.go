package audit

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
)

// fixture writes a log of three files: start checkpoint, 25 operation records with a
// checkpoint after every fifth (called directly, so positions are deterministic), and
// the final checkpoint of Close. It returns the template directory.
func fixture(t *testing.T, k auditKey) string {
	t.Helper()
	cfg := testLogConfig(t)
	cfg.MaxFileBytes = 6000
	l := openLog(t, cfg, k)
	for i := 0; i < 25; i++ {
		appendN(t, l, i, 1)
		if (i+1)%5 == 0 {
			if err := l.checkpoint(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.Dir
}

func copyDir(t *testing.T, src string) []string {
	t.Helper()
	dst := t.TempDir()
	var out []string
	for _, f := range logFiles(t, src) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, filepath.Base(f))
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// pos is a line of the fixture: file index and 1-based line.
type pos struct{ file, line int }

func seqAt(t *testing.T, files []string, p pos) uint64 {
	e, err := ParseLine(bytes.TrimSuffix(readLines(t, files[p.file])[p.line-1], []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	return e.Seq
}

// firstCheckpointAfter finds the first checkpoint line after p.
func firstCheckpointAfter(t *testing.T, files []string, p pos) pos {
	for fi := p.file; fi < len(files); fi++ {
		for li, line := range readLines(t, files[fi]) {
			if (fi == p.file && li+1 <= p.line) || !bytes.Contains(line, []byte(`"type":"checkpoint"`)) {
				continue
			}
			return pos{fi, li + 1}
		}
	}
	t.Fatal("no checkpoint after", p)
	return pos{}
}

func editLine(t *testing.T, files []string, p pos, edit func([]byte) []byte) {
	lines := readLines(t, files[p.file])
	lines[p.line-1] = edit(lines[p.line-1])
	writeLines(t, files[p.file], lines)
}

func TestVerifyCatchesTampering(t *testing.T) {
	k := newAuditKey(t, devpki.ECDSAP256)
	attacker := newAuditKey(t, devpki.ECDSAP384)
	tmpl := fixture(t, k)
	files := logFiles(t, tmpl)
	if len(files) < 3 {
		t.Fatalf("fixture has %d files, want 3 or more", len(files))
	}
	lastFile := len(files) - 1
	lastLine := len(readLines(t, files[lastFile]))
	middleLast := len(readLines(t, files[0]))

	type want struct {
		kind   ProblemKind
		at     pos
		detail string
	}
	attackerSign := func(realFP bool) func([]byte) ([]byte, string) {
		return func(msg []byte) ([]byte, string) {
			h := crypto.SHA384.New()
			h.Write(msg)
			sig, err := attacker.signer.Sign(nil, h.Sum(nil), crypto.SHA384)
			if err != nil {
				t.Fatal(err)
			}
			if realFP {
				return sig, CertFingerprint(k.cert)
			}
			return sig, CertFingerprint(attacker.cert)
		}
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, files []string) []string
		want   func(t *testing.T, files []string) want
	}{
		{"edit a field", func(t *testing.T, f []string) []string {
			editLine(t, f, pos{1, 4}, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"key":"customs-sm2-sign"`), []byte(`"key":"customs-rsa-sign"`), 1)
			})
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemEdited, pos{1, 4}, "does not match its hash"} }},
		{"edit a field and recompute its hash", func(t *testing.T, f []string) []string {
			editLine(t, f, pos{1, 4}, func(b []byte) []byte {
				b = bytes.TrimSuffix(b, []byte("\n"))
				b = bytes.Replace(b, []byte(`"code":"OK"`), []byte(`"code":"PermissionDenied"`), 1)
				body := b[:bytes.LastIndex(b, hashMember)]
				s := sha256.Sum256(body)
				return append(append(append(body, hashMember...), appendDigest(nil, SHA256, s[:])...), `"}`+"\n"...)
			})
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemEdited, pos{1, 4}, "hash recomputed"} }},
		{"edit a field and recompute the whole chain", func(t *testing.T, f []string) []string {
			editLine(t, f, pos{1, 4}, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"code":"OK"`), []byte(`"code":"PermissionDenied"`), 1)
			})
			rechain(t, f, nil)
			return f
		}, func(t *testing.T, f []string) want {
			return want{ProblemBadCheckpoint, firstCheckpointAfter(t, f, pos{1, 4}), "does not verify"}
		}},
		{"delete a record", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			writeLines(t, f[1], append(lines[:3:3], lines[4:]...))
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemMissing, pos{1, 4}, "missing"} }},
		{"delete a record and recompute the chain", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			writeLines(t, f[1], append(lines[:3:3], lines[4:]...))
			rechain(t, f, nil)
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemMissing, pos{1, 4}, "missing"} }},
		{"swap two records", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			lines[3], lines[4] = lines[4], lines[3]
			writeLines(t, f[1], lines)
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemReordered, pos{1, 4}, "comes before"} }},
		{"duplicate a record", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			writeLines(t, f[1], append(lines[:4:4], lines[3:]...))
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemReordered, pos{1, 5}, "duplicated"} }},
		{"insert a line that is not a record", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			writeLines(t, f[1], append(lines[:2:2], append([][]byte{[]byte("{\"seq\":3}\n")}, lines[2:]...)...))
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemMalformed, pos{1, 3}, "hash"} }},
		{"truncate the last file inside a record", func(t *testing.T, f []string) []string {
			data, _ := os.ReadFile(f[lastFile])
			os.WriteFile(f[lastFile], data[:len(data)-40], 0o640)
			return f
		}, func(t *testing.T, f []string) want {
			return want{ProblemTruncated, pos{lastFile, lastLine}, "ends inside a record"}
		}},
		{"truncate a middle file inside a record", func(t *testing.T, f []string) []string {
			data, _ := os.ReadFile(f[0])
			os.WriteFile(f[0], data[:len(data)-100], 0o640)
			return f
		}, func(t *testing.T, f []string) want {
			return want{ProblemTruncated, pos{0, middleLast}, "no later file accounts"}
		}},
		{"remove a middle file", func(t *testing.T, f []string) []string {
			os.Remove(f[1])
			return append([]string{f[0]}, f[2:]...)
		}, func(t *testing.T, f []string) want { return want{ProblemMissingFile, pos{1, 1}, "files are missing"} }},
		{"remove the first file", func(t *testing.T, f []string) []string {
			os.Remove(f[0])
			return f[1:]
		}, func(t *testing.T, f []string) want { return want{ProblemMissingFile, pos{0, 1}, "was not given"} }},
		{"forge checkpoints with another key", func(t *testing.T, f []string) []string {
			editLine(t, f, pos{1, 4}, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"code":"OK"`), []byte(`"code":"PermissionDenied"`), 1)
			})
			rechain(t, f, attackerSign(false))
			return f
		}, func(t *testing.T, f []string) want {
			return want{ProblemBadCheckpoint, pos{0, 2}, "not an audit certificate given"}
		}},
		{"forge checkpoints naming the audit certificate", func(t *testing.T, f []string) []string {
			rechain(t, f, attackerSign(true))
			return f
		}, func(t *testing.T, f []string) want { return want{ProblemBadCheckpoint, pos{0, 2}, "does not verify"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := copyDir(t, tmpl)
			orig := append([]string(nil), files...)
			w := tc.want(t, orig)
			wantSeq := uint64(0)
			if w.kind != ProblemTruncated && w.kind != ProblemMalformed && w.kind != ProblemMissingFile {
				wantSeq = seqAt(t, orig, w.at)
			}
			files = tc.mutate(t, files)
			if w.kind == ProblemMissing || w.kind == ProblemReordered || w.kind == ProblemMissingFile {
				wantSeq = seqAt(t, files, w.at)
			}
			rep, err := Verify(files, k.cert)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problem == nil {
				t.Fatalf("no problem found; report %+v", rep)
			}
			p := rep.Problem
			if p.Kind != w.kind || p.File != files[w.at.file] || p.Line != w.at.line || !strings.Contains(p.Detail, w.detail) {
				t.Fatalf("problem %s\nwant %s at %s:%d containing %q", p, w.kind, files[w.at.file], w.at.line, w.detail)
			}
			if wantSeq != 0 && p.Seq != wantSeq {
				t.Fatalf("problem seq %d, want %d (%s)", p.Seq, wantSeq, p)
			}
			if rep.OK() {
				t.Fatal("report OK despite a problem")
			}
		})
	}

	t.Run("untouched", func(t *testing.T) {
		rep, err := Verify(copyDir(t, tmpl), k.cert)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || !rep.Closed || rep.Files != len(files) || rep.Checkpoints != 7 || rep.LastSeq != uint64(rep.Records) {
			t.Fatalf("report %+v, problem %v", rep, rep.Problem)
		}
	})
	t.Run("truncate after a whole record", func(t *testing.T) {
		files := copyDir(t, tmpl)
		lines := readLines(t, files[lastFile])
		writeLines(t, files[lastFile], lines[:len(lines)-3])
		rep, err := Verify(files, k.cert)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problem != nil || rep.OK() || rep.Closed || rep.UnsignedTail == 0 || rep.LastLine != len(lines)-3 {
			t.Fatalf("report %+v, problem %v", rep, rep.Problem)
		}
		var out bytes.Buffer
		rep.WriteText(&out)
		if !strings.Contains(out.String(), "unsigned tail") {
			t.Fatalf("text report does not mention the unsigned tail:\n%s", out.String())
		}
	})
	t.Run("partial set", func(t *testing.T) {
		files := copyDir(t, tmpl)
		rep, err := VerifyWith(files[1:], VerifyOptions{Certs: nil, Partial: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problem != nil || rep.SignaturesChecked || rep.OK() {
			t.Fatalf("report %+v, problem %v", rep, rep.Problem)
		}
		rep, err = VerifyWith(files[1:], VerifyOptions{Certs: []*smx509.Certificate{k.cert}, Partial: true})
		if err != nil || !rep.OK() {
			t.Fatalf("partial set with cert: %v %+v %v", err, rep, rep.Problem)
		}
	})
	t.Run("files given out of order", func(t *testing.T) {
		files := copyDir(t, tmpl)
		rep, err := Verify(append([]string{files[2], files[0], files[1]}, files[3:]...), k.cert)
		if err != nil || !rep.OK() {
			t.Fatalf("%v %+v", err, rep)
		}
	})
	t.Run("wrong certificate", func(t *testing.T) {
		rep, err := Verify(copyDir(t, tmpl), attacker.cert)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problem == nil || rep.Problem.Kind != ProblemBadCheckpoint {
			t.Fatalf("report %+v", rep)
		}
	})
}
