package cms

// A second DER writer, for SignedData and the signed attributes a signer writes only;
// every other structure is written with cryptobyte.Builder.
//
// cryptobyte.Builder allocates a child Builder for every nested element, and a
// SignedData nests about twenty. Sign runs once per request and its own work beside
// the signature is small, so those allocations are a large part of it. This writer
// computes each element's length bottom-up and appends the headers top-down into one
// buffer allocated at its exact size. BenchmarkMarshal runs it beside cryptobyte on
// the same SignedData and signed attributes, and pkg/sign's
// BenchmarkSignOverheadSkipSelfCheck shows what it saves per signature; the writer
// stays only while they show a difference. Parsing uses cryptobyte.

import (
	"encoding/asn1"
	"math/big"
)

const (
	sdTagInteger      = 0x02
	sdTagNull         = 0x05
	sdTagOID          = 0x06
	sdTagUTCTime      = 0x17
	sdTagGenTime      = 0x18
	sdTagSequence     = 0x30
	sdTagSet          = 0x31
	sdTagContext0Prim = 0x80
	sdTagContext0Cons = 0xa0
	sdTagContext1Cons = 0xa1
)

// sdTlvSize is the size of a single-byte-tag element whose content is n bytes.
func sdTlvSize(n int) int {
	if n < 0x80 {
		return 2 + n
	}
	return 2 + bytesFor(n) + n
}

// sdAppendTL appends a single-byte tag and the DER length n.
func sdAppendTL(dst []byte, tag byte, n int) []byte {
	dst = append(dst, tag)
	if n < 0x80 {
		return append(dst, byte(n))
	}
	l := bytesFor(n)
	dst = append(dst, 0x80|byte(l))
	for i := l - 1; i >= 0; i-- {
		dst = append(dst, byte(n>>(8*i)))
	}
	return dst
}

// sdOidValid reports whether oid can be DER encoded.
func sdOidValid(oid asn1.ObjectIdentifier) bool {
	if len(oid) < 2 || oid[0] < 0 || oid[0] > 2 || oid[1] < 0 || (oid[0] < 2 && oid[1] >= 40) {
		return false
	}
	for _, a := range oid[2:] {
		if a < 0 {
			return false
		}
	}
	return true
}

func sdBase128Size(v int) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func sdAppendBase128(dst []byte, v int) []byte {
	n := sdBase128Size(v)
	for i := n - 1; i >= 0; i-- {
		b := byte(v>>(7*i)) & 0x7f
		if i != 0 {
			b |= 0x80
		}
		dst = append(dst, b)
	}
	return dst
}

// sdOidSize is the size of the OID's content octets (oid must be valid).
func sdOidSize(oid asn1.ObjectIdentifier) int {
	n := sdBase128Size(oid[0]*40 + oid[1])
	for _, a := range oid[2:] {
		n += sdBase128Size(a)
	}
	return n
}

// sdAppendOID appends the complete OBJECT IDENTIFIER element.
func sdAppendOID(dst []byte, oid asn1.ObjectIdentifier) []byte {
	dst = sdAppendTL(dst, sdTagOID, sdOidSize(oid))
	dst = sdAppendBase128(dst, oid[0]*40+oid[1])
	for _, a := range oid[2:] {
		dst = sdAppendBase128(dst, a)
	}
	return dst
}

func sdAlgIDSize(a AlgorithmIdentifier) int {
	return sdTlvSize(sdTlvSize(sdOidSize(a.Algorithm)) + len(a.Parameters))
}

func sdAppendAlgID(dst []byte, a AlgorithmIdentifier) []byte {
	dst = sdAppendTL(dst, sdTagSequence, sdTlvSize(sdOidSize(a.Algorithm))+len(a.Parameters))
	dst = sdAppendOID(dst, a.Algorithm)
	return append(dst, a.Parameters...)
}

// sdIntSize is the size of a complete INTEGER element holding v.
func sdIntSize(v int64) int {
	n := 1
	for v > 127 || v < -128 {
		v >>= 8
		n++
	}
	return 2 + n
}

func sdAppendInt(dst []byte, v int64) []byte {
	n := sdIntSize(v) - 2
	dst = append(dst, sdTagInteger, byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// bigIntContent returns the content length of the INTEGER encoding of a
// non-negative n.
func sdBigIntContentSize(n *big.Int) int {
	bl := n.BitLen()
	if bl == 0 {
		return 1
	}
	l := (bl + 7) / 8
	if bl%8 == 0 { // top bit set: a leading zero keeps it positive
		l++
	}
	return l
}

// sdNegIntContent returns the two's complement content octets of a negative n.
func sdNegIntContent(n *big.Int) []byte {
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	for i := range b {
		b[i] ^= 0xff
	}
	if len(b) == 0 || b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	return b
}

// sdBigIntSize is the size of the complete INTEGER element holding n.
func sdBigIntSize(n *big.Int) int {
	if n.Sign() < 0 {
		return sdTlvSize(len(sdNegIntContent(n)))
	}
	return sdTlvSize(sdBigIntContentSize(n))
}

func sdAppendBigInt(dst []byte, n *big.Int) []byte {
	if n.Sign() < 0 {
		c := sdNegIntContent(n)
		dst = sdAppendTL(dst, sdTagInteger, len(c))
		return append(dst, c...)
	}
	l := sdBigIntContentSize(n)
	dst = sdAppendTL(dst, sdTagInteger, l)
	start := len(dst)
	for i := 0; i < l; i++ {
		dst = append(dst, 0)
	}
	if n.Sign() > 0 {
		n.FillBytes(dst[start:])
	}
	return dst
}
