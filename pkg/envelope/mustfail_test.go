package envelope

//lint:file-ignore SA1019 these tests exercise RSA PKCS#1 v1.5 key transport, which CMS peers write and the server reads with implicit rejection.

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"testing"

	"github.com/emmansun/gmsm/sm4"

	"signsvr.dev/signsvr/pkg/cms"
)

// mutable is a parsed envelope whose fields a test changes before re-encoding it.
type mutable struct {
	ct  []int
	ed  *cms.EnvelopedData
	ad  *cms.AuthEnvelopedData
	eci *cms.EncryptedContentInfo
	ris []cms.RecipientInfo
}

func parseMutable(t *testing.T, der []byte) *mutable {
	t.Helper()
	der = bytes.Clone(der)
	ci, err := cms.ParseContentInfo(der)
	if err != nil {
		t.Fatal(err)
	}
	m := &mutable{}
	for _, v := range ci.ContentType {
		m.ct = append(m.ct, v)
	}
	if ci.ContentType.Equal(cms.OIDAuthEnvelopedData) {
		if m.ad, err = cms.ParseAuthEnvelopedData(ci.Content); err != nil {
			t.Fatal(err)
		}
		m.eci, m.ris = &m.ad.AuthEncryptedContentInfo, m.ad.RecipientInfos
	} else {
		if m.ed, err = cms.ParseEnvelopedData(ci.Content); err != nil {
			t.Fatal(err)
		}
		m.eci, m.ris = &m.ed.EncryptedContentInfo, m.ed.RecipientInfos
	}
	return m
}

func (m *mutable) encryptedKey() []byte {
	ri := m.ris[0]
	if ri.KeyTrans != nil {
		return ri.KeyTrans.EncryptedKey
	}
	return ri.KeyAgree.RecipientEncryptedKeys[0].EncryptedKey
}

func (m *mutable) setEncryptedKey(ek []byte) {
	ri := m.ris[0]
	if ri.KeyTrans != nil {
		ri.KeyTrans.EncryptedKey = ek
	} else {
		ri.KeyAgree.RecipientEncryptedKeys[0].EncryptedKey = ek
	}
}

