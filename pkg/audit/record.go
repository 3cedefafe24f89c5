package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/identity"
)

// Op names an operation in an audit record. The server may use names not listed here;
// they are written as given.
type Op string

const (
	OpSign             Op = "sign"
	OpVerify           Op = "verify"
	OpEnvelope         Op = "envelope"
	OpDecrypt          Op = "decrypt"
	OpSignAndEnvelope  Op = "sign_and_envelope"
	OpDecryptAndVerify Op = "decrypt_and_verify"
	OpSignRaw          Op = "sign_raw"
	OpLogin            Op = "login"
	OpTimestamp        Op = "timestamp"
	OpValidate         Op = "validate_certificate"
)

// CallerKind says where a caller identity came from.
type CallerKind string

const (
	// CallerCert is a caller identified by a verified client certificate.
	CallerCert CallerKind = "cert"
	// CallerDev is the development identity of the embedded default (no mutual TLS).
	CallerDev CallerKind = "dev"
	// CallerNone is a request that carried no identity (refused before identification).
	CallerNone CallerKind = "none"
)

// Caller is who asked. Build it with CallerFromCert or DevCaller.
type Caller struct {
	Kind CallerKind
	// Holder names the client certificate (its serial in lower-case hex, as every
	// record has carried it). For CallerDev, Subject is the development identity's
	// name and the rest is empty.
	identity.Holder
}

// CallerFromCert identifies a caller by its verified client certificate.
func CallerFromCert(c *smx509.Certificate) Caller {
	if c == nil {
		return Caller{Kind: CallerNone}
	}
	return Caller{Kind: CallerCert, Holder: identity.Of(c)}
}

// DevCaller is the clearly marked development identity used when the server runs
// without mutual TLS (the embedded default).
func DevCaller(name string) Caller {
	return Caller{Kind: CallerDev, Holder: identity.Holder{Subject: name}}
}

// Record is one audited operation as the server hands it to Append. It never holds
// plaintext or key material: Input and Output are digested by Append (only the digest
// is kept, the bytes are not retained), or the caller gives the digests directly.
type Record struct {
	RequestID string
	Caller    Caller
	Op        Op
	// Key is the logical key name the request named ("" when none).
	Key string
	// KeyGeneration and KeySerial name the generation of Key and the serial number of
	// its certificate (lower-case hex) the operation used; written only when set, so
	// records without them are as before.
	KeyGeneration, KeySerial string
	// Algorithms are the algorithms used, e.g. ["SM2", "SM3"] or ["RSA-PKCS1v15",
	// "SHA-256", "AES-256-GCM"].
	Algorithms []string
	// Input and Output are digested with the log's digest algorithm (Config.Hash);
	// the bytes themselves are never written. Leave them nil to give digests instead.
	Input, Output []byte
	// InputDigest and OutputDigest are digests the caller already computed with the
	// log's digest algorithm (Log.Digest). They must be empty when Input/Output is set.
	InputDigest, OutputDigest []byte
	// Code is the gRPC status code name ("OK", "PermissionDenied", ...) and Reason
	// the stable machine-readable reason (google.rpc.ErrorInfo.reason), "" for OK.
	Code, Reason string
}

// Record types, the "type" field of a line.
const (
	typeFile       = "file"
	typeOp         = "op"
	typeCheckpoint = "checkpoint"
	typeRecovered  = "recovered"
)

// formatName is written in every file header; formatV1 is the format before
// "What in and out name" (doc.go), which the verifier still reads. The chain, the
// checkpoints and the record layout are the same in both: only what the op
// records' digests are taken over changed.
const (
	formatName = "signsvr-audit/2"
	formatV1   = "signsvr-audit/1"
)

// HashAlg is the hash of the chain and of the input/output digests.
type HashAlg string

const (
	SHA256 HashAlg = "sha256"
	SM3    HashAlg = "sm3"
)

// hashSize is the output size of every supported HashAlg.
const hashSize = 32

func (h HashAlg) valid() bool { return h == SHA256 || h == SM3 }

