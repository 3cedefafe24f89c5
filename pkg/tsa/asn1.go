package tsa

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signsvr.dev/signsvr/pkg/cms"
)

// ErrMalformed is wrapped by every parse error: the input is not the DER structure
// it should be.
var ErrMalformed = errors.New("tsa: malformed input")

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// maxIntBytes bounds nonces and serial numbers (RFC 3161 §4: up to 160 bits is
// what a TSA must handle; we allow a little more).
const maxIntBytes = 32

// MessageImprint is the hash of the timestamped data (RFC 3161 §2.4.1).
type MessageImprint struct {
	// HashAlgorithm is the digest algorithm OID (parameters absent or NULL).
	HashAlgorithm asn1.ObjectIdentifier
	HashedMessage []byte
}

// Request is a TimeStampReq (RFC 3161 §2.4.1), version 1.
type Request struct {
	MessageImprint MessageImprint
	// Policy is the requested TSA policy, or nil.
	Policy asn1.ObjectIdentifier
	// Nonce is the request's nonce, or nil.
	Nonce *big.Int
	// CertReq asks for the TSA certificate in the token.
	CertReq bool
	// Extensions is the DER of the [0] extensions element as received, or nil. This
	// package's TSA accepts no extension (RFC 3161: unrecognised ones are refused).
	Extensions []byte
}

// Accuracy is the TSTInfo accuracy; the zero value means "absent".
type Accuracy struct {
	Seconds, Millis, Micros int
}

// Duration is the accuracy as a time.Duration.
func (a Accuracy) Duration() time.Duration {
	return time.Duration(a.Seconds)*time.Second + time.Duration(a.Millis)*time.Millisecond + time.Duration(a.Micros)*time.Microsecond
}

func (a Accuracy) zero() bool { return a == Accuracy{} }

// TSTInfo is the content a timestamp token signs (RFC 3161 §2.4.2).
type TSTInfo struct {
	Policy         asn1.ObjectIdentifier
	MessageImprint MessageImprint
	SerialNumber   *big.Int
	// GenTime is the time of the stamp, UTC; fractions of a second are kept.
	GenTime  time.Time
	Accuracy Accuracy
	Ordering bool
	Nonce    *big.Int
	// TSAName is the DER GeneralName inside the [0] tsa field, or nil.
	TSAName []byte
	// Extensions is the DER of the [1] extensions element, or nil.
	Extensions []byte
}

// Status is a PKIStatus value.
type Status int

// PKIStatus values (RFC 3161 §2.4.2).
const (
	StatusGranted                Status = 0
	StatusGrantedWithMods        Status = 1
	StatusRejection              Status = 2
	StatusWaiting                Status = 3
	StatusRevocationWarning      Status = 4
	StatusRevocationNotification Status = 5
)

