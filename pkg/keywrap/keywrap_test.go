package keywrap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The test vectors of RFC 3394 §4.
func TestRFC3394Vectors(t *testing.T) {
	for _, c := range []struct{ kek, key, want string }{
		{"000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
		{"000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF", "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
		{"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF", "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
		{"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F", "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
	} {
		got, err := Wrap(h(c.kek), h(c.key))
		if err != nil || !bytes.Equal(got, h(c.want)) {
			t.Fatalf("Wrap = %X, %v; want %s", got, err, c.want)
		}
		back, err := Unwrap(h(c.kek), got)
		if err != nil || !bytes.Equal(back, h(c.key)) {
			t.Fatalf("Unwrap = %X, %v", back, err)
		}
		got[3] ^= 1
		if _, err := Unwrap(h(c.kek), got); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("tampered: %v", err)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 16), make([]byte, 25)} {
		if _, err := Unwrap(make([]byte, 16), bad); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("Unwrap(%d bytes): %v", len(bad), err)
		}
	}
}
