package baseline

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

// TestAESWrapRFC3394 checks the key wrap against RFC 3394 section 4.6 (256-bit KEK,
// 256-bit key), so the ECDH baseline does the real amount of work.
func TestAESWrapRFC3394(t *testing.T) {
	kek, _ := hex.DecodeString("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	key, _ := hex.DecodeString("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	want, _ := hex.DecodeString("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
	got, err := aesWrap(kek, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("wrap = %X, want %X", got, want)
	}
	back, err := aesUnwrap(kek, got)
	if err != nil || !bytes.Equal(back, key) {
		t.Fatalf("unwrap = %X, %v", back, err)
	}
	got[3] ^= 1
	if _, err := aesUnwrap(kek, got); err == nil {
		t.Fatal("tampered wrap accepted")
	}
}

// TestEveryPrimitive runs every operation once per family and size, and checks that a
// bad input fails (so a primitive that does nothing cannot look fast).
func TestEveryPrimitive(t *testing.T) {
	k, err := LoadKeys(t.TempDir() + "/pki")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []Op{OpSign, OpVerify, OpEncrypt, OpDecrypt} {
		for _, alg := range []Alg{RSA, ECDSA, SM2} {
			for _, size := range []int{1024, 65536} {
				spec := Spec{Op: op, Alg: alg, Size: size}
				t.Run(spec.String(), func(t *testing.T) {
					f, err := k.Prepare(spec)
					if err != nil {
						t.Fatal(err)
					}
					for _, fn := range []func() error{f.Full, f.Data, f.Key} {
						if err := fn(); err != nil {
							t.Fatal(err)
						}
					}
				})
			}
		}
	}
	if _, err := k.Prepare(Spec{Op: "nope", Alg: SM2, Size: 1}); err == nil {
		t.Error("unknown op accepted")
	}
	if _, err := k.Prepare(Spec{Op: OpSign, Alg: "dsa", Size: 1}); err == nil {
		t.Error("unknown alg accepted")
	}
}

func TestMeasure(t *testing.T) {
	n := 0
	c, err := Measure(func() error {
		n++
		x := 0
		for i := 0; i < 20000; i++ {
			x += i
		}
		_ = x
		return nil
	}, 30*time.Millisecond, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c.Ops == 0 || c.Ops+1 != n || c.Wall <= 0 {
		t.Errorf("cost %+v after %d calls", c, n)
	}
	if median([]time.Duration{3, 1, 2}) != 2 || median([]time.Duration{4, 1, 3, 2}) != 2 {
		t.Error("median")
	}
}
