// Package sm2cipher reads and writes the encodings of an SM2 ciphertext (GB/T 32918.4:
// the point C1, the SM3 check value C3 and the masked message C2) that peers exchange.
//
// Peers disagree on the encoding, and a reader must know them all:
//
//	SM2Cipher ::= SEQUENCE {         -- GM/T 0009 / GM/T 0010: CMS and most devices
//	  XCoordinate INTEGER,
//	  YCoordinate INTEGER,
//	  HASH        OCTET STRING (SIZE(32)),   -- C3
//	  CipherText  OCTET STRING }             -- C2
//
//	04 || x || y || C3 || C2         -- C1C3C2, the order of GB/T 32918.4-2016
//	04 || x || y || C2 || C3         -- C1C2C3, the order of the 2010 draft
//	x || y || C2 || C3               -- CFCA's SADK (gmsm EncryptCFCA): C1C2C3, no 04
//
// The raw forms carry no length or order marker: the order is the caller's to say, and
// a missing 04 is told from a present one by whether the first 65 bytes are a point
// of the curve (a point is public, so looking tells nothing secret). ToASN1 turns any
// of them into the SM2Cipher form that gmsm's decrypter and the key stores take, so
// only one form reaches a private key.
package sm2cipher

import (
	"errors"

	"github.com/emmansun/gmsm/sm2"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Order is the order of C2 and C3 in a raw ciphertext.
type Order int

const (
	// C1C3C2 is the order of GB/T 32918.4-2016 (and GM/T 0009's ASN.1).
	C1C3C2 Order = iota
	// C1C2C3 is the older order, which CFCA's SADK writes without the 04 prefix.
	C1C2C3
)

const (
	coordLen = 32
	hashLen  = 32
	pointLen = 1 + 2*coordLen
)

// ErrMalformed is the error for bytes that are no SM2 ciphertext in the form asked.
var ErrMalformed = errors.New("sm2cipher: malformed SM2 ciphertext")

// IsASN1 reports whether ct is a well-formed SM2Cipher with nothing after it.
func IsASN1(ct []byte) bool {
	_, _, _, _, ok := parseASN1(ct)
	return ok
}

func parseASN1(ct []byte) (x, y, c3, c2 []byte, ok bool) {
	s := cryptobyte.String(ct)
	var seq, xs, ys, h, m cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() ||
		!seq.ReadASN1(&xs, cbasn1.INTEGER) || !seq.ReadASN1(&ys, cbasn1.INTEGER) ||
		!seq.ReadASN1(&h, cbasn1.OCTET_STRING) || !seq.ReadASN1(&m, cbasn1.OCTET_STRING) || !seq.Empty() {
		return nil, nil, nil, nil, false
	}
	x, okx := coordinate(xs)
	y, oky := coordinate(ys)
	if !okx || !oky || len(h) != hashLen || len(m) == 0 {
		return nil, nil, nil, nil, false
	}
	return x, y, h, m, true
}

// coordinate returns a non-negative INTEGER's content as 32 bytes, left-padded.
func coordinate(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return nil, false
	}
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > coordLen {
		return nil, false
	}
	out := make([]byte, coordLen)
	copy(out[coordLen-len(b):], b)
	return out, true
}

// onCurve reports whether p (04 || x || y) is a point of the SM2 curve.
func onCurve(p []byte) bool {
	_, err := sm2.NewPublicKey(p)
	return err == nil
}

// HasPrefix reports whether raw ciphertext ct starts with 04 followed by a point of
// the curve (and so is not CFCA's form without the prefix).
func HasPrefix(ct []byte) bool {
	return len(ct) > pointLen+hashLen && ct[0] == 0x04 && onCurve(ct[:pointLen])
}

// ToASN1 returns ct as an SM2Cipher. ct may be an SM2Cipher already (returned as
// is), or a raw ciphertext in order o, with or without the 04 prefix.
func ToASN1(ct []byte, o Order) ([]byte, error) {
	if IsASN1(ct) {
		return ct, nil
	}
	if o != C1C3C2 && o != C1C2C3 {
		return nil, errors.New("sm2cipher: unknown order")
	}
	var c1 []byte
	switch {
	case HasPrefix(ct):
		c1, ct = ct[:pointLen], ct[pointLen:]
	case len(ct) > pointLen-1+hashLen:
		c1 = append([]byte{0x04}, ct[:pointLen-1]...)
		if !onCurve(c1) {
			return nil, ErrMalformed
		}
		ct = ct[pointLen-1:]
	default:
		return nil, ErrMalformed
	}
	c2, c3 := ct[hashLen:], ct[:hashLen]
	if o == C1C2C3 {
		c2, c3 = ct[:len(ct)-hashLen], ct[len(ct)-hashLen:]
	}
	return marshalASN1(c1[1:1+coordLen], c1[1+coordLen:], c3, c2)
}

// AnyToASN1 returns ct as an SM2Cipher when the form need not be given: an
// SM2Cipher as is, a raw ciphertext with the 04 prefix in the order C1C3C2
// (GB/T 32918.4-2016), one without it in CFCA's order C1C2C3. This is how CMS key
// transport is read, where the encoding is not labelled.
func AnyToASN1(ct []byte) ([]byte, error) {
	if IsASN1(ct) {
		return ct, nil
	}
	if HasPrefix(ct) {
		return ToASN1(ct, C1C3C2)
	}
	return ToASN1(ct, C1C2C3)
}

func marshalASN1(x, y, c3, c2 []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addUnsigned(b, x)
		addUnsigned(b, y)
		b.AddASN1OctetString(c3)
		b.AddASN1OctetString(c2)
	})
	return b.Bytes()
}

// addUnsigned writes big-endian bytes as a non-negative INTEGER.
func addUnsigned(b *cryptobyte.Builder, v []byte) {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) {
		if len(v) > 0 && v[0]&0x80 != 0 {
			b.AddUint8(0)
		}
		b.AddBytes(v)
	})
}

// FromASN1 returns the SM2Cipher ct as a raw ciphertext: 04 || x || y followed by C3
// and C2 in order o; without prefix, the 04 is left out (CFCA's form with C1C2C3).
func FromASN1(ct []byte, o Order, prefix bool) ([]byte, error) {
	x, y, c3, c2, ok := parseASN1(ct)
	if !ok {
		return nil, ErrMalformed
	}
	out := make([]byte, 0, pointLen+hashLen+len(c2))
	if prefix {
		out = append(out, 0x04)
	}
	out = append(append(out, x...), y...)
	switch o {
	case C1C3C2:
		out = append(append(out, c3...), c2...)
	case C1C2C3:
		out = append(append(out, c2...), c3...)
	default:
		return nil, errors.New("sm2cipher: unknown order")
	}
	return out, nil
}
