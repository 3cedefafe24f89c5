package envelope

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// OpenSSL 3.0 opens what Envelope writes.
func TestOpenSSLDecryptsOurs(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	content := testContent(777)
	tests := []struct {
		name string
		rs   []*party
		opts Options
	}{
		{"rsa oaep aes256gcm (default)", []*party{f.rsa}, Options{}},
		{"rsa oaep aes256cbc", []*party{f.rsa}, Options{Cipher: AES256CBC}},
		{"rsa v1.5 aes128cbc", []*party{f.rsa}, Options{Cipher: AES128CBC, RSA: RSAPKCS1v15}},
		{"rsa v1.5 aes128gcm", []*party{f.rsa}, Options{Cipher: AES128GCM, RSA: RSAPKCS1v15}},
		{"rsa by key id", []*party{f.rsa}, Options{Cipher: AES256CBC, RecipientID: RecipientSubjectKeyID}},
		{"rsa sm4cbc", []*party{f.rsa}, Options{Cipher: SM4CBC}},
		{"p256 aes256gcm", []*party{f.ec256}, Options{}},
		{"p256 aes128cbc", []*party{f.ec256}, Options{Cipher: AES128CBC}},
		{"p256 by key id", []*party{f.ec256}, Options{Cipher: AES256CBC, RecipientID: RecipientSubjectKeyID}},
		{"p384 aes256cbc", []*party{f.ec384}, Options{Cipher: AES256CBC}},
		{"p384 aes128gcm", []*party{f.ec384}, Options{Cipher: AES128GCM}},
		{"sm2 pkcs7 oids sm4cbc", []*party{f.sm2a}, Options{Dialect: DialectPKCS7}},
		{"several recipients gcm", []*party{f.rsa, f.ec256, f.ec384, f.rsa2}, Options{RSA: RSAPKCS1v15}},
		{"several recipients cbc", []*party{f.ec384, f.rsa, f.sm2a, f.ec256}, Options{Cipher: AES256CBC, Dialect: DialectPKCS7}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := Envelope(content, certs(tc.rs...), &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			msg := filepath.Join(dir, "msg"+string(rune('a'+i))+".der")
			writeFile(t, msg, der)
			for _, p := range tc.rs {
				crt, key := p.writePEM(t, dir)
				got := runOpenSSL(t, dir, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", msg, "-recip", crt, "-inkey", key)
				if !bytes.Equal(got, content) {
					t.Fatalf("openssl as %s: content differs (%d bytes)", p.name, len(got))
				}
			}
		})
	}
}

// Open reads what `openssl cms -encrypt` writes, DER and streamed BER.
func TestOpenOpenSSLMade(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	content := testContent(3000)
	in := filepath.Join(dir, "content.bin")
	writeFile(t, in, content)
	rsaCrt, _ := f.rsa.writePEM(t, dir)
	rsa2Crt, _ := f.rsa2.writePEM(t, dir)
	ecCrt, _ := f.ec256.writePEM(t, dir)
	ec384Crt, _ := f.ec384.writePEM(t, dir)
	oaep := []string{"-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"}
	kdf256 := []string{"-keyopt", "ecdh_kdf_md:sha256"}
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name    string
		args    []string
		openers []*party
		legacy  bool // needs AllowLegacy
	}{
		{"rsa v1.5 aes256", join([]string{"-aes256", "-recip", rsaCrt}), []*party{f.rsa}, false},
		{"rsa v1.5 aes128 stream", join([]string{"-aes128", "-stream", "-recip", rsaCrt}), []*party{f.rsa}, false},
		{"rsa oaep sha256 aes-256-gcm", join([]string{"-aes-256-gcm", "-recip", rsaCrt}, oaep), []*party{f.rsa}, false},
		{"rsa oaep sha256 aes-128-gcm stream", join([]string{"-aes-128-gcm", "-stream", "-recip", rsaCrt}, oaep), []*party{f.rsa}, false},
		{"rsa keyid", join([]string{"-aes256", "-keyid", "-recip", rsaCrt}), []*party{f.rsa}, false},
		{"rsa sm4-cbc", join([]string{"-sm4-cbc", "-recip", rsaCrt}), []*party{f.rsa}, false},
		{"p256 sha256 kdf aes256", join([]string{"-aes256", "-recip", ecCrt}, kdf256), []*party{f.ec256}, false},
		{"p256 sha256 kdf aes-128-gcm keyid", join([]string{"-aes-128-gcm", "-keyid", "-recip", ecCrt}, kdf256), []*party{f.ec256}, false},
		{"p384 sha384 kdf aes-256-gcm stream", join([]string{"-aes-256-gcm", "-stream", "-recip", ec384Crt, "-keyopt", "ecdh_kdf_md:sha384"}), []*party{f.ec384}, false},
		{"mixed recipients", join([]string{"-aes-256-gcm", "-recip", rsaCrt}, oaep, []string{"-recip", ecCrt}, kdf256, []string{"-recip", rsa2Crt, "-recip", ec384Crt, "-keyopt", "ecdh_kdf_md:sha384"}), []*party{f.rsa, f.ec256, f.rsa2, f.ec384}, false},
		// OpenSSL's defaults with SHA-1 in the KDF or OAEP open as they are; 3DES needs AllowLegacy.
		{"p256 default sha1 kdf", join([]string{"-aes256", "-recip", ecCrt}), []*party{f.ec256}, false},
		{"rsa oaep default sha1", join([]string{"-aes256", "-recip", rsaCrt, "-keyopt", "rsa_padding_mode:oaep"}), []*party{f.rsa}, false},
		{"rsa des3", join([]string{"-des3", "-recip", rsaCrt}), []*party{f.rsa}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"cms", "-encrypt", "-binary", "-outform", "DER", "-in", in}, tc.args...)
			der := runOpenSSL(t, dir, nil, args...)
			for _, p := range tc.openers {
				got, err := Open(der, p.opener(t), p.cert, nil)
				if tc.legacy {
					if !errors.Is(err, ErrLegacy) {
						t.Fatalf("Open as %s without AllowLegacy: %v, want ErrLegacy", p.name, err)
					}
					got, err = Open(der, p.opener(t), p.cert, &OpenOptions{AllowLegacy: true})
				}
				if err != nil {
					t.Fatalf("Open as %s: %v", p.name, err)
				}
				if !bytes.Equal(got, content) {
					t.Fatalf("Open as %s: content differs", p.name)
				}
			}
			if strings.Contains(tc.name, "stream") && der[1] != 0x80 {
				t.Fatalf("expected indefinite-length BER from -stream, got % x", der[:4])
			}
		})
	}
}