func (h HashAlg) sum(b []byte) [hashSize]byte {
	if h == SM3 {
		return sm3.Sum(b)
	}
	return sha256.Sum256(b)
}

// New is h as a running hash, for a digest given as Record.InputDigest or
// OutputDigest when the bytes pass in pieces (a stream); SHA-256 unless h is SM3.
func (h HashAlg) New() hash.Hash {
	if h == SM3 {
		return sm3.New()
	}
	return sha256.New()
}

// Sum is the digest of b with h, as records hold it ("in", "out"); nil when h is
// not a supported algorithm.
func (h HashAlg) Sum(b []byte) []byte {
	if !h.valid() {
		return nil
	}
	s := h.sum(b)
	return s[:]
}

// appendDigest writes "alg:hex" of sum into dst.
func appendDigest(dst []byte, alg HashAlg, sum []byte) []byte {
	dst = append(dst, alg...)
	dst = append(dst, ':')
	return hex.AppendEncode(dst, sum)
}

var errDigestAndData = errors.New("audit: record gives both data and its digest")
var errDigestLength = errors.New("audit: digest length does not match the log's hash")

// appendOpFields encodes the type-specific part of an operation record: everything
// from "type" to the field before "prev". It runs outside the log's mutex.
func appendOpFields(dst []byte, alg HashAlg, replica string, r *Record) ([]byte, error) {
	dst = append(dst, `"type":"op","replica":`...)
	dst = appendString(dst, replica)
	dst = append(dst, `,"request_id":`...)
	dst = appendString(dst, r.RequestID)
	dst = append(dst, `,"caller":{"kind":`...)
	kind := r.Caller.Kind
	if kind == "" {
		kind = CallerNone
	}
	dst = appendString(dst, string(kind))
	dst = append(dst, `,"subject":`...)
	dst = appendString(dst, r.Caller.Subject)
	dst = append(dst, `,"issuer":`...)
	dst = appendString(dst, r.Caller.Issuer)
	dst = append(dst, `,"serial":`...)
	dst = appendString(dst, r.Caller.Serial)
	dst = append(dst, `,"cert_sha256":`...)
	dst = appendString(dst, r.Caller.FingerprintSHA256)
	dst = append(dst, `},"op":`...)
	dst = appendString(dst, string(r.Op))
	dst = append(dst, `,"key":`...)
	dst = appendString(dst, r.Key)
	if r.KeyGeneration != "" {
		dst = append(dst, `,"key_generation":`...)
		dst = appendString(dst, r.KeyGeneration)
	}
	if r.KeySerial != "" {
		dst = append(dst, `,"key_serial":`...)
		dst = appendString(dst, r.KeySerial)
	}
	dst = append(dst, `,"algs":[`...)
	for i, a := range r.Algorithms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, a)
	}
	dst = append(dst, `],"in":"`...)
	var err error
	if dst, err = appendDataDigest(dst, alg, r.Input, r.InputDigest); err != nil {
		return dst, err
	}
	dst = append(dst, `","out":"`...)
	if dst, err = appendDataDigest(dst, alg, r.Output, r.OutputDigest); err != nil {
		return dst, err
	}
	dst = append(dst, `","code":`...)
	dst = appendString(dst, r.Code)
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, r.Reason)
	return dst, nil
}

func appendDataDigest(dst []byte, alg HashAlg, data, digest []byte) ([]byte, error) {
	switch {
	case data != nil && digest != nil:
		return dst, errDigestAndData
	case data != nil:
		s := alg.sum(data)
		return appendDigest(dst, alg, s[:]), nil
	case digest != nil:
		if len(digest) != hashSize {
			return dst, errDigestLength
		}
		return appendDigest(dst, alg, digest), nil
	}
	return dst, nil
}

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, control
// characters and U+2028/U+2029 are escaped, so a line never holds a raw newline and a
// value can never close its string early.
func appendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// timeLayout is RFC 3339 with a fixed nine-digit fraction, always UTC ("Z").
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func appendUint(dst []byte, v uint64) []byte { return strconv.AppendUint(dst, v, 10) }
