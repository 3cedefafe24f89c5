package cms

import (
	"encoding/asn1"
	"errors"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The signed attributes a signer writes (RFC 5652 §11): contentType, messageDigest
// and signingTime, as one DER SET OF sorted by encoding. They are built here without
// the generic Attribute machinery because this runs once per signature.

// SigningAttributesSize is the size of the SET that AppendSigningAttributes writes.
func SigningAttributesSize(contentType asn1.ObjectIdentifier, digest []byte, signingTime time.Time) int {
	return sdTlvSize(sdSigningAttrsBodySize(contentType, digest, signingTime))
}

func sdCtAttrSize(ct asn1.ObjectIdentifier) int {
	return sdTlvSize(sdTlvSize(sdOidSize(OIDAttrContentType)) + sdTlvSize(sdTlvSize(sdOidSize(ct))))
}

func sdMdAttrSize(digest []byte) int {
	return sdTlvSize(sdTlvSize(sdOidSize(OIDAttrMessageDigest)) + sdTlvSize(sdTlvSize(len(digest))))
}

func sdStAttrSize(t time.Time) int {
	return sdTlvSize(sdTlvSize(sdOidSize(OIDAttrSigningTime)) + sdTlvSize(sdTimeSize(t)))
}

func sdSigningAttrsBodySize(ct asn1.ObjectIdentifier, digest []byte, t time.Time) int {
	n := sdCtAttrSize(ct) + sdMdAttrSize(digest)
	if !t.IsZero() {
		n += sdStAttrSize(t)
	}
	return n
}

// AppendSigningAttributes appends the DER SET OF (tag 31, as the signature covers it)
// holding the contentType, messageDigest and, unless signingTime is zero, signingTime
// attributes, sorted by their encodings as DER requires of a SET OF. signingTime is
// written as UTCTime for the years 1950 to 2049 and as GeneralizedTime otherwise
// (RFC 5652 §11.3), in UTC to the second. In a SignerInfo the same bytes are tagged
// [0] IMPLICIT (A0); SignerInfo.RawSignedAttrs accepts either tag.
func AppendSigningAttributes(dst []byte, contentType asn1.ObjectIdentifier, digest []byte, signingTime time.Time) ([]byte, error) {
	if !sdOidValid(contentType) {
		return nil, errors.New("cms: invalid content type")
	}
	if !signingTime.IsZero() {
		if y := signingTime.UTC().Year(); y < 0 || y > 9999 {
			return nil, errors.New("cms: signing time out of range")
		}
	}
	body := sdSigningAttrsBodySize(contentType, digest, signingTime)
	dst = sdAppendTL(dst, sdTagSet, body)
	start := len(dst)

	// Encode the attributes one after another, then sort them in place. Each is a
	// SEQUENCE with a short header, so they are few and small.
	dst = sdAppendTL(dst, sdTagSequence, sdTlvSize(sdOidSize(OIDAttrContentType))+sdTlvSize(sdTlvSize(sdOidSize(contentType))))
	dst = sdAppendOID(dst, OIDAttrContentType)
	dst = sdAppendTL(dst, sdTagSet, sdTlvSize(sdOidSize(contentType)))
	dst = sdAppendOID(dst, contentType)
	ctEnd := len(dst)

	dst = sdAppendTL(dst, sdTagSequence, sdTlvSize(sdOidSize(OIDAttrMessageDigest))+sdTlvSize(sdTlvSize(len(digest))))
	dst = sdAppendOID(dst, OIDAttrMessageDigest)
	dst = sdAppendTL(dst, sdTagSet, sdTlvSize(len(digest)))
	dst = sdAppendTL(dst, tagOctetString, len(digest))
	dst = append(dst, digest...)
	mdEnd := len(dst)

	stEnd := mdEnd
	if !signingTime.IsZero() {
		dst = sdAppendTL(dst, sdTagSequence, sdTlvSize(sdOidSize(OIDAttrSigningTime))+sdTlvSize(sdTimeSize(signingTime)))
		dst = sdAppendOID(dst, OIDAttrSigningTime)
		dst = sdAppendTL(dst, sdTagSet, sdTimeSize(signingTime))
		dst = sdAppendTime(dst, signingTime)
		stEnd = len(dst)
	}
	ends := [3]int{ctEnd - start, mdEnd - start, stEnd - start}
	n := 3
	if signingTime.IsZero() {
		n = 2
	}
	sdSortInPlace(dst[start:], ends[:n])
	return dst, nil
}

// sdSortInPlace sorts the consecutive elements of buf, which end at the given offsets,
// by their encodings. It swaps adjacent runs by rotation, so it needs no scratch.
func sdSortInPlace(buf []byte, ends []int) {
	n := len(ends)
	for i := 1; i < n; i++ {
		for j := i; j > 0; j-- {
			aStart := 0
			if j > 1 {
				aStart = ends[j-2]
			}
			a := buf[aStart:ends[j-1]]
			b := buf[ends[j-1]:ends[j]]
			if sdCompareBytes(a, b) <= 0 {
				break
			}
			// Swap a and b: rotate buf[aStart:ends[j]] left by len(a).
			sdRotateLeft(buf[aStart:ends[j]], len(a))
			ends[j-1] = aStart + len(b)
		}
	}
}

func sdCompareBytes(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

func sdReverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

func sdRotateLeft(b []byte, k int) {
	sdReverse(b[:k])
	sdReverse(b[k:])
	sdReverse(b)
}

// sdTimeSize is the size of the complete UTCTime or GeneralizedTime element for t.
func sdTimeSize(t time.Time) int {
	if y := t.UTC().Year(); y >= 1950 && y < 2050 {
		return 2 + 13
	}
	return 2 + 15
}

func sdAppendDigits(dst []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		d := v
		for j := 0; j < i; j++ {
			d /= 10
		}
		dst = append(dst, byte('0'+d%10))
	}
	return dst
}

// sdAppendTime appends t as UTCTime (1950..2049) or GeneralizedTime, UTC, seconds.
func sdAppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y := t.Year()
	if y >= 1950 && y < 2050 {
		dst = append(dst, sdTagUTCTime, 13)
		dst = sdAppendDigits(dst, y%100, 2)
	} else {
		dst = append(dst, sdTagGenTime, 15)
		dst = sdAppendDigits(dst, y, 4)
	}
	dst = sdAppendDigits(dst, int(t.Month()), 2)
	dst = sdAppendDigits(dst, t.Day(), 2)
	dst = sdAppendDigits(dst, t.Hour(), 2)
	dst = sdAppendDigits(dst, t.Minute(), 2)
	dst = sdAppendDigits(dst, t.Second(), 2)
	return append(dst, 'Z')
}