func (m *mutable) marshal(t *testing.T) []byte {
	t.Helper()
	var out []byte
	var err error
	if m.ad != nil {
		out, err = m.ad.MarshalContentInfo()
	} else {
		out, err = m.ed.MarshalContentInfo(m.ct)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x04
	return b
}

// expectErrDecrypt opens the message make returns and requires ErrDecrypt. Unauthenticated
// CBC under a wrong key decodes to valid padding with probability about 1/256: that
// garbage (never the original content) is tolerated up to three times in a row with a
// fresh message, so the test does not flake yet still fails a broken implementation.
func expectErrDecrypt(t *testing.T, content []byte, mk func() []byte, open func([]byte) ([]byte, error)) {
	t.Helper()
	for try := 0; try < 4; try++ {
		got, err := open(mk())
		switch {
		case err == nil && bytes.Equal(got, content):
			t.Fatal("tampered message opened to the original content")
		case err == nil:
			continue // CBC garbage with valid padding; try a fresh message
		case err != ErrDecrypt:
			t.Fatalf("err = %v, want exactly ErrDecrypt", err)
		}
		return
	}
	t.Fatal("four tampered messages in a row decrypted without error")
}

func TestMustFail(t *testing.T) {
	f := getFixture(t)
	content := testContent(200)
	cases := []struct {
		name  string
		p     *party
		wrong *party // same kind, other key
		opts  Options
	}{
		{"rsa v1.5 gcm", f.rsa, f.rsa2, Options{RSA: RSAPKCS1v15}},
		{"rsa v1.5 cbc", f.rsa, f.rsa2, Options{RSA: RSAPKCS1v15, Cipher: AES256CBC}},
		{"rsa oaep gcm", f.rsa, f.rsa2, Options{}},
		{"rsa oaep cbc", f.rsa, f.rsa2, Options{Cipher: AES128CBC}},
		{"p256 gcm", f.ec256, nil, Options{}},
		{"p384 cbc", f.ec384, nil, Options{Cipher: AES256CBC}},
		{"sm2 sm4cbc", f.sm2a, f.sm2b, Options{}},
		{"sm2 sm4gcm", f.sm2a, f.sm2b, Options{Cipher: SM4GCM}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.p.opener(t)
			open := func(der []byte) ([]byte, error) { return Open(der, key, tc.p.cert, nil) }
			fresh := func() []byte {
				der, err := Envelope(content, certs(tc.p), &tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				return der
			}
			gcm := fresh()
			isGCM := parseMutable(t, gcm).ad != nil

			t.Run("flipped wrapped key", func(t *testing.T) {
				expectErrDecrypt(t, content, func() []byte {
					m := parseMutable(t, fresh())
					ek := m.encryptedKey()
					m.setEncryptedKey(flip(ek, len(ek)/2))
					return m.marshal(t)
				}, open)
			})
			t.Run("flipped ciphertext", func(t *testing.T) {
				expectErrDecrypt(t, content, func() []byte {
					m := parseMutable(t, fresh())
					c := m.eci.EncryptedContent
					i := len(c) - 1 // CBC: the last block, so the padding breaks
					if isGCM {
						i = 0
					}
					m.eci.EncryptedContent = flip(c, i)
					return m.marshal(t)
				}, open)
			})
			if isGCM {
				t.Run("flipped tag", func(t *testing.T) {
					m := parseMutable(t, fresh())
					m.ad.MAC = flip(m.ad.MAC, 3)
					if _, err := open(m.marshal(t)); err != ErrDecrypt {
						t.Fatalf("err = %v, want ErrDecrypt", err)
					}
				})
				t.Run("truncated tag", func(t *testing.T) {
					m := parseMutable(t, fresh())
					m.ad.MAC = m.ad.MAC[:12]
					if _, err := open(m.marshal(t)); err != ErrDecrypt {
						t.Fatalf("err = %v, want ErrDecrypt", err)
					}
				})
			}
			t.Run("truncated input", func(t *testing.T) {
				der := fresh()
				for n := 0; n < len(der); n += 1 + n/8 {
					_, err := open(der[:n])
					if !errors.Is(err, cms.ErrMalformed) {
						t.Fatalf("truncated to %d of %d: %v, want ErrMalformed", n, len(der), err)
					}
				}
			})
			t.Run("wrong recipient", func(t *testing.T) {
				if _, err := Open(fresh(), f.rsa2.key, f.noSKI.cert, nil); err != ErrNoRecipient {
					t.Fatalf("err = %v, want ErrNoRecipient", err)
				}
			})
			if tc.wrong != nil {
				t.Run("right certificate, wrong key", func(t *testing.T) {
					expectErrDecrypt(t, content, fresh, func(der []byte) ([]byte, error) {
						return Open(der, tc.wrong.opener(t), tc.p.cert, nil)
					})
				})
			}
		})
	}
}

// An EC recipient opened with the key of another P-256 recipient: the ECDH secret
// differs, the unwrap fails, ErrDecrypt.
func TestMustFailWrongECKey(t *testing.T) {
	f := getFixture(t)
	other := f.ecSign.opener(t)
	der, err := Envelope([]byte("ec"), certs(f.ec256), &Options{Cipher: AES128CBC})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(der, other, f.ec256.cert, nil); err != ErrDecrypt {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
	// A bad originator point is a decryption failure too, not a distinct error.
	m := parseMutable(t, der)
	pk := m.ris[0].KeyAgree.Originator.PublicKey
	pk.PublicKey = flip(pk.PublicKey, 10)
	if _, err := Open(m.marshal(t), f.ec256.opener(t), f.ec256.cert, nil); err != ErrDecrypt {
		t.Fatalf("bad originator point: err = %v, want ErrDecrypt", err)
	}
}

func TestMalformed(t *testing.T) {
	f := getFixture(t)
	inputs := map[string][]byte{
		"empty":            nil,
		"short":            {0x30, 0x81},
		"not asn1":         []byte("hello world"),
		"no content":       mustDecodeHex(t, "300b06092a864886f70d010703"),
		"content not seq":  mustDecodeHex(t, "301006092a864886f70d010703a003020100"),
		"empty recipients": mustDecodeHex(t, "3020"+"06092a864886f70d010703"+"a013"+"3011"+"020100"+"3100"+"300a06092a864886f70d010701"),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			if _, err := Open(in, f.rsa.key, f.rsa.cert, nil); !errors.Is(err, cms.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	// A SignedData is well-formed but no envelope.
	sd := mustDecodeHex(t, "300b06092a864886f70d010702")
	if _, err := Open(sd, f.rsa.key, f.rsa.cert, nil); !errors.Is(err, cms.ErrMalformed) && !errors.Is(err, cms.ErrUnsupported) {
		t.Fatalf("SignedData: %v", err)
	}
}

// spyDecrypter records the options Open passes and optionally fails like an HSM that
// does not do implicit rejection itself.
type spyDecrypter struct {
	crypto.Decrypter
	opts crypto.DecrypterOpts
	fail bool
}

func (s *spyDecrypter) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	s.opts = opts
	if s.fail {
		return nil, errors.New("hsm: CKR_ENCRYPTED_DATA_INVALID")
	}
	return s.Decrypter.Decrypt(r, msg, opts)
}

// The PKCS#1 v1.5 path gives the same error for a bad padding, for a well-padded key
// that is wrong, for a well-padded key of the wrong length, and for a decrypter that
// reports an error; and it asks the decrypter for implicit rejection.
func TestRSAPKCS1v15SameError(t *testing.T) {
	f := getFixture(t)
	pub := f.rsa.cert.PublicKey.(*rsa.PublicKey)
	content := testContent(64)
	badPadding := func() []byte {
		// A random number below the modulus, raised to e: its "padding" is garbage.
		m, _ := rand.Int(rand.Reader, pub.N)
		return new(big.Int).Exp(m, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, pub.Size()))
	}
	wellPadded := func(n int) func() []byte {
		return func() []byte {
			k := make([]byte, n)
			rand.Read(k)
			ek, err := rsa.EncryptPKCS1v15(rand.Reader, pub, k)
			if err != nil {
				t.Fatal(err)
			}
			return ek
		}
	}
	for _, c := range []Cipher{AES256GCM, AES256CBC} {
		for _, variant := range []struct {
			name string
			ek   func() []byte
			spy  *spyDecrypter
		}{
			{"bad padding", badPadding, nil},
			{"well padded wrong key", wellPadded(32), nil},
			{"well padded wrong length", wellPadded(16), nil},
			{"decrypter error", nil, &spyDecrypter{Decrypter: f.rsa.key.(crypto.Decrypter), fail: true}},
		} {
			t.Run(cipherNames[c]+"/"+variant.name, func(t *testing.T) {
				var errs []string
				expectErrDecrypt(t, content, func() []byte {
					der, err := Envelope(content, certs(f.rsa), &Options{RSA: RSAPKCS1v15, Cipher: c})
					if err != nil {
						t.Fatal(err)
					}
					if variant.ek == nil {
						return der
					}
					m := parseMutable(t, der)
					m.setEncryptedKey(variant.ek())
					return m.marshal(t)
				}, func(der []byte) ([]byte, error) {
					var key any = f.rsa.key
					if variant.spy != nil {
						key = variant.spy
					}
					pt, err := Open(der, key, f.rsa.cert, nil)
					if err != nil {
						errs = append(errs, err.Error())
					}
					return pt, err
				})
				for _, e := range errs {
					if e != ErrDecrypt.Error() {
						t.Fatalf("error text %q differs from ErrDecrypt", e)
					}
				}
			})
		}
	}
	spy := &spyDecrypter{Decrypter: f.rsa.key.(crypto.Decrypter)}
	der, _ := Envelope(content, certs(f.rsa), &Options{RSA: RSAPKCS1v15, Cipher: AES128GCM})
	if _, err := Open(der, spy, f.rsa.cert, nil); err != nil {
		t.Fatal(err)
	}
	o, ok := spy.opts.(*rsa.PKCS1v15DecryptOptions)
	if !ok || o.SessionKeyLen != 16 {
		t.Fatalf("decrypter got %#v, want *rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16}", spy.opts)
	}
}

func mustDecodeHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GB/T 32907-2016 appendix A, example 1.
func TestSM4KnownAnswer(t *testing.T) {
	key := mustDecodeHex(t, "0123456789abcdeffedcba9876543210")
	want := mustDecodeHex(t, "681edf34d206965e86b3e94f536e4246")
	alg, _ := contentAlgFor(SM4CBC)
	block, err := alg.newBlock(key)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	block.Encrypt(got, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("SM4(%x) = %x, want %x", key, got, want)
	}
	if _, err := sm4.NewCipher(key); err != nil {
		t.Fatal(err)
	}
	// The same block through our CBC path with a zero IV: first block equals ECB.
	sealed, err := alg.seal(zeroReader{}, key, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sealed.ct[:16], want) {
		t.Fatalf("SM4-CBC first block %x, want %x", sealed.ct[:16], want)
	}
	pt, ok := alg.open(key, sealed.alg.Parameters, sealed.ct, nil, nil)
	if ok != 1 || !bytes.Equal(pt, key) {
		t.Fatalf("SM4-CBC open: ok=%d pt=%x", ok, pt)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// RFC 3394 §4.1 and §4.6.
func TestAESKeyWrapVectors(t *testing.T) {
	for _, v := range []struct{ kek, key, wrapped string }{
		{"000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
		{"000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF", "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"},
		{"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F", "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
	} {
		kek, key, want := mustDecodeHex(t, v.kek), mustDecodeHex(t, v.key), mustDecodeHex(t, v.wrapped)
		got, err := aesKeyWrap(kek, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("wrap = %X, %v; want %X", got, err, want)
		}
		back, err := aesKeyUnwrap(kek, want)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("unwrap = %X, %v", back, err)
		}
		if _, err := aesKeyUnwrap(kek, flip(want, 9)); err == nil {
			t.Fatal("unwrap accepted a flipped bit")
		}
	}
	for _, n := range []int{0, 8, 16, 23} {
		if _, err := aesKeyUnwrap(make([]byte, 16), make([]byte, n)); err == nil {
			t.Fatalf("unwrap accepted %d bytes", n)
		}
	}
}

// NIST CAVS ANSI X9.63 KDF (SP 800-135), SHA-256, no shared info.
func TestX963KDFVector(t *testing.T) {
	z := mustDecodeHex(t, "96c05619d56c328ab95fe84b18264b08725b85e33fd34f08")
	want := mustDecodeHex(t, "443024c3dae66b95e6f5670601558f71")
	if got := x963KDF(crypto.SHA256, z, nil, 16); !bytes.Equal(got, want) {
		t.Fatalf("KDF = %x, want %x", got, want)
	}
}

func TestUnpadConstantTime(t *testing.T) {
	block := func(tail ...byte) []byte {
		b := make([]byte, 16)
		copy(b[16-len(tail):], tail)
		return b
	}
	tests := []struct {
		in   []byte
		n    int
		isOK int
	}{
		{block(1), 15, 1},
		{block(2, 2), 14, 1},
		{bytes.Repeat([]byte{16}, 16), 0, 1},
		{block(0), 0, 0},
		{block(17), 0, 0},
		{block(1, 2), 0, 0},
		{block(3, 2, 3), 0, 0},
		{append(bytes.Repeat([]byte{9}, 16), bytes.Repeat([]byte{16}, 16)...), 16, 1},
	}
	for i, tc := range tests {
		n, ok := unpadConstantTime(tc.in, 16)
		if ok != tc.isOK || (ok == 1 && n != tc.n) {
			t.Errorf("case %d: n=%d ok=%d, want n=%d ok=%d", i, n, ok, tc.n, tc.isOK)
		}
	}
}
