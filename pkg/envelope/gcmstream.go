package envelope

// GCM in pieces.
//
// Go's cipher.AEAD seals and opens whole messages only, and a streamed envelope is
// larger than memory. gcmStream is GCM (NIST SP 800-38D) split into its parts: CTR
// encryption from inc32(J0), and GHASH over the ciphertext, fed as it passes. Only
// 96-bit nonces are handled (J0 = nonce || 1, what every writer uses). The CTR
// stream is cipher.NewCTR, which counts over all 128 bits where GCM counts over the
// low 32: they agree for the first 2^32 - 2 blocks (64 GiB), past which a streamed
// message is refused.
//
// The additional authenticated data of an AuthEnvelopedData (its authAttrs) comes
// after the content, so GHASH over the ciphertext is computed first and the AAD
// joined at the end, by linearity: GHASH(A || C) = GHASH(A)·H^m ⊕ GHASH(C) for m
// ciphertext blocks, before the length block. Tests compare every piece with
// crypto/cipher's GCM.
//
// GHASH over the bulk of the ciphertext runs in crypto/cipher's own GCM (assembly
// on amd64 and arm64), by the same linearity: sealing nothing with X as additional
// data under a fixed nonce gives GHASH(X || len(X)) ⊕ E(J0), from which
// GHASH(X) = (tag ⊕ E(J0))·H⁻¹ ⊕ len(X) is recovered and folded in as
// y·H^m ⊕ GHASH(X). The few products in GF(2^128) this needs per piece (and the
// last partial block, the lengths) use 4-bit tables, as crypto/cipher's portable
// GCM did.

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// gcmMaxBytes is the most ciphertext a gcmStream handles (see above).
const gcmMaxBytes = (1<<32 - 3) * 16

type gfElement struct{ low, high uint64 }

func gfDouble(x gfElement) gfElement {
	msb := x.high&1 == 1
	d := gfElement{low: x.low >> 1, high: x.high>>1 | x.low<<63}
	if msb {
		d.low ^= 0xe100000000000000
	}
	return d
}

func reverse4(i int) int {
	i = ((i << 2) & 0xc) | ((i >> 2) & 0x3)
	i = ((i << 1) & 0xa) | ((i >> 1) & 0x5)
	return i
}

var gfReduction = [16]uint16{
	0x0000, 0x1c20, 0x3840, 0x2460, 0x7080, 0x6ca0, 0x48c0, 0x54e0,
	0xe100, 0xfd20, 0xd940, 0xc560, 0x9180, 0x8da0, 0xa9c0, 0xb5e0,
}

// ghashKey holds the multiples of H for the table multiplication.
type ghashKey struct {
	h     gfElement
	table [16]gfElement
}

func newGHASHKey(h [16]byte) *ghashKey {
	k := &ghashKey{h: gfElement{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])}}
	k.table[reverse4(1)] = k.h
	for i := 2; i < 16; i += 2 {
		k.table[reverse4(i)] = gfDouble(k.table[reverse4(i/2)])
		x := k.table[reverse4(i)]
		k.table[reverse4(i+1)] = gfElement{x.low ^ k.h.low, x.high ^ k.h.high}
	}
	return k
}

// mulH sets y to y·H.
func (k *ghashKey) mulH(y *gfElement) {
	var z gfElement
	for i := 0; i < 2; i++ {
		word := y.high
		if i == 1 {
			word = y.low
		}
		for j := 0; j < 64; j += 4 {
			msw := z.high & 0xf
			z.high >>= 4
			z.high |= z.low << 60
			z.low >>= 4
			z.low ^= uint64(gfReduction[msw]) << 48
			t := &k.table[word&0xf]
			z.low ^= t.low
			z.high ^= t.high
			word >>= 4
		}
	}
	*y = z
}

// update folds whole blocks into y.
func (k *ghashKey) update(y *gfElement, blocks []byte) {
	for len(blocks) >= 16 {
		y.low ^= binary.BigEndian.Uint64(blocks)
		y.high ^= binary.BigEndian.Uint64(blocks[8:])
		k.mulH(y)
		blocks = blocks[16:]
	}
}

// updatePadded folds data into y, zero-padding a partial last block.
func (k *ghashKey) updatePadded(y *gfElement, data []byte) {
	full := len(data) &^ 15
	k.update(y, data[:full])
	if full < len(data) {
		var b [16]byte
		copy(b[:], data[full:])
		k.update(y, b[:])
	}
}

// gfMul is the generic product in GF(2^128), GCM bit order (SP 800-38D Algorithm 1).
func gfMul(x, y gfElement) gfElement {
	var z gfElement
	v := y
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = x.low >> (63 - i) & 1
		} else {
			bit = x.high >> (127 - i) & 1
		}
		mask := -bit
		z.low ^= v.low & mask
		z.high ^= v.high & mask
		v = gfDouble(v)
	}
	return z
}

// gfPow returns x^n.
func gfPow(x gfElement, n uint64) gfElement {
	r := gfElement{low: 1 << 63} // the unit: the coefficient of x^0 is the top bit
	for n > 0 {
		if n&1 == 1 {
			r = gfMul(r, x)
		}
		x = gfMul(x, x)
		n >>= 1
	}
	return r
}