// ParseTimeAttribute reads a signingTime attribute value: a UTCTime or a
// GeneralizedTime element.
func ParseTimeAttribute(der []byte) (time.Time, error) {
	s := cryptobyte.String(der)
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return time.Time{}, malformed("UTCTime")
		}
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return time.Time{}, malformed("GeneralizedTime")
		}
	default:
		return time.Time{}, malformed("signing time is neither UTCTime nor GeneralizedTime")
	}
	if !s.Empty() {
		return time.Time{}, malformed("signing time: trailing data")
	}
	return t, nil
}

// ParseOIDAttribute reads an attribute value that is an OBJECT IDENTIFIER (contentType).
func ParseOIDAttribute(der []byte) (asn1.ObjectIdentifier, error) {
	s := cryptobyte.String(der)
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1ObjectIdentifier(&oid) || !s.Empty() {
		return nil, malformed("OBJECT IDENTIFIER attribute value")
	}
	return oid, nil
}

// OIDAttributeEquals reports whether the attribute value der is exactly the DER of oid,
// without allocating.
func OIDAttributeEquals(der []byte, oid asn1.ObjectIdentifier) bool {
	if !sdOidValid(oid) {
		return false
	}
	var buf [64]byte
	enc := sdAppendOID(buf[:0], oid)
	return len(enc) == len(der) && sdCompareBytes(enc, der) == 0
}

// ParseOctetStringAttribute reads an attribute value that is an OCTET STRING
// (messageDigest).
func ParseOctetStringAttribute(der []byte) ([]byte, error) {
	s := cryptobyte.String(der)
	var v cryptobyte.String
	if !s.ReadASN1(&v, cbasn1.OCTET_STRING) || !s.Empty() {
		return nil, malformed("OCTET STRING attribute value")
	}
	return v, nil
}
