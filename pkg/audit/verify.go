package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/emmansun/gmsm/smx509"
)

// ProblemKind says what is wrong at the first bad record.
type ProblemKind string

const (
	// ProblemEdited: a record's content does not match its hash, or its hash was
	// recomputed and no longer matches what the next record chained to.
	ProblemEdited ProblemKind = "edited"
	// ProblemMissing: a gap in the sequence numbers (records deleted).
	ProblemMissing ProblemKind = "missing"
	// ProblemReordered: a record appears before one with a lower sequence number,
	// or a sequence number appears twice.
	ProblemReordered ProblemKind = "reordered"
	// ProblemTruncated: a file ends inside a record (crash or truncation) and no
	// later file accounts for it, or bytes a recovery record describes are gone.
	ProblemTruncated ProblemKind = "truncated"
	// ProblemMissingFile: a file of the rotated set is not there.
	ProblemMissingFile ProblemKind = "missing-file"
	// ProblemBadCheckpoint: a checkpoint's signature does not verify with the audit
	// certificate, it names another certificate, or its head is not the chain's.
	ProblemBadCheckpoint ProblemKind = "bad-checkpoint"
	// ProblemMalformed: a line is not a record, or a record is out of place.
	ProblemMalformed ProblemKind = "malformed"
)

// Problem is the first bad record found.
type Problem struct {
	Kind ProblemKind
	File string // path as given to Verify
	Line int    // 1-based line number in File
	// Seq is the record's sequence number, 0 when the line could not be read.
	Seq    uint64
	Detail string
}

func (p *Problem) String() string {
	seq := ""
	if p.Seq != 0 {
		seq = fmt.Sprintf(" (seq %d)", p.Seq)
	}
	return fmt.Sprintf("%s at %s:%d%s: %s", p.Kind, p.File, p.Line, seq, p.Detail)
}

// Recovery is a point where the writer restarted the chain after a crash or a write
// failure. It is not tampering; it says what was lost.
type Recovery struct {
	File string // the file holding the recovered record
	Line int
	Seq  uint64
	// TornFile, TornOffset and TornBytes locate bytes of an incomplete record the
	// writer left in place (TornBytes 0: none).
	TornFile   string
	TornOffset int64
	TornBytes  int64
	Cause      string
}

// Report is the verifier's answer for one replica's log.
type Report struct {
	Replica     string
	Files       int
	Records     int // every line of the chain: headers, operations, checkpoints, recoveries
	Checkpoints int
	FirstSeq    uint64
	LastSeq     uint64
	// SignedThrough is the sequence number the last good checkpoint covers.
	SignedThrough uint64
	// UnsignedTail counts records after SignedThrough (checkpoint records aside):
	// present and chained, but no signature vouches for them, so records after them
	// could have been cut off unnoticed.
	UnsignedTail int
	// Closed is true when the log ends with the final checkpoint of a clean Close.
	Closed bool
	// SignaturesChecked is false when no audit certificate was given.
	SignaturesChecked bool
	Recoveries        []Recovery
	// LastFile and LastLine locate the last record read.
	LastFile string
	LastLine int
	// Problem is the first bad record, nil when the chain is whole.
	Problem *Problem
}

// OK is true when the chain is whole, every checkpoint signature verified with the
// audit certificate, and no record lies after the last checkpoint.
func (r *Report) OK() bool {
	return r.Problem == nil && r.SignaturesChecked && r.UnsignedTail == 0
}

// VerifyOptions adjusts Verify.
type VerifyOptions struct {
	// Certs are the audit certificates whose signatures are accepted (several when
	// the audit key was rotated). With none, signatures are not checked.
	Certs []*smx509.Certificate
	// Partial accepts a set that starts after the first file (older files archived
	// away): the first file's link to its predecessor is taken on trust.
	Partial bool
}

