package cms

import (
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Encoders only the tests need: the package writes whole ContentInfos, the tests also
// look at the structures inside them.

// marshalDER returns the DER of one structure on its own, without a ContentInfo around it.
func marshalDER(m interface{ marshalInto(*cryptobyte.Builder) }) ([]byte, error) {
	var b cryptobyte.Builder
	m.marshalInto(&b)
	return b.Bytes()
}

// marshalIVParameters returns the DER OCTET STRING holding iv, the parameters of a
// CBC content-encryption algorithm.
func marshalIVParameters(iv []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1OctetString(iv)
	return b.BytesOrPanic()
}

// marshalTime returns the signing-time encoding of t, or nil for a year it cannot hold.
func marshalTime(t time.Time) []byte {
	var b cryptobyte.Builder
	addTime(&b, t)
	der, _ := b.Bytes()
	return der
}
