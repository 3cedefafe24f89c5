// Package keywrap is AES key wrap (RFC 3394) with the default initial value, as CMS
// uses it for key-agreement and KEK recipients (RFC 3565, RFC 5753: id-aes128-wrap,
// id-aes192-wrap, id-aes256-wrap). The standard library has none.
//
// It is a package of its own because two sides need the same code: pkg/envelope
// wraps under keys derived by ECDH, and the keystore's secret keys wrap and unwrap
// for KEK recipients.
package keywrap

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

var iv = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// ErrUnwrap is the one error of Unwrap about the data: it does not say why.
var ErrUnwrap = errors.New("keywrap: key unwrap failed")

// Wrap wraps key (a multiple of 8 bytes, at least 16) under the AES key kek.
func Wrap(kek, key []byte) ([]byte, error) {
	if len(key) < 16 || len(key)%8 != 0 {
		return nil, errors.New("keywrap: key to wrap must be a multiple of 8 bytes, at least 16")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	out := make([]byte, 8+len(key))
	copy(out[8:], key)
	var b [16]byte
	copy(b[:8], iv[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(b[8:], out[8*i:8*i+8])
			block.Encrypt(b[:], b[:])
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^uint64(n*j+i))
			copy(out[8*i:], b[8:])
		}
	}
	copy(out[:8], b[:8])
	return out, nil
}

// Unwrap reverses Wrap. It runs the same steps whatever the input and checks the
// integrity value in constant time; every failure is ErrUnwrap.
func Unwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 24 || len(wrapped)%8 != 0 {
		return nil, ErrUnwrap
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, ErrUnwrap
	}
	n := len(wrapped)/8 - 1
	out := make([]byte, 8*n)
	copy(out, wrapped[8:])
	var b [16]byte
	copy(b[:8], wrapped[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])^uint64(n*j+i))
			copy(b[8:], out[8*(i-1):8*i])
			block.Decrypt(b[:], b[:])
			copy(out[8*(i-1):], b[8:])
		}
	}
	if subtle.ConstantTimeCompare(b[:8], iv[:]) != 1 {
		clear(out)
		return nil, ErrUnwrap
	}
	return out, nil
}