// Verify checks one replica's audit files offline with only the audit certificate:
// the hash chain, every checkpoint signature and the continuity of the rotated files.
// The files may be given in any order; they are ordered by their headers. It returns
// an error only when it cannot do its job (a file unreadable, files of several
// replicas); what it finds is in the Report.
func Verify(files []string, cert *smx509.Certificate) (*Report, error) {
	var opts VerifyOptions
	if cert != nil {
		opts.Certs = []*smx509.Certificate{cert}
	}
	return VerifyWith(files, opts)
}

// FileHeader reads the header record (first line) of an audit file.
func FileHeader(path string) (*Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 4096)
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, malformed("%s: no complete first line", path)
		}
		return nil, err
	}
	e, err := ParseLine(line[:len(line)-1])
	if err != nil {
		return nil, err
	}
	if e.Type != typeFile {
		return nil, malformed("%s: first line is not a file header", path)
	}
	return e, nil
}

type vfile struct {
	path   string
	header *Entry
	second *Entry // the record after the header, if it parses (a recovered record)
}

// VerifyWith is Verify with options.
func VerifyWith(paths []string, opts VerifyOptions) (*Report, error) {
	if len(paths) == 0 {
		return nil, errors.New("audit: no files to verify")
	}
	rep := &Report{SignaturesChecked: len(opts.Certs) > 0}
	var files []vfile
	for _, p := range paths {
		h, err := FileHeader(p)
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				rep.Files = len(paths)
				rep.Problem = &Problem{Kind: ProblemMalformed, File: p, Line: 1, Detail: "first line is not a valid file header: " + err.Error()}
				return rep, nil
			}
			return nil, fmt.Errorf("audit: %w", err)
		}
		files = append(files, vfile{path: p, header: h})
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].header.FileIndex < files[j].header.FileIndex })
	rep.Replica = files[0].header.Replica
	var replicas []string
	for i, f := range files {
		if f.header.Replica != rep.Replica {
			replicas = append(replicas, f.header.Replica)
		}
		if i > 0 && f.header.FileIndex == files[i-1].header.FileIndex {
			return nil, fmt.Errorf("audit: %s and %s have the same file index %d", files[i-1].path, f.path, f.header.FileIndex)
		}
	}
	if len(replicas) > 0 {
		return nil, fmt.Errorf("audit: the files come from several replicas (%s and %s): verify each replica's files separately", rep.Replica, strings.Join(replicas, ", "))
	}
	rep.Files = len(files)
	v := &verifier{opts: opts, rep: rep, files: files}
	for i := range files {
		if err := v.file(i); err != nil {
			return nil, err
		}
		if rep.Problem != nil {
			return rep, nil
		}
	}
	v.finish()
	return rep, nil
}

type pending struct {
	hash       string
	checkpoint bool
}

type verifier struct {
	opts  VerifyOptions
	rep   *Report
	files []vfile

	started  bool
	expected uint64 // next sequence number
	prevHash string
	prevPos  Problem // position of the previous record (Kind unused)
	lastType string
	lastFin  bool
	// pend holds the hashes of records after the last checkpoint, pend[i] being
	// record base+i, for matching the next checkpoint's head.
	base uint64
	pend []pending
	// torn is the torn region at the end of the previous file (nil: none).
	torn *tornRegion
}

type tornRegion struct {
	file   string // header file name
	path   string
	line   int
	offset int64
	bytes  int64
	data   []byte
}

func (v *verifier) problem(kind ProblemKind, path string, line int, seq uint64, format string, args ...any) {
	v.rep.Problem = &Problem{Kind: kind, File: path, Line: line, Seq: seq, Detail: fmt.Sprintf(format, args...)}
}

