package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Entry is one parsed line of an audit file, whatever its type. The verifier and the
// writer's start-up recovery read lines through ParseLine; auditors' tools can too.
type Entry struct {
	Seq     uint64 `json:"seq"`
	Time    string `json:"time"`
	Type    string `json:"type"`
	Replica string `json:"replica"`

	// Operation records ("op").
	RequestID string       `json:"request_id,omitempty"`
	Caller    *EntryCaller `json:"caller,omitempty"`
	Op        string       `json:"op,omitempty"`
	Key       string       `json:"key,omitempty"`
	// KeyGeneration and KeySerial: the generation and certificate serial used.
	KeyGeneration string   `json:"key_generation,omitempty"`
	KeySerial     string   `json:"key_serial,omitempty"`
	Algs          []string `json:"algs,omitempty"`
	In            string   `json:"in,omitempty"`
	Out           string   `json:"out,omitempty"`
	Code          string   `json:"code,omitempty"`
	Reason        string   `json:"reason,omitempty"`

	// File headers ("file").
	Format    string `json:"format,omitempty"`
	File      string `json:"file,omitempty"`
	FileIndex uint64 `json:"file_index,omitempty"`
	PrevFile  string `json:"prev_file,omitempty"`

	// Checkpoints ("checkpoint").
	Count      uint64 `json:"count,omitempty"`
	Head       string `json:"head,omitempty"`
	SigAlg     string `json:"sig_alg,omitempty"`
	Sig        []byte `json:"sig,omitempty"`
	CertSHA256 string `json:"cert_sha256,omitempty"`
	Final      bool   `json:"final,omitempty"`

	// Recovery records ("recovered").
	TornFile   string `json:"torn_file,omitempty"`
	TornOffset int64  `json:"torn_offset,omitempty"`
	TornBytes  int64  `json:"torn_bytes,omitempty"`
	TornHash   string `json:"torn_hash,omitempty"`
	AfterSeq   uint64 `json:"after_seq,omitempty"`
	Cause      string `json:"cause,omitempty"`

	Prev string `json:"prev"`
	Hash string `json:"hash"`

	// HashOK reports whether Hash is the hash of the line's bytes before the
	// `,"hash":` member. Computed by ParseLine, not read from the line.
	HashOK bool `json:"-"`
}

// EntryCaller is the caller object of an operation record.
type EntryCaller struct {
	Kind       string `json:"kind"`
	Subject    string `json:"subject"`
	Issuer     string `json:"issuer"`
	Serial     string `json:"serial"`
	CertSHA256 string `json:"cert_sha256"`
}

// maxLine bounds a line the parser accepts; the writer's records are far smaller.
const maxLine = 1 << 20

var hashMember = []byte(`,"hash":"`)

// ErrMalformed is wrapped by every ParseLine error.
var ErrMalformed = errors.New("audit: malformed record")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseLine parses one line (without its newline). It checks the structure and the
// types of the fields and computes HashOK; it does not check the chain.
func ParseLine(line []byte) (*Entry, error) {
	if len(line) > maxLine {
		return nil, malformed("line longer than %d bytes", maxLine)
	}
	if bytes.IndexByte(line, '\n') >= 0 {
		return nil, malformed("line holds a newline")
	}
	i := bytes.LastIndex(line, hashMember)
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) || len(line) < i+len(hashMember)+2 {
		return nil, malformed(`line does not end with a "hash" member`)
	}
	body := line[:i]
	hashText := string(line[i+len(hashMember) : len(line)-2])
	alg, sum, err := parseDigest(hashText)
	if err != nil {
		return nil, malformed("hash: %v", err)
	}
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, malformed("%v", err)
	}
	if dec.More() {
		return nil, malformed("trailing data after the record")
	}
	if e.Hash != hashText {
		return nil, malformed("hash member is not the last member")
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	got := alg.sum(body)
	e.HashOK = bytes.Equal(got[:], sum)
	return &e, nil
}

// parseDigest splits "alg:hex" and checks both parts.
func parseDigest(s string) (HashAlg, []byte, error) {
	name, hx, ok := strings.Cut(s, ":")
	if !ok {
		return "", nil, errors.New("no algorithm prefix")
	}
	alg := HashAlg(name)
	if !alg.valid() {
		return "", nil, fmt.Errorf("unknown hash algorithm %q", name)
	}
	if len(hx) != 2*hashSize || strings.ToLower(hx) != hx {
		return "", nil, errors.New("not a lower-case hex digest")
	}
	sum, err := hex.DecodeString(hx)
	if err != nil {
		return "", nil, err
	}
	return alg, sum, nil
}

func (e *Entry) validate() error {
	if e.Seq == 0 {
		return malformed("seq missing or zero")
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		return malformed("time: %v", err)
	}
	if e.Replica == "" {
		return malformed("replica missing")
	}
	if e.Prev != "" {
		if _, _, err := parseDigest(e.Prev); err != nil {
			return malformed("prev: %v", err)
		}
	} else if e.Seq != 1 {
		return malformed("prev missing on a record other than the first")
	}
	digestOrEmpty := func(name, v string) error {
		if v == "" {
			return nil
		}
		if _, _, err := parseDigest(v); err != nil {
			return malformed("%s: %v", name, err)
		}
		return nil
	}
	switch e.Type {
	case typeOp:
		if e.Caller == nil || e.Op == "" {
			return malformed("operation record without caller or op")
		}
		if err := digestOrEmpty("in", e.In); err != nil {
			return err
		}
		return digestOrEmpty("out", e.Out)
	case typeFile:
		if e.Format != formatName && e.Format != formatV1 {
			return malformed("file header of unknown format %q", e.Format)
		}
		if e.File == "" || e.FileIndex == 0 {
			return malformed("file header without file name or index")
		}
	case typeCheckpoint:
		if e.Count == 0 || e.Count >= e.Seq || e.SigAlg == "" || len(e.Sig) == 0 || e.CertSHA256 == "" {
			return malformed("incomplete checkpoint")
		}
		if _, _, err := parseDigest(e.Head); err != nil {
			return malformed("head: %v", err)
		}
	case typeRecovered:
		if e.TornOffset < 0 || e.TornBytes < 0 {
			return malformed("negative torn offset or size")
		}
		return digestOrEmpty("torn_hash", e.TornHash)
	default:
		return malformed("unknown record type %q", e.Type)
	}
	return nil
}