func (s Status) String() string {
	switch s {
	case StatusGranted:
		return "granted"
	case StatusGrantedWithMods:
		return "grantedWithMods"
	case StatusRejection:
		return "rejection"
	case StatusWaiting:
		return "waiting"
	case StatusRevocationWarning:
		return "revocationWarning"
	case StatusRevocationNotification:
		return "revocationNotification"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// FailureInfo is the PKIFailureInfo bit string, bit n as 1<<n.
type FailureInfo uint32

// PKIFailureInfo bits (RFC 3161 §2.4.2).
const (
	FailBadAlg              FailureInfo = 1 << 0
	FailBadRequest          FailureInfo = 1 << 2
	FailBadDataFormat       FailureInfo = 1 << 5
	FailTimeNotAvailable    FailureInfo = 1 << 14
	FailUnacceptedPolicy    FailureInfo = 1 << 15
	FailUnacceptedExtension FailureInfo = 1 << 16
	FailAddInfoNotAvailable FailureInfo = 1 << 17
	FailSystemFailure       FailureInfo = 1 << 25
	maxFailureBit                       = 31
)

// Response is a TimeStampResp.
type Response struct {
	Status        Status
	StatusStrings []string
	FailInfo      FailureInfo
	// Token is the DER (or BER, as received) TimeStampToken ContentInfo, or nil.
	Token []byte
}

// Granted reports whether the status grants a token (granted or grantedWithMods).
func (r *Response) Granted() bool {
	return r.Status == StatusGranted || r.Status == StatusGrantedWithMods
}

// Hash algorithms of message imprints and certificate hashes.
var (
	oidSHA1   = cms.OIDSHA1
	oidSHA256 = cms.OIDSHA256
	oidSHA384 = cms.OIDSHA384
	oidSHA512 = cms.OIDSHA512
	oidSM3    = cms.OIDSM3
)

// Digest hashes data with the algorithm named by oid: SHA-1 (only to check old
// tokens), SHA-256/384/512 or SM3.
func Digest(oid asn1.ObjectIdentifier, data []byte) ([]byte, error) {
	switch {
	case oid.Equal(oidSHA256):
		s := sha256.Sum256(data)
		return s[:], nil
	case oid.Equal(oidSHA384):
		s := sha512.Sum384(data)
		return s[:], nil
	case oid.Equal(oidSHA512):
		s := sha512.Sum512(data)
		return s[:], nil
	case oid.Equal(oidSM3), oid.Equal(cms.OIDSM3Alt):
		s := sm3.Sum(data)
		return s[:], nil
	case oid.Equal(oidSHA1):
		s := sha1.Sum(data)
		return s[:], nil
	}
	return nil, fmt.Errorf("tsa: unsupported hash algorithm %s", oid)
}

// digestSize is the output size of a supported hash, 0 for others.
func digestSize(oid asn1.ObjectIdentifier) int {
	switch {
	case oid.Equal(oidSHA256), oid.Equal(oidSM3), oid.Equal(cms.OIDSM3Alt):
		return 32
	case oid.Equal(oidSHA384):
		return 48
	case oid.Equal(oidSHA512):
		return 64
	case oid.Equal(oidSHA1):
		return 20
	}
	return 0
}

// HashOID is the OID of a crypto.Hash (SHA-256/384/512), or nil.
func HashOID(h crypto.Hash) asn1.ObjectIdentifier {
	switch h {
	case crypto.SHA256:
		return oidSHA256
	case crypto.SHA384:
		return oidSHA384
	case crypto.SHA512:
		return oidSHA512
	}
	return nil
}

// --- reading -------------------------------------------------------------------

func readAlgOID(s *cryptobyte.String, out *asn1.ObjectIdentifier) bool {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(out) {
		return false
	}
	if seq.Empty() {
		return true
	}
	// Parameters: only NULL is meaningful for hash algorithms.
	var null cryptobyte.String
	return seq.ReadASN1(&null, cbasn1.NULL) && null.Empty() && seq.Empty()
}

func readImprint(s *cryptobyte.String, m *MessageImprint) bool {
	var seq, h cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !readAlgOID(&seq, &m.HashAlgorithm) ||
		!seq.ReadASN1(&h, cbasn1.OCTET_STRING) || !seq.Empty() {
		return false
	}
	m.HashedMessage = h
	return true
}

func readBigInt(s *cryptobyte.String, tag cbasn1.Tag) (*big.Int, bool) {
	var v cryptobyte.String
	if !s.PeekASN1Tag(tag) || len(*s) < 2 {
		return nil, false
	}
	// Bound the size before cryptobyte allocates for it.
	var peek cryptobyte.String = *s
	if !peek.ReadASN1(&v, tag) || len(v) > maxIntBytes+1 {
		return nil, false
	}
	n := new(big.Int)
	if tag == cbasn1.INTEGER {
		if !s.ReadASN1Integer(n) {
			return nil, false
		}
		return n, true
	}
	// An implicitly tagged INTEGER: re-read its content as an INTEGER.
	s.ReadASN1(&v, tag)
	b := cryptobyte.String(append([]byte{0x02, byte(len(v))}, v...))
	if len(v) > 127 || !b.ReadASN1Integer(n) {
		return nil, false
	}
	return n, true
}

func readSmallInt(s *cryptobyte.String, tag cbasn1.Tag, out *int) bool {
	n, ok := readBigInt(s, tag)
	if !ok || !n.IsInt64() || n.Int64() < 0 || n.Int64() > 1<<31-1 {
		return false
	}
	*out = int(n.Int64())
	return true
}

// ParseRequest reads a DER TimeStampReq.
func ParseRequest(der []byte) (*Request, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("TimeStampReq")
	}
	var v int64
	if !seq.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || v != 1 {
		return nil, malformed("TimeStampReq.version (must be 1)")
	}
	r := &Request{}
	if !readImprint(&seq, &r.MessageImprint) {
		return nil, malformed("TimeStampReq.messageImprint")
	}
	if seq.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
		if !seq.ReadASN1ObjectIdentifier(&r.Policy) {
			return nil, malformed("TimeStampReq.reqPolicy")
		}
	}
	if seq.PeekASN1Tag(cbasn1.INTEGER) {
		n, ok := readBigInt(&seq, cbasn1.INTEGER)
		if !ok {
			return nil, malformed("TimeStampReq.nonce")
		}
		r.Nonce = n
	}
	if seq.PeekASN1Tag(cbasn1.BOOLEAN) {
		if !seq.ReadASN1Boolean(&r.CertReq) {
			return nil, malformed("TimeStampReq.certReq")
		}
	}
	if tag := cbasn1.Tag(0).Constructed().ContextSpecific(); seq.PeekASN1Tag(tag) {
		var ext cryptobyte.String
		if !seq.ReadASN1Element(&ext, tag) {
			return nil, malformed("TimeStampReq.extensions")
		}
		r.Extensions = ext
	}
	if !seq.Empty() {
		return nil, malformed("TimeStampReq: trailing fields")
	}
	return r, nil
}