func (v *verifier) file(i int) error {
	f := &v.files[i]
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	off, lineNo := 0, 0
	for off < len(data) {
		nl := bytes.IndexByte(data[off:], '\n')
		lineNo++
		if nl < 0 {
			v.tornAt(i, data, off, lineNo, false)
			return nil
		}
		line := data[off : off+nl]
		e, perr := ParseLine(line)
		if perr != nil || !e.HashOK {
			if v.tornAt(i, data, off, lineNo, true) {
				return nil
			}
			if perr != nil {
				v.problem(ProblemMalformed, f.path, lineNo, 0, "%v", perr)
			} else {
				v.problem(ProblemEdited, f.path, lineNo, e.Seq, "the record does not match its hash: its content was changed")
			}
			return nil
		}
		if !v.record(i, data, off+nl+1, lineNo, e) {
			return nil
		}
		off += nl + 1
	}
	return nil
}

// tornAt handles bytes from off to the end of file i that are not whole records
// (complete: they start with a whole line that is not a good record). They are a
// recovery when the next file's recovered record describes exactly these bytes.
// Otherwise an incomplete line is a truncation, reported here; for a complete bad
// line tornAt reports nothing and returns false, and the caller says what is wrong.
func (v *verifier) tornAt(i int, data []byte, off, lineNo int, complete bool) bool {
	f := &v.files[i]
	t := &tornRegion{file: f.header.File, path: f.path, line: lineNo, offset: int64(off), bytes: int64(len(data) - off), data: data[off:]}
	if i+1 < len(v.files) {
		v.torn = t
		if v.tornDeclared(&v.files[i+1]) {
			return true
		}
		v.torn = nil
	}
	if !complete {
		v.problem(ProblemTruncated, f.path, lineNo, 0, "the file ends inside a record: %d bytes of an incomplete record at offset %d (the writer crashed mid-write or the file was cut), and no later file accounts for them", t.bytes, t.offset)
	}
	return false
}

// tornDeclared checks the second record of f against v.torn.
func (v *verifier) tornDeclared(f *vfile) bool {
	e := f.second
	if e == nil {
		e = secondRecord(f.path)
		f.second = e
	}
	t := v.torn
	if e == nil || e.Type != typeRecovered || e.TornFile != t.file || e.TornOffset != t.offset || e.TornBytes != t.bytes {
		return false
	}
	if e.TornHash != "" {
		alg, sum, err := parseDigest(e.TornHash)
		if err != nil {
			return false
		}
		got := alg.sum(t.data)
		if !bytes.Equal(got[:], sum) {
			return false
		}
	}
	return true
}

func secondRecord(path string) *Entry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	if _, err := r.ReadSlice('\n'); err != nil {
		return nil
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		return nil
	}
	e, err := ParseLine(line[:len(line)-1])
	if err != nil {
		return nil
	}
	return e
}

