package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"

	"github.com/emmansun/gmsm/sm4"
)

// TestGCMStreamMatchesCryptoCipher: the pieces of gcmStream, fed in random chunks,
// give crypto/cipher's GCM ciphertext and tag, with and without additional data, for
// AES and SM4.
func TestGCMStreamMatchesCryptoCipher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, newBlock := range []func([]byte) (cipher.Block, error){newAES, sm4.NewCipher} {
		for _, size := range []int{0, 1, 15, 16, 17, 31, 32, 33, 1000, 5000, 65536 + 7, 300_001} {
			for _, aadLen := range []int{0, 5, 16, 40} {
				key := make([]byte, 16)
				nonce := make([]byte, 12)
				pt := make([]byte, size)
				aad := make([]byte, aadLen)
				for _, b := range [][]byte{key, nonce, pt, aad} {
					for i := range b {
						b[i] = byte(rng.Uint32())
					}
				}
				block, _ := newBlock(key)
				aead, _ := cipher.NewGCM(block)
				want := aead.Seal(nil, nonce, pt, aad)

				g, err := newGCMStream(block, nonce)
				if err != nil {
					t.Fatal(err)
				}
				ct := make([]byte, 0, size)
				for rest := pt; len(rest) > 0; {
					n := min(len(rest), 1+rng.IntN(40)+rng.IntN(2)*rng.IntN(20000))
					out := make([]byte, n)
					g.seal(out, rest[:n])
					ct = append(ct, out...)
					rest = rest[n:]
				}
				tag, err := g.tag(aad)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(append(ct, tag[:]...), want) {
					t.Fatalf("size %d aad %d: differs from crypto/cipher", size, aadLen)
				}
				// Decryption: hash the ciphertext, check the tag, then decrypt.
				d, _ := newGCMStream(block, nonce)
				d.hash(ct[:len(ct)/2])
				d.hash(ct[len(ct)/2:])
				dtag, _ := d.tag(aad)
				if dtag != tag {
					t.Fatal("decryption tag differs")
				}
				back := make([]byte, len(ct))
				d.crypt(back, ct)
				if !bytes.Equal(back, pt) {
					t.Fatal("decryption differs")
				}
			}
		}
	}
	_ = aes.BlockSize
}

// BenchmarkGCMStreamSeal is the streamed GCM beside crypto/cipher's whole-message
// GCM on the same 256 KiB pieces.
func BenchmarkGCMStreamSeal(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	g, _ := newGCMStream(block, make([]byte, 12))
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		g.seal(buf, buf)
	}
}

func BenchmarkGCMCryptoCipherSeal(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	a, _ := cipher.NewGCM(block)
	buf := make([]byte, 256<<10)
	nonce := make([]byte, 12)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		a.Seal(buf[:0], nonce, buf, nil)
	}
}
