package auditcmd

// signsvr audit find: the records of the operations that made or verified an
// object.
//
// An op record holds digests, never bytes (pkg/audit, "What in and out name"): a
// Sign's record the digest of the content and of the SignedData's signerInfos, a
// Verify's the signerInfos of the message it was shown, other operations the digest
// of their main input and output. So for each object presented, find computes
// every digest a record could hold for it, in every hash the logs use: the whole
// file, the DER of each PEM block in it, and for a SignedData its signerInfos SET and
// its content. Then it reads the logs once and prints each record whose in or out
// is one of them. A signature matches by its signerInfos whatever happened to the
// object around them: certificates stripped, content detached, re-encoded.

import (
	"bufio"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"signsvr.dev/signsvr/pkg/audit"
	"signsvr.dev/signsvr/pkg/cms"
)

const findUsage = `usage: signsvr audit find --log DIR|FILE [--log ...] OBJECT...

Prints the audit records of the operations that made or were shown each OBJECT (a
CMS file in DER or PEM, or any file: a content, an envelope): every record whose
input or output digest is the file's, its PEM blocks', or, for a SignedData, its
signerInfos' or its content's. Exit code 0 when a record was found for every
object, 1 when one has none, 2 usage or I/O error. The chain is not checked here:
run signsvr audit verify for that.
`

type logFlags []string

func (l *logFlags) String() string     { return strings.Join(*l, ",") }
func (l *logFlags) Set(v string) error { *l = append(*l, v); return nil }

// part is one thing of an object a record may have digested.
type part struct {
	object int
	what   string // "file", "PEM block 1", "signerInfos", "content"
	data   []byte
}

func find(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signsvr audit find", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, findUsage); fs.PrintDefaults() }
	var logs logFlags
	fs.Var(&logs, "log", "an audit log file, or a directory of them (repeatable)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if len(logs) == 0 || fs.NArg() == 0 {
		fmt.Fprint(stderr, "signsvr audit find: give --log and at least one object\n")
		fs.Usage()
		return ExitUsage
	}
	files, err := expand(logs)
	if err != nil {
		fmt.Fprintf(stderr, "signsvr audit find: %v\n", err)
		return ExitUsage
	}
	sort.Strings(files)
	objects := fs.Args()
	var parts []part
	for i, name := range objects {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "signsvr audit find: %v\n", err)
			return ExitUsage
		}
		parts = append(parts, objectParts(i, data)...)
	}
	f := finder{parts: parts, digests: map[string][]int{}, hashed: map[audit.HashAlg]bool{}}
	found := make([][]string, len(objects))
	for _, path := range files {
		if err := f.scan(path, func(e *audit.Entry, hits []hit) {
			seen := map[int]bool{}
			for _, h := range hits {
				p := parts[h.part]
				if seen[p.object] {
					continue
				}
				seen[p.object] = true
				found[p.object] = append(found[p.object], describe(e, hits, parts, p.object))
			}
		}); err != nil {
			fmt.Fprintf(stderr, "signsvr audit find: %v\n", err)
			return ExitUsage
		}
	}
	code := ExitOK
	for i, name := range objects {
		if len(found[i]) == 0 {
			fmt.Fprintf(stdout, "%s: no record\n", name)
			code = ExitProblem
			continue
		}
		fmt.Fprintf(stdout, "%s: %d record(s)\n", name, len(found[i]))
		for _, line := range found[i] {
			fmt.Fprintf(stdout, "  %s\n", line)
		}
	}
	return code
}

// objectParts lists what of data a record may have digested: data itself, the DER
// of its PEM blocks, and for each of those that is a SignedData its signerInfos
// and content.
func objectParts(i int, data []byte) []part {
	parts := []part{{i, "file", data}}
	ders := [][]byte{data}
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		parts = append(parts, part{i, fmt.Sprintf("PEM block %d", n), b.Bytes})
		ders = append(ders, b.Bytes)
	}
	for _, der := range ders {
		if si, err := cms.SignerInfosDER(der); err == nil {
			parts = append(parts, part{i, "signerInfos", si})
		}
		if sd, err := cms.ParseSignedDataContentInfo(der); err == nil && sd.EContent != nil {
			parts = append(parts, part{i, "content", sd.EContent})
		}
	}
	return parts
}

// finder matches records against the parts' digests, computed for each hash the
// logs use as it meets them.
type finder struct {
	parts   []part
	digests map[string][]int // "alg:hex" -> indexes into parts
	hashed  map[audit.HashAlg]bool
}

func (f *finder) digestsIn(alg audit.HashAlg) {
	if f.hashed[alg] {
		return
	}
	f.hashed[alg] = true
	for i, p := range f.parts {
		d := alg.Sum(p.data)
		k := string(alg) + ":" + hex.EncodeToString(d)
		f.digests[k] = append(f.digests[k], i)
	}
}

// hit is a part whose digest a record holds, and the record's field that holds it.
type hit struct {
	part  int
	field string // "in" or "out"
}

// scan reads one log file and calls found for every op record that holds a digest
// of a part, with the parts it matched.
func (f *finder) scan(path string, found func(e *audit.Entry, hits []hit)) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 0, 64<<10), 2<<20)
	for line := 1; sc.Scan(); line++ {
		e, err := audit.ParseLine(sc.Bytes())
		if err != nil {
			if errors.Is(err, audit.ErrMalformed) {
				continue // a torn or damaged line: audit verify reports it
			}
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if e.Type != "op" {
			continue
		}
		var hits []hit
		for _, fd := range []struct{ field, d string }{{"in", e.In}, {"out", e.Out}} {
			if fd.d == "" {
				continue
			}
			if alg, _, ok := strings.Cut(fd.d, ":"); ok {
				f.digestsIn(audit.HashAlg(alg))
			}
			for _, i := range f.digests[fd.d] {
				hits = append(hits, hit{i, fd.field})
			}
		}
		if len(hits) > 0 {
			found(e, hits)
		}
	}
	return sc.Err()
}

// describe is the line printed for record e, which matched object obj.
func describe(e *audit.Entry, hits []hit, parts []part, obj int) string {
	var how []string
	for _, h := range hits {
		if parts[h.part].object != obj {
			continue
		}
		how = append(how, h.field+" = "+parts[h.part].what)
	}
	caller := ""
	if e.Caller != nil {
		caller = e.Caller.Kind
		if e.Caller.Subject != "" {
			caller += " " + e.Caller.Subject
		}
	}
	s := fmt.Sprintf("replica %s seq %d %s op %s key %q caller %q code %s", e.Replica, e.Seq, e.Time, e.Op, e.Key, caller, e.Code)
	if e.Reason != "" {
		s += " reason " + e.Reason
	}
	return s + " (" + strings.Join(dedup(how), ", ") + ")"
}

func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}