// record checks one well-formed record in its place. next is the offset of the line
// after it (for looking ahead). It returns false when it found the problem.
func (v *verifier) record(i int, data []byte, next, lineNo int, e *Entry) bool {
	f := &v.files[i]
	rep := v.rep
	if e.Replica != rep.Replica {
		v.problem(ProblemMalformed, f.path, lineNo, e.Seq, "record of replica %q in the log of %q", e.Replica, rep.Replica)
		return false
	}
	if (lineNo == 1) != (e.Type == typeFile) {
		if lineNo == 1 {
			v.problem(ProblemMalformed, f.path, lineNo, e.Seq, "the file does not start with its header")
		} else {
			v.problem(ProblemReordered, f.path, lineNo, e.Seq, "a file header in the middle of a file")
		}
		return false
	}
	if e.Type == typeFile {
		if i == 0 {
			switch {
			case e.PrevFile == "" && (e.Seq != 1 || e.Prev != ""):
				v.problem(ProblemMalformed, f.path, lineNo, e.Seq, "the first file names no predecessor but does not start the chain")
				return false
			case e.PrevFile != "" && !v.opts.Partial:
				v.problem(ProblemMissingFile, f.path, lineNo, e.Seq, "the earliest file given follows %q, which was not given (give every file of the replica, or accept a partial set)", e.PrevFile)
				return false
			}
		} else if prev := v.files[i-1].header; e.PrevFile != prev.File {
			v.problem(ProblemMissingFile, f.path, lineNo, e.Seq, "this file follows %q, but the previous file given is %q: files are missing", e.PrevFile, prev.File)
			return false
		}
	}
	if !v.started {
		v.started = true
		v.expected, v.prevHash, v.base = e.Seq, e.Prev, e.Seq
		rep.FirstSeq = e.Seq
	}
	if e.Seq != v.expected {
		if e.Seq > v.expected {
			if at := findSeq(data[next:], v.expected); at > 0 {
				v.problem(ProblemReordered, f.path, lineNo, e.Seq, "record %d comes before record %d (line %d)", e.Seq, v.expected, lineNo+at)
			} else {
				v.problem(ProblemMissing, f.path, lineNo, e.Seq, "records %s missing before this one (deleted)", seqRange(v.expected, e.Seq-1))
			}
		} else {
			v.problem(ProblemReordered, f.path, lineNo, e.Seq, "record %d comes after record %d (moved or duplicated)", e.Seq, v.expected-1)
		}
		return false
	}
	if e.Prev != v.prevHash {
		p := v.prevPos
		if p.File == "" { // the very first record: nothing before it to blame
			p = Problem{File: f.path, Line: lineNo, Seq: e.Seq}
		}
		v.problem(ProblemEdited, p.File, p.Line, p.Seq, "record %d was changed and its hash recomputed: record %d (%s:%d) chains to a different hash", p.Seq, e.Seq, f.path, lineNo)
		return false
	}
	switch e.Type {
	case typeCheckpoint:
		if !v.checkpoint(f.path, lineNo, e) {
			return false
		}
	case typeRecovered:
		if !v.recovered(i, lineNo, e) {
			return false
		}
	}
	v.pend = append(v.pend, pending{hash: e.Hash, checkpoint: e.Type == typeCheckpoint})
	v.expected = e.Seq + 1
	v.prevHash = e.Hash
	v.prevPos = Problem{File: f.path, Line: lineNo, Seq: e.Seq}
	v.lastType, v.lastFin = e.Type, e.Final
	rep.Records++
	rep.LastSeq = e.Seq
	rep.LastFile, rep.LastLine = f.path, lineNo
	return true
}

func (v *verifier) checkpoint(path string, lineNo int, e *Entry) bool {
	rep := v.rep
	if e.Count < v.base {
		if rep.Checkpoints == 0 && v.opts.Partial {
			// Covers records before the partial set: the head cannot be matched,
			// but the signature is still checked below.
		} else {
			v.problem(ProblemBadCheckpoint, path, lineNo, e.Seq, "covers record %d, which an earlier checkpoint already covered", e.Count)
			return false
		}
	} else {
		idx := e.Count - v.base
		if idx >= uint64(len(v.pend)) {
			v.problem(ProblemBadCheckpoint, path, lineNo, e.Seq, "covers record %d, which is not before it", e.Count)
			return false
		}
		if v.pend[idx].hash != e.Head {
			v.problem(ProblemBadCheckpoint, path, lineNo, e.Seq, "its head is not the hash of record %d", e.Count)
			return false
		}
	}
	if len(v.opts.Certs) > 0 {
		var cert *smx509.Certificate
		for _, c := range v.opts.Certs {
			if CertFingerprint(c) == e.CertSHA256 {
				cert = c
				break
			}
		}
		if cert == nil {
			v.problem(ProblemBadCheckpoint, path, lineNo, e.Seq, "signed by certificate %s, which is not an audit certificate given", e.CertSHA256)
			return false
		}
		if err := verifyCheckpoint(cert.PublicKey, e.SigAlg, checkpointMessage(e.Replica, e.Count, e.Head), e.Sig); err != nil {
			v.problem(ProblemBadCheckpoint, path, lineNo, e.Seq, "%v", err)
			return false
		}
	}
	if e.Count >= v.base {
		v.pend = v.pend[e.Count-v.base+1:]
		v.base = e.Count + 1
	}
	rep.Checkpoints++
	rep.SignedThrough = e.Count
	return true
}

