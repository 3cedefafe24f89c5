package cms

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The signed attributes a signer writes (RFC 5652 §11): contentType, messageDigest
// and signingTime, as one DER SET OF sorted by encoding. They are built here without
// the generic Attribute values because this runs once per signature.

// AppendSigningAttributes appends the DER SET OF (tag 31, as the signature covers it)
// holding the contentType, messageDigest and, unless signingTime is zero, signingTime
// attributes, sorted by their encodings as DER requires of a SET OF. signingTime is
// written as UTCTime for the years 1950 to 2049 and as GeneralizedTime otherwise
// (RFC 5652 §11.3), in UTC to the second. In a SignerInfo the same bytes are tagged
// [0] IMPLICIT (A0); SignerInfo.RawSignedAttrs accepts either tag.
func AppendSigningAttributes(dst []byte, contentType asn1.ObjectIdentifier, digest []byte, signingTime time.Time) ([]byte, error) {
	if !signingTime.IsZero() {
		if y := signingTime.UTC().Year(); y < 0 || y > 9999 {
			return nil, errors.New("cms: signing time out of range")
		}
	}
	start := len(dst)
	// Room for the three attributes: their headers and OIDs take under 80 bytes.
	b := cryptobyte.NewBuilder(slices.Grow(dst, 96+len(digest)+5*len(contentType)))
	attr := func(b *cryptobyte.Builder, typ asn1.ObjectIdentifier, value cryptobyte.BuilderContinuation) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(typ)
			b.AddASN1(cbasn1.SET, value)
		})
	}
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		attr(b, OIDAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(contentType) })
		attr(b, OIDAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) })
		if !signingTime.IsZero() {
			attr(b, OIDAttrSigningTime, func(b *cryptobyte.Builder) { addTime(b, signingTime) })
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	// The attributes were written in a fixed order; sort them where they stand (the
	// SET's length does not change).
	set := cryptobyte.String(out[start:])
	var body cryptobyte.String
	var tag cbasn1.Tag
	if !set.ReadAnyASN1(&body, &tag) {
		return nil, errors.New("cms: internal error: signed attributes do not read back")
	}
	var endsBuf [3]int
	ends := endsBuf[:0]
	for rest, off := body, 0; !rest.Empty(); {
		var e cryptobyte.String
		if !rest.ReadAnyASN1Element(&e, &tag) {
			return nil, errors.New("cms: internal error: signed attributes do not read back")
		}
		off += len(e)
		ends = append(ends, off)
	}
	sortInPlace(body, ends)
	return out, nil
}

// addTime appends t as UTCTime (1950..2049) or GeneralizedTime, in UTC, to the second.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

// sortInPlace sorts the consecutive elements of buf, which end at the given offsets,
// by their encodings. It swaps adjacent runs by rotation, so it needs no scratch.
func sortInPlace(buf []byte, ends []int) {
	n := len(ends)
	for i := 1; i < n; i++ {
		for j := i; j > 0; j-- {
			aStart := 0
			if j > 1 {
				aStart = ends[j-2]
			}
			a := buf[aStart:ends[j-1]]
			b := buf[ends[j-1]:ends[j]]
			if bytes.Compare(a, b) <= 0 {
				break
			}
			// Swap a and b: rotate buf[aStart:ends[j]] left by len(a).
			rotateLeft(buf[aStart:ends[j]], len(a))
			ends[j-1] = aStart + len(b)
		}
	}
}

func rotateLeft(b []byte, k int) {
	slices.Reverse(b[:k])
	slices.Reverse(b[k:])
	slices.Reverse(b)
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
	s := cryptobyte.String(der)
	var body cryptobyte.String
	return s.ReadASN1(&body, cbasn1.OBJECT_IDENTIFIER) && s.Empty() && oidContentEquals(body, oid)
}

// oidContentEquals reports whether body is exactly the DER content octets of oid: the
// minimal base-128 encoding of 40*oid[0]+oid[1], then of each further arc.
func oidContentEquals(body []byte, oid asn1.ObjectIdentifier) bool {
	if len(oid) < 2 || oid[0] < 0 || oid[0] > 2 || oid[1] < 0 || (oid[0] < 2 && oid[1] >= 40) {
		return false
	}
	for i := 1; i < len(oid); i++ {
		v := oid[i]
		if i == 1 {
			v += 40 * oid[0]
		}
		if v < 0 {
			return false
		}
		n := 1
		for t := v >> 7; t > 0; t >>= 7 {
			n++
		}
		if len(body) < n {
			return false
		}
		for j := n - 1; j >= 0; j-- {
			c := byte(v>>(7*j)) & 0x7f
			if j > 0 {
				c |= 0x80
			}
			if body[n-1-j] != c {
				return false
			}
		}
		body = body[n:]
	}
	return len(body) == 0
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