// ParseResponse reads a DER TimeStampResp. The token, when present, is kept as
// received; ParseToken reads it.
func ParseResponse(der []byte) (*Response, error) {
	s := cryptobyte.String(der)
	var seq, si cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !seq.ReadASN1(&si, cbasn1.SEQUENCE) {
		return nil, malformed("TimeStampResp")
	}
	r := &Response{}
	var st int64
	if !si.ReadASN1Int64WithTag(&st, cbasn1.INTEGER) || st < 0 || st > 5 {
		return nil, malformed("PKIStatusInfo.status")
	}
	r.Status = Status(st)
	if si.PeekASN1Tag(cbasn1.SEQUENCE) {
		var texts cryptobyte.String
		si.ReadASN1(&texts, cbasn1.SEQUENCE)
		for !texts.Empty() {
			var u cryptobyte.String
			if !texts.ReadASN1(&u, cbasn1.UTF8String) || !utf8.Valid(u) {
				return nil, malformed("PKIStatusInfo.statusString")
			}
			r.StatusStrings = append(r.StatusStrings, string(u))
		}
	}
	if si.PeekASN1Tag(cbasn1.BIT_STRING) {
		var bits asn1.BitString
		if !si.ReadASN1BitString(&bits) {
			return nil, malformed("PKIStatusInfo.failInfo")
		}
		for i := 0; i < bits.BitLength && i <= maxFailureBit; i++ {
			if bits.At(i) == 1 {
				r.FailInfo |= 1 << i
			}
		}
	}
	if !si.Empty() {
		return nil, malformed("PKIStatusInfo: trailing fields")
	}
	if !seq.Empty() {
		var tok cryptobyte.String
		if !seq.ReadASN1Element(&tok, cbasn1.SEQUENCE) {
			return nil, malformed("TimeStampResp.timeStampToken")
		}
		r.Token = tok
	}
	if !seq.Empty() {
		return nil, malformed("TimeStampResp: trailing fields")
	}
	if r.Granted() && r.Token == nil {
		return nil, malformed("TimeStampResp: granted without a token")
	}
	return r, nil
}