func (v *verifier) recovered(i, lineNo int, e *Entry) bool {
	path := v.files[i].path
	if lineNo != 2 {
		v.problem(ProblemMalformed, path, lineNo, e.Seq, "a recovered record must follow a file header")
		return false
	}
	t := v.torn
	v.torn = nil
	rc := Recovery{File: path, Line: lineNo, Seq: e.Seq, TornFile: e.TornFile, TornOffset: e.TornOffset, TornBytes: e.TornBytes, Cause: e.Cause}
	if t != nil {
		rc.TornFile = t.path // tornDeclared matched it before
	} else if e.TornBytes > 0 && i > 0 && e.TornFile == v.files[i-1].header.File {
		v.problem(ProblemTruncated, path, lineNo, e.Seq, "records %d bytes of an incomplete record at offset %d of %s, which are gone", e.TornBytes, e.TornOffset, v.files[i-1].path)
		return false
	}
	v.rep.Recoveries = append(v.rep.Recoveries, rc)
	return true
}

func (v *verifier) finish() {
	n := 0
	for _, p := range v.pend {
		if !p.checkpoint {
			n++
		}
	}
	v.rep.UnsignedTail = n
	v.rep.Closed = v.lastType == typeCheckpoint && v.lastFin
}

// findSeq looks for a record with sequence number seq in data (whole lines) and
// returns its 1-based line offset from the start of data, or 0.
func findSeq(data []byte, seq uint64) int {
	n := 0
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return 0
		}
		n++
		if e, err := ParseLine(data[:nl]); err == nil && e.Seq == seq {
			return n
		}
		data = data[nl+1:]
	}
	return 0
}

func seqRange(a, b uint64) string {
	if a == b {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d..%d", a, b)
}

// WriteText writes the report for people: one summary line, then recoveries.
func (r *Report) WriteText(w io.Writer) {
	name := r.Replica
	if name == "" {
		name = "?"
	}
	switch {
	case r.Problem != nil:
		fmt.Fprintf(w, "replica %s: FAILED: %s\n", name, r.Problem)
	default:
		status := "OK"
		if !r.OK() {
			status = "INCOMPLETE"
		}
		closed := "open (no final checkpoint)"
		if r.Closed {
			closed = "closed"
		}
		fmt.Fprintf(w, "replica %s: %s: %d files, %d records (seq %d..%d), %d checkpoints, signed through seq %d, %s\n",
			name, status, r.Files, r.Records, r.FirstSeq, r.LastSeq, r.Checkpoints, r.SignedThrough, closed)
		if r.UnsignedTail > 0 {
			fmt.Fprintf(w, "replica %s: unsigned tail: %d records after seq %d (up to %s:%d) carry no checkpoint signature; records after them could be missing unnoticed\n",
				name, r.UnsignedTail, r.SignedThrough, filepath.Base(r.LastFile), r.LastLine)
		}
		if !r.SignaturesChecked {
			fmt.Fprintf(w, "replica %s: checkpoint signatures NOT checked: give the audit certificate (--cert)\n", name)
		}
	}
	for _, rc := range r.Recoveries {
		fmt.Fprintf(w, "replica %s: recovery at %s:%d (seq %d): %s", name, rc.File, rc.Line, rc.Seq, rc.Cause)
		if rc.TornBytes > 0 {
			fmt.Fprintf(w, " (%d bytes of an incomplete record left at offset %d of %s)", rc.TornBytes, rc.TornOffset, rc.TornFile)
		}
		fmt.Fprintln(w)
	}
}
