package cms

import (
	"encoding/asn1"
	"errors"
	"math/big"
)

// envDER appends DER to one buffer: an element is opened with room for the longest
// length header this package writes and closed by patching in the minimal length and
// moving the body down over the unused bytes. cryptobyte.Builder allocates a child
// builder per nested element (about fifty allocations for one envelope); this writes
// the whole envelope into one preallocated slice. The body moves cost a few copies of
// the content, far below one allocation at the sizes involved.
type envDER struct {
	b   []byte
	err error
}

// envLenReserve is the header room left after the tag: 0x84 and four length octets.
const envLenReserve = 5

func (w *envDER) begin(tag byte) int {
	w.b = append(w.b, tag, 0, 0, 0, 0, 0)
	return len(w.b)
}

func (w *envDER) end(start int) {
	n := len(w.b) - start
	var hdr [envLenReserve]byte
	h := hdr[:0]
	switch {
	case n < 0x80:
		h = append(h, byte(n))
	case n <= 0xff:
		h = append(h, 0x81, byte(n))
	case n <= 0xffff:
		h = append(h, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		h = append(h, 0x83, byte(n>>16), byte(n>>8), byte(n))
	case uint64(n) <= 0xffffffff:
		h = append(h, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		w.fail(errors.New("cms: element too long"))
		return
	}
	at := start - envLenReserve
	copy(w.b[at:], h)
	if shift := envLenReserve - len(h); shift > 0 {
		copy(w.b[at+len(h):], w.b[start:])
		w.b = w.b[:len(w.b)-shift]
	}
}

func (w *envDER) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// element appends tag, length and body.
func (w *envDER) element(tag byte, body []byte) {
	s := w.begin(tag)
	w.b = append(w.b, body...)
	w.end(s)
}

func (w *envDER) raw(der []byte) { w.b = append(w.b, der...) }

func (w *envDER) int64(v int64) {
	var buf [9]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte(v)
		v >>= 8
		if (v == 0 && buf[i]&0x80 == 0) || (v == -1 && buf[i]&0x80 != 0) {
			break
		}
	}
	w.element(0x02, buf[i:])
}

// bigInt appends an INTEGER in minimal two's complement.
func (w *envDER) bigInt(n *big.Int) {
	if n == nil {
		w.fail(errors.New("cms: nil INTEGER"))
		return
	}
	s := w.begin(0x02)
	switch n.Sign() {
	case 0:
		w.b = append(w.b, 0)
	case 1:
		l := (n.BitLen() + 7) / 8
		if n.BitLen()%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b = append(w.b, make([]byte, l)...)
		n.FillBytes(w.b[len(w.b)-l:])
	default:
		// -n-1, complemented, with a leading 0xff when its top bit is clear.
		m := new(big.Int).Neg(n)
		m.Sub(m, big.NewInt(1))
		bs := m.Bytes()
		for i := range bs {
			bs[i] ^= 0xff
		}
		if len(bs) == 0 || bs[0]&0x80 == 0 {
			w.b = append(w.b, 0xff)
		}
		w.b = append(w.b, bs...)
	}
	w.end(s)
}

func (w *envDER) oid(oid asn1.ObjectIdentifier) {
	if len(oid) < 2 || oid[0] > 2 || (oid[0] < 2 && oid[1] >= 40) {
		w.fail(errors.New("cms: invalid object identifier"))
		return
	}
	s := w.begin(0x06)
	w.b = appendBase128(w.b, uint64(oid[0])*40+uint64(oid[1]))
	for _, v := range oid[2:] {
		if v < 0 {
			w.fail(errors.New("cms: invalid object identifier"))
			return
		}
		w.b = appendBase128(w.b, uint64(v))
	}
	w.end(s)
}

func appendBase128(b []byte, v uint64) []byte {
	n := 1
	for t := v >> 7; t > 0; t >>= 7 {
		n++
	}
	for i := n - 1; i >= 0; i-- {
		c := byte(v>>(7*uint(i))) & 0x7f
		if i > 0 {
			c |= 0x80
		}
		b = append(b, c)
	}
	return b
}

func (w *envDER) algID(a AlgorithmIdentifier) {
	s := w.begin(0x30)
	w.oid(a.Algorithm)
	w.raw(a.Parameters)
	w.end(s)
}

func (w *envDER) issuerAndSerial(ias *IssuerAndSerial) {
	s := w.begin(0x30)
	w.raw(ias.Issuer)
	w.bigInt(ias.Serial)
	w.end(s)
}

func (w *envDER) attrs(tag byte, attrs []Attribute) {
	enc, err := MarshalAttributeSet(attrs)
	if err != nil {
		w.fail(err)
		return
	}
	w.element(tag, enc)
}

func (w *envDER) bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}
