package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"signsvr.dev/signsvr/internal/devpki"
)

// FuzzParseLine feeds the verifier's line parser real lines of every type and their
// mutations. It must never panic, and a line it accepts with a good hash must keep
// its hash good when parsed again (the parser is a pure function of the bytes).
func FuzzParseLine(f *testing.F) {
	k := newAuditKey(f, devpki.ECDSAP256)
	cfg := testLogConfig(f)
	l := openLog(f, cfg, k)
	appendN(f, l, 0, 2)
	if err := l.Append(f.Context(), Record{Caller: DevCaller("dev \u2028\x00"), Op: OpLogin, Key: "\xff\"}", Code: "Unauthenticated"}); err != nil {
		f.Fatal(err)
	}
	l.Close()
	for _, path := range logFiles(f, cfg.Dir) {
		for _, line := range readLines(f, path) {
			f.Add(bytes.TrimSuffix(line, []byte("\n")))
		}
	}
	f.Add([]byte(`{"seq":1,"hash":"sha256:"}`))
	f.Add([]byte(`,"hash":"sm3:00"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		e2, err := ParseLine(line)
		if err != nil || e2.HashOK != e.HashOK || e2.Seq != e.Seq {
			t.Fatalf("parser not deterministic: %v", err)
		}
		if e.Seq == 0 || e.Replica == "" {
			t.Fatalf("accepted a record without seq or replica: %q", line)
		}
	})
}

// FuzzAppendString checks the hand-written JSON string encoder against encoding/json:
// the output always decodes, to the input when it is valid UTF-8, and never holds a
// raw newline (one record, one line).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "nl\n\r\t\x00\x1f", "\xff\xfe", "\u2028\u2029", "中文 SM2", `","hash":"x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		if bytes.IndexByte(b, '\n') >= 0 {
			t.Fatalf("raw newline in %q", b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %q: %v", s, b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("round trip %q -> %q -> %q", s, b, got)
		}
	})
}