// ParseTSTInfo reads a DER TSTInfo (the eContent of a timestamp token).
func ParseTSTInfo(der []byte) (*TSTInfo, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("TSTInfo")
	}
	var v int64
	if !seq.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || v != 1 {
		return nil, malformed("TSTInfo.version (must be 1)")
	}
	t := &TSTInfo{}
	if !seq.ReadASN1ObjectIdentifier(&t.Policy) {
		return nil, malformed("TSTInfo.policy")
	}
	if !readImprint(&seq, &t.MessageImprint) {
		return nil, malformed("TSTInfo.messageImprint")
	}
	var ok bool
	if t.SerialNumber, ok = readBigInt(&seq, cbasn1.INTEGER); !ok {
		return nil, malformed("TSTInfo.serialNumber")
	}
	var gt cryptobyte.String
	if !seq.ReadASN1(&gt, cbasn1.GeneralizedTime) {
		return nil, malformed("TSTInfo.genTime")
	}
	var err error
	if t.GenTime, err = parseGeneralizedTime(gt); err != nil {
		return nil, err
	}
	if seq.PeekASN1Tag(cbasn1.SEQUENCE) {
		var acc cryptobyte.String
		seq.ReadASN1(&acc, cbasn1.SEQUENCE)
		if acc.PeekASN1Tag(cbasn1.INTEGER) && !readSmallInt(&acc, cbasn1.INTEGER, &t.Accuracy.Seconds) {
			return nil, malformed("TSTInfo.accuracy.seconds")
		}
		if tag := cbasn1.Tag(0).ContextSpecific(); acc.PeekASN1Tag(tag) {
			if !readSmallInt(&acc, tag, &t.Accuracy.Millis) || t.Accuracy.Millis < 1 || t.Accuracy.Millis > 999 {
				return nil, malformed("TSTInfo.accuracy.millis")
			}
		}
		if tag := cbasn1.Tag(1).ContextSpecific(); acc.PeekASN1Tag(tag) {
			if !readSmallInt(&acc, tag, &t.Accuracy.Micros) || t.Accuracy.Micros < 1 || t.Accuracy.Micros > 999 {
				return nil, malformed("TSTInfo.accuracy.micros")
			}
		}
		if !acc.Empty() {
			return nil, malformed("TSTInfo.accuracy: trailing fields")
		}
	}
	if seq.PeekASN1Tag(cbasn1.BOOLEAN) && !seq.ReadASN1Boolean(&t.Ordering) {
		return nil, malformed("TSTInfo.ordering")
	}
	if seq.PeekASN1Tag(cbasn1.INTEGER) {
		if t.Nonce, ok = readBigInt(&seq, cbasn1.INTEGER); !ok {
			return nil, malformed("TSTInfo.nonce")
		}
	}
	if tag := cbasn1.Tag(0).Constructed().ContextSpecific(); seq.PeekASN1Tag(tag) {
		var name cryptobyte.String
		var inner cryptobyte.String
		var innerTag cbasn1.Tag
		if !seq.ReadASN1(&name, tag) || !name.ReadAnyASN1Element(&inner, &innerTag) || !name.Empty() {
			return nil, malformed("TSTInfo.tsa")
		}
		t.TSAName = inner
	}
	if tag := cbasn1.Tag(1).Constructed().ContextSpecific(); seq.PeekASN1Tag(tag) {
		var ext cryptobyte.String
		if !seq.ReadASN1Element(&ext, tag) {
			return nil, malformed("TSTInfo.extensions")
		}
		t.Extensions = ext
	}
	if !seq.Empty() {
		return nil, malformed("TSTInfo: trailing fields")
	}
	return t, nil
}

// parseGeneralizedTime reads YYYYMMDDHHMMSS[.f+]Z, the form RFC 3161 §2.4.2 requires
// (UTC, optional fraction of a second). cryptobyte's reader has no fractions.
func parseGeneralizedTime(b []byte) (time.Time, error) {
	bad := malformed("TSTInfo.genTime")
	if len(b) < 15 || b[len(b)-1] != 'Z' {
		return time.Time{}, bad
	}
	num := func(from, n int) (int, bool) {
		v := 0
		for _, c := range b[from : from+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	var f [6]int
	widths := [6]int{4, 2, 2, 2, 2, 2}
	pos := 0
	for i, w := range widths {
		v, ok := num(pos, w)
		if !ok {
			return time.Time{}, bad
		}
		f[i] = v
		pos += w
	}
	nsec := 0
	rest := b[pos : len(b)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, bad
		}
		scale := 100000000
		for _, c := range rest[1:] {
			if c < '0' || c > '9' {
				return time.Time{}, bad
			}
			nsec += int(c-'0') * scale
			scale /= 10
		}
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], nsec, time.UTC)
	if t.Year() != f[0] || int(t.Month()) != f[1] || t.Day() != f[2] || t.Hour() != f[3] || t.Minute() != f[4] || t.Second() != f[5] {
		return time.Time{}, bad // out-of-range fields that time.Date normalised
	}
	return t, nil
}

// --- writing -------------------------------------------------------------------