// gfInverse returns x⁻¹ = x^(2^128-2), or ok = false for zero.
func gfInverse(x gfElement) (gfElement, bool) {
	if x.low == 0 && x.high == 0 {
		return x, false
	}
	r := gfElement{low: 1 << 63}
	t := x
	for i := 1; i < 128; i++ {
		t = gfMul(t, t)
		r = gfMul(r, t)
	}
	return r, true
}

// bulkGHASH computes GHASH over whole blocks with crypto/cipher's GCM under the
// same key (see the file comment).
type bulkGHASH struct {
	aead  cipher.AEAD
	e0    [16]byte // E(J0) of the all-zero nonce
	hInv  gfElement
	powM  uint64 // the m of the cached H^m
	powHM gfElement
	tag   [16]byte
}

func newBulkGHASH(block cipher.Block, h gfElement) *bulkGHASH {
	hInv, ok := gfInverse(h)
	if !ok {
		return nil
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil
	}
	b := &bulkGHASH{aead: aead, hInv: hInv}
	var j0 [16]byte
	j0[15] = 1
	block.Encrypt(b.e0[:], j0[:])
	return b
}

// fold sets y to GHASH(y-state, blocks) for whole blocks.
func (b *bulkGHASH) fold(k *ghashKey, y *gfElement, blocks []byte) {
	var nonce [gcmNonceLen]byte
	t := b.aead.Seal(b.tag[:0], nonce[:], nil, blocks)
	g := gfElement{binary.BigEndian.Uint64(t[:8]) ^ binary.BigEndian.Uint64(b.e0[:8]),
		binary.BigEndian.Uint64(t[8:16]) ^ binary.BigEndian.Uint64(b.e0[8:])}
	x := gfMul(g, b.hInv)
	x.low ^= uint64(len(blocks)) * 8
	m := uint64(len(blocks) / 16)
	if b.powM != m {
		b.powM, b.powHM = m, gfPow(k.h, m)
	}
	p := gfMul(*y, b.powHM)
	y.low = p.low ^ x.low
	y.high = p.high ^ x.high
}

// bulkMin is the smallest run of blocks worth handing to bulkGHASH.
const bulkMin = 1024

// gcmStream encrypts or decrypts one message in pieces and computes its tag.
type gcmStream struct {
	bulk    *bulkGHASH // nil: the tables alone
	key     *ghashKey
	ctr     cipher.Stream
	y       gfElement // GHASH of the ciphertext blocks so far (from zero)
	pending [16]byte  // a partial ciphertext block not yet folded
	npend   int
	n       uint64 // ciphertext bytes so far
	ej0     [16]byte
	tooLong bool
}

func newGCMStream(block cipher.Block, nonce []byte) (*gcmStream, error) {
	if block.BlockSize() != 16 || len(nonce) != gcmNonceLen {
		return nil, errors.New("envelope: streamed GCM needs a 128-bit block cipher and a 96-bit nonce")
	}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	g := &gcmStream{key: newGHASHKey(h)}
	g.bulk = newBulkGHASH(block, g.key.h)
	var j0 [16]byte
	copy(j0[:], nonce)
	j0[15] = 1
	block.Encrypt(g.ej0[:], j0[:])
	j0[15] = 2
	g.ctr = cipher.NewCTR(block, j0[:])
	return g, nil
}

// hash folds ciphertext into the GHASH.
func (g *gcmStream) hash(ct []byte) {
	g.n += uint64(len(ct))
	if g.n > gcmMaxBytes {
		g.tooLong = true
	}
	if g.npend > 0 {
		c := copy(g.pending[g.npend:], ct)
		g.npend += c
		ct = ct[c:]
		if g.npend < 16 {
			return
		}
		g.key.update(&g.y, g.pending[:])
		g.npend = 0
	}
	full := len(ct) &^ 15
	if g.bulk != nil && full >= bulkMin {
		g.bulk.fold(g.key, &g.y, ct[:full])
	} else {
		g.key.update(&g.y, ct[:full])
	}
	g.npend = copy(g.pending[:], ct[full:])
}

// seal encrypts src into dst (same length; they may be the same slice) and hashes
// the ciphertext.
func (g *gcmStream) seal(dst, src []byte) {
	g.ctr.XORKeyStream(dst, src)
	g.hash(dst[:len(src)])
}

// crypt applies the key stream alone (decryption of ciphertext already hashed).
func (g *gcmStream) crypt(dst, src []byte) { g.ctr.XORKeyStream(dst, src) }

// tag returns the tag of the ciphertext hashed so far with aad as additional data,
// or an error past the length GCM allows here.
func (g *gcmStream) tag(aad []byte) ([16]byte, error) {
	var out [16]byte
	if g.tooLong {
		return out, errors.New("envelope: streamed GCM content too long")
	}
	y := g.y
	if g.npend > 0 {
		var b [16]byte
		copy(b[:], g.pending[:g.npend])
		g.key.update(&y, b[:])
	}
	if len(aad) > 0 {
		var a gfElement
		g.key.updatePadded(&a, aad)
		m := (g.n + 15) / 16
		a = gfMul(a, gfPow(g.key.h, m))
		y.low ^= a.low
		y.high ^= a.high
	}
	y.low ^= uint64(len(aad)) * 8
	y.high ^= g.n * 8
	g.key.mulH(&y)
	binary.BigEndian.PutUint64(out[:8], y.low)
	binary.BigEndian.PutUint64(out[8:], y.high)
	subtle.XORBytes(out[:], out[:], g.ej0[:])
	return out, nil
}
