package envelope

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	gmpkcs7 "github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/cms"
)

// memSpool is a Spool in memory, for tests.
type memSpool struct{ bytes.Buffer }

func (m *memSpool) Rewind() (io.Reader, error) { return bytes.NewReader(m.Bytes()), nil }

// sealStream writes content through a StreamSealer in pieces of n bytes.
func sealStream(t testing.TB, content []byte, rcpts []*smx509.Certificate, opts *Options, n int) []byte {
	t.Helper()
	s, err := NewStreamSealer(rcpts, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, s.Prefix()...)
	for i := 0; i < len(content); i += n {
		out = s.Seal(out, content[i:min(i+n, len(content))])
	}
	if out, err = s.Close(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// openStream opens msg through OpenStream; released is everything out received.
func openStream(msg []byte, key any, cert *smx509.Certificate) (released []byte, err error) {
	sr, err := cms.NewStreamReader(bytes.NewReader(msg), 0)
	if err != nil {
		return nil, err
	}
	_, err = OpenStream(sr, key, cert, nil, &memSpool{}, nil, func(b []byte) error {
		released = append(released, b...)
		return nil
	})
	return released, err
}

// TestStreamRoundTrip: streamed envelopes open with Open and with OpenStream, for
// every cipher and recipient kind, whatever the piece size.
func TestStreamRoundTrip(t *testing.T) {
	f := getFixture(t)
	content := testContent(100_003)
	for _, c := range []Cipher{AES128CBC, AES256CBC, AES128GCM, AES256GCM, SM4CBC, SM4GCM} {
		for _, p := range []*party{f.rsa, f.ec256, f.sm2a} {
			for _, n := range []int{1000, 4096, 65536} {
				opts := &Options{Cipher: c}
				if p == f.sm2a && c == SM4GCM {
					opts.Dialect = DialectPKCS7
				}
				msg := sealStream(t, content, certs(p), opts, n)
				if msg[1] != 0x80 {
					t.Fatal("not indefinite-length")
				}
				whole, err := Open(msg, p.opener(t), p.cert, nil)
				if err != nil || !bytes.Equal(whole, content) {
					t.Fatalf("%v %s: Open: %v", cipherNames[c], p.name, err)
				}
				got, err := openStream(msg, p.opener(t), p.cert)
				if err != nil || !bytes.Equal(got, content) {
					t.Fatalf("%v %s: OpenStream: %v", cipherNames[c], p.name, err)
				}
				// Whole-message envelopes open through the stream too.
				der, err := Envelope(content[:5000], certs(p), opts)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := openStream(der, p.opener(t), p.cert); err != nil || !bytes.Equal(got, content[:5000]) {
					t.Fatalf("%v %s: OpenStream of a DER envelope: %v", cipherNames[c], p.name, err)
				}
			}
		}
	}
}

// TestStreamTamperedGCMReleasesNothing: a GCM envelope with one bit of ciphertext or
// tag changed gives ErrDecrypt and no plaintext at all; a CBC one gives ErrDecrypt.
func TestStreamTamperedGCMReleasesNothing(t *testing.T) {
	f := getFixture(t)
	content := testContent(300_000)
	msg := sealStream(t, content, certs(f.rsa), &Options{Cipher: AES256GCM}, 65536)
	for _, at := range []int{len(msg) / 2, len(msg) - 20} {
		bad := bytes.Clone(msg)
		bad[at] ^= 1
		got, err := openStream(bad, f.rsa.opener(t), f.rsa.cert)
		if !errors.Is(err, ErrDecrypt) && !errors.Is(err, cms.ErrMalformed) {
			t.Fatalf("tampered at %d: %v", at, err)
		}
		if len(got) != 0 {
			t.Fatalf("tampered at %d: %d bytes of plaintext released", at, len(got))
		}
	}
	// The wrong recipient key: ErrDecrypt, nothing released.
	got, err := openStream(msg, f.rsa2.opener(t), f.rsa.cert)
	if !errors.Is(err, ErrDecrypt) || len(got) != 0 {
		t.Fatalf("wrong key: %v, %d bytes", err, len(got))
	}
	cbc := sealStream(t, content, certs(f.rsa), &Options{Cipher: AES256CBC}, 65536)
	bad := bytes.Clone(cbc)
	bad[len(bad)-30] ^= 1 // inside the last block: padding
	if _, err := openStream(bad, f.rsa.opener(t), f.rsa.cert); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("CBC with a bad padding: %v", err)
	}
}

// OpenSSL opens our streamed envelopes, and we open its -stream output through
// OpenStream.
func TestStreamOpenSSL(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	content := testContent(1_000_001)
	in := filepath.Join(dir, "content.bin")
	writeFile(t, in, content)
	for i, tc := range []struct {
		p    *party
		opts Options
	}{
		{f.rsa, Options{Cipher: AES256GCM}},
		{f.rsa, Options{Cipher: AES128CBC}},
		{f.ec256, Options{Cipher: AES128GCM}},
		{f.ec384, Options{Cipher: AES256CBC}},
		{f.sm2a, Options{Dialect: DialectPKCS7}},
	} {
		msg := sealStream(t, content, certs(tc.p), &tc.opts, 65536)
		path := filepath.Join(dir, "s"+string(rune('a'+i))+".ber")
		writeFile(t, path, msg)
		crt, key := tc.p.writePEM(t, dir)
		got := runOpenSSL(t, dir, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", path, "-recip", crt, "-inkey", key)
		if !bytes.Equal(got, content) {
			t.Fatalf("openssl as %s: content differs", tc.p.name)
		}
	}
	rsaCrt, _ := f.rsa.writePEM(t, dir)
	ecCrt, _ := f.ec256.writePEM(t, dir)
	for _, args := range [][]string{
		{"-aes-256-gcm", "-recip", rsaCrt, "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"},
		{"-aes128", "-recip", rsaCrt},
		{"-aes-128-gcm", "-recip", ecCrt, "-keyopt", "ecdh_kdf_md:sha256"},
	} {
		der := runOpenSSL(t, dir, nil, append([]string{"cms", "-encrypt", "-stream", "-binary", "-outform", "DER", "-in", in}, args...)...)
		p := f.rsa
		if args[2] == ecCrt {
			p = f.ec256
		}
		got, err := openStream(der, p.opener(t), p.cert)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("openssl %v: %v", args[0], err)
		}
	}
}

// FuzzOpenStream feeds OpenStream arbitrary input with real keys, seeded with
// streamed envelopes addressed to them (CBC and GCM) and whole-message ones. Nothing
// may panic, every error is a documented kind, and a GCM envelope that fails
// releases no plaintext.
func FuzzOpenStream(f *testing.F) {
	fx := getFixture(f)
	content := testContent(3000)
	for _, c := range []Cipher{AES128CBC, AES256GCM, SM4CBC} {
		for _, p := range []*party{fx.rsa, fx.ec256, fx.sm2a} {
			opts := &Options{Cipher: c}
			if p == fx.sm2a {
				opts.Dialect = DialectPKCS7
			}
			f.Add(sealStream(f, content, certs(p), opts, 1000))
		}
	}
	for _, der := range seedObjects(f) {
		f.Add(der)
	}
	openers := []*party{fx.rsa, fx.ec256, fx.sm2a}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, p := range openers {
			sr, err := cms.NewStreamReader(bytes.NewReader(in), 1<<16)
			if err != nil {
				checkOpenError(t, err)
				continue
			}
			released := 0
			res, err := OpenStream(sr, p.opener(t), p.cert, &OpenOptions{AllowLegacy: true}, &memSpool{}, nil, func(b []byte) error {
				released += len(b)
				return nil
			})
			checkOpenError(t, err)
			if err != nil && res != nil && res.Authenticated && released > 0 {
				t.Fatalf("a failed GCM envelope released %d bytes", released)
			}
		}
	})
}

// TestStreamGmsmOpensOurs: gmsm's pkcs7 opens our streamed SM2 envelopes (SM4-CBC,
// both dialects).
func TestStreamGmsmOpensOurs(t *testing.T) {
	f := getFixture(t)
	content := testContent(200_000)
	for _, opts := range []Options{{}, {Dialect: DialectPKCS7}} {
		msg := sealStream(t, content, certs(f.sm2a), &opts, 65536)
		p7, err := gmpkcs7.Parse(msg)
		if err != nil {
			t.Fatalf("gmsm Parse: %v", err)
		}
		got, err := p7.Decrypt(f.sm2a.cert, f.sm2a.key)
		if err != nil {
			t.Fatalf("gmsm Decrypt: %v", err)
		}
		if !bytes.Equal(got, content) {
			t.Fatalf("gmsm Decrypt: %d bytes, want %d", len(got), len(content))
		}
	}
}