func addAlgOID(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		// Hash algorithm parameters are absent (RFC 5754); openssl and Go both accept it.
	})
}

func addImprint(b *cryptobyte.Builder, m *MessageImprint) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addAlgOID(b, m.HashAlgorithm)
		b.AddASN1OctetString(m.HashedMessage)
	})
}

// Marshal writes the request as DER.
func (r *Request) Marshal() ([]byte, error) {
	if len(r.MessageImprint.HashAlgorithm) < 2 {
		return nil, errors.New("tsa: request has no hash algorithm")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		addImprint(b, &r.MessageImprint)
		if r.Policy != nil {
			b.AddASN1ObjectIdentifier(r.Policy)
		}
		if r.Nonce != nil {
			b.AddASN1BigInt(r.Nonce)
		}
		if r.CertReq {
			b.AddASN1Boolean(true)
		}
		if r.Extensions != nil {
			b.AddBytes(r.Extensions)
		}
	})
	return b.Bytes()
}

// appendGeneralizedTime writes t in UTC as YYYYMMDDHHMMSS[.f]Z with no trailing zeros
// in the fraction, as DER requires.
func appendGeneralizedTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	dst = t.AppendFormat(dst, "20060102150405")
	if ns := t.Nanosecond(); ns != 0 {
		frac := []byte{'.'}
		for scale := 100000000; scale > 0 && ns > 0; scale /= 10 {
			frac = append(frac, byte('0'+ns/scale))
			ns %= scale
		}
		dst = append(dst, frac...)
	}
	return append(dst, 'Z')
}

// Marshal writes the TSTInfo as DER.
func (t *TSTInfo) Marshal() ([]byte, error) {
	if t.SerialNumber == nil || len(t.Policy) < 2 || len(t.MessageImprint.HashAlgorithm) < 2 {
		return nil, errors.New("tsa: TSTInfo needs a serial number, a policy and a message imprint")
	}
	if y := t.GenTime.UTC().Year(); y < 0 || y > 9999 {
		return nil, errors.New("tsa: genTime out of range")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1ObjectIdentifier(t.Policy)
		addImprint(b, &t.MessageImprint)
		b.AddASN1BigInt(t.SerialNumber)
		b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) {
			b.AddBytes(appendGeneralizedTime(nil, t.GenTime))
		})
		if !t.Accuracy.zero() {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				if t.Accuracy.Seconds > 0 {
					b.AddASN1Int64(int64(t.Accuracy.Seconds))
				}
				if t.Accuracy.Millis > 0 {
					b.AddASN1Int64WithTag(int64(t.Accuracy.Millis), cbasn1.Tag(0).ContextSpecific())
				}
				if t.Accuracy.Micros > 0 {
					b.AddASN1Int64WithTag(int64(t.Accuracy.Micros), cbasn1.Tag(1).ContextSpecific())
				}
			})
		}
		if t.Ordering {
			b.AddASN1Boolean(true)
		}
		if t.Nonce != nil {
			b.AddASN1BigInt(t.Nonce)
		}
		if t.TSAName != nil {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(t.TSAName) })
		}
		if t.Extensions != nil {
			b.AddBytes(t.Extensions)
		}
	})
	return b.Bytes()
}

// Marshal writes the response as DER.
func (r *Response) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(int64(r.Status))
			if len(r.StatusStrings) > 0 {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, s := range r.StatusStrings {
						b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
					}
				})
			}
			if r.FailInfo != 0 {
				b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) { b.AddBytes(failInfoBits(r.FailInfo)) })
			}
		})
		if r.Token != nil {
			b.AddBytes(r.Token)
		}
	})
	return b.Bytes()
}

// failInfoBits is the content of a DER named BIT STRING: the unused-bits octet, then
// the bits up to the highest one set (trailing zero bits removed).
func failInfoBits(f FailureInfo) []byte {
	high := 0
	for i := 0; i <= maxFailureBit; i++ {
		if f&(1<<i) != 0 {
			high = i
		}
	}
	n := high/8 + 1
	out := make([]byte, 1+n)
	out[0] = byte(7 - high%8)
	for i := 0; i <= high; i++ {
		if f&(1<<i) != 0 {
			out[1+i/8] |= 0x80 >> (i % 8)
		}
	}
	return out
}
