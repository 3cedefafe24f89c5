package envelope

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// AES key wrap (RFC 3394) with the default initial value, as the key-agreement
// recipients of CMS use it (RFC 3565 / RFC 5753: id-aes128-wrap, id-aes256-wrap).
// The standard library has none.

var keyWrapIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

var errKeyWrap = errors.New("envelope: key unwrap failed")

// aesKeyWrap wraps key (a multiple of 8 bytes, at least 16) under kek.
func aesKeyWrap(kek, key []byte) ([]byte, error) {
	if len(key) < 16 || len(key)%8 != 0 {
		return nil, errors.New("envelope: key to wrap must be a multiple of 8 bytes, at least 16")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	copy(out[8:], key)
	var b [16]byte
	copy(b[:8], keyWrapIV[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[8:], out[8*i:8*i+8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(out[8*i:], b[8:])
		}
	}
	copy(out[:8], b[:8])
	return out, nil
}

// aesKeyUnwrap reverses aesKeyWrap. It runs the same steps whatever the input, and
// checks the integrity value in constant time.
func aesKeyUnwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 24 || len(wrapped)%8 != 0 {
		return nil, errKeyWrap
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, errKeyWrap
	}
	n := len(wrapped)/8 - 1
	out := make([]byte, 8*n)
	copy(out, wrapped[8:])
	var b [16]byte
	copy(b[:8], wrapped[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^t)
			copy(b[8:], out[8*(i-1):8*i])
			block.Decrypt(b[:], b[:])
			copy(out[8*(i-1):], b[8:])
		}
	}
	if subtle.ConstantTimeCompare(b[:8], keyWrapIV[:]) != 1 {
		clear(out)
		return nil, errKeyWrap
	}
	return out, nil
}
