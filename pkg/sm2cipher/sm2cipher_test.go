package sm2cipher

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/emmansun/gmsm/sm2"
)

// TestForms encrypts with gmsm in each of its encodings (an implementation we did not
// write) and checks that every form turns into one SM2Cipher that gmsm decrypts, and
// back.
func TestForms(t *testing.T) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("sixteen byte key")
	asn, err := sm2.EncryptASN1(rand.Reader, &priv.PublicKey, msg)
	if err != nil {
		t.Fatal(err)
	}
	c1c3c2, err := sm2.Encrypt(rand.Reader, &priv.PublicKey, msg, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C3C2))
	if err != nil {
		t.Fatal(err)
	}
	c1c2c3, err := sm2.Encrypt(rand.Reader, &priv.PublicKey, msg, sm2.NewPlainEncrypterOpts(sm2.MarshalUncompressed, sm2.C1C2C3))
	if err != nil {
		t.Fatal(err)
	}
	cfca := c1c2c3[1:] // gmsm's pkcs7 EncryptCFCA drops the 04 the same way
	for _, c := range []struct {
		name string
		ct   []byte
		o    Order
	}{
		{"asn1", asn, C1C3C2}, {"c1c3c2", c1c3c2, C1C3C2}, {"c1c2c3", c1c2c3, C1C2C3}, {"cfca", cfca, C1C2C3},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := ToASN1(c.ct, c.o)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := priv.Decrypt(nil, a, sm2.ASN1DecrypterOpts)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("decrypt: %q, %v", pt, err)
			}
			if c.name == "asn1" {
				return
			}
			back, err := FromASN1(a, c.o, c.name != "cfca")
			if err != nil || !bytes.Equal(back, c.ct) {
				t.Fatalf("FromASN1: %x, %v, want %x", back, err, c.ct)
			}
			bad := bytes.Clone(c.ct)
			bad[len(bad)-1] ^= 1
			if a, err := ToASN1(bad, c.o); err == nil {
				if _, err := priv.Decrypt(nil, a, sm2.ASN1DecrypterOpts); err == nil {
					t.Fatal("a tampered ciphertext decrypted")
				}
			}
		})
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x04}, make([]byte, 200)} {
		if _, err := ToASN1(bad, C1C2C3); err == nil {
			t.Errorf("ToASN1(%x) succeeded", bad)
		}
	}
}

func FuzzToASN1(f *testing.F) {
	priv, _ := sm2.GenerateKey(rand.Reader)
	asn, _ := sm2.EncryptASN1(rand.Reader, &priv.PublicKey, []byte("0123456789abcdef"))
	f.Add(asn, false)
	raw, _ := FromASN1(asn, C1C2C3, false)
	f.Add(raw, true)
	f.Fuzz(func(t *testing.T, ct []byte, c1c2c3 bool) {
		o := C1C3C2
		if c1c2c3 {
			o = C1C2C3
		}
		a, err := ToASN1(ct, o)
		if err != nil {
			return
		}
		if !IsASN1(a) {
			t.Fatalf("ToASN1 gave a non-SM2Cipher %x", a)
		}
		if _, err := FromASN1(a, o, true); err != nil {
			t.Fatalf("FromASN1 of ToASN1's output: %v", err)
		}
	})
}
