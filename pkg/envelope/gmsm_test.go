package envelope

import (
	"bytes"
	"testing"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/smx509"
)

// gmsm's pkcs7 (an independent implementation, used only as a cross-check) opens what
// we write, in the forms it supports: key transport with SM2 or RSA PKCS#1 v1.5, CBC
// content (it has no OAEP, no key agreement and no AuthEnvelopedData).
func TestGmsmOpensOurs(t *testing.T) {
	f := getFixture(t)
	content := testContent(1024)
	tests := []struct {
		name string
		rs   []*party
		opts Options
	}{
		{"sm2 gmt sm4cbc", []*party{f.sm2a}, Options{}},
		{"sm2 gmt by key id (cfca style)", []*party{f.sm2a}, Options{RecipientID: RecipientSubjectKeyID}},
		{"sm2 pkcs7 sm4cbc", []*party{f.sm2a}, Options{Dialect: DialectPKCS7}},
		{"sm2 gmt aes256cbc", []*party{f.sm2a, f.sm2b}, Options{Cipher: AES256CBC}},
		{"rsa v1.5 aes256cbc", []*party{f.rsa}, Options{RSA: RSAPKCS1v15, Cipher: AES256CBC}},
		{"rsa v1.5 sm4cbc", []*party{f.rsa}, Options{RSA: RSAPKCS1v15, Cipher: SM4CBC}},
		{"sm2 and rsa", []*party{f.sm2a, f.rsa}, Options{RSA: RSAPKCS1v15, Cipher: SM4CBC}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := Envelope(content, certs(tc.rs...), &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			p7, err := pkcs7.Parse(der)
			if err != nil {
				t.Fatalf("gmsm Parse: %v", err)
			}
			for _, p := range tc.rs {
				got, err := p7.Decrypt(p.cert, p.key)
				if err != nil {
					t.Fatalf("gmsm Decrypt as %s: %v", p.name, err)
				}
				if !bytes.Equal(got, content) {
					t.Fatalf("gmsm Decrypt as %s: content differs", p.name)
				}
			}
		})
	}
}

// We open what gmsm's pkcs7 writes, including its non-standard GCM inside a plain
// EnvelopedData and the bare SM4 OID.
func TestOpenGmsmMade(t *testing.T) {
	f := getFixture(t)
	content := testContent(1500)
	tests := []struct {
		name string
		mk   func([]*smx509.Certificate) ([]byte, error)
		rs   []*party
	}{
		{"EncryptSM sm4cbc", func(c []*smx509.Certificate) ([]byte, error) { return pkcs7.EncryptSM(pkcs.SM4CBC, content, c) }, []*party{f.sm2a, f.sm2b}},
		{"EnvelopeMessageCFCA sm4cbc", func(c []*smx509.Certificate) ([]byte, error) {
			return pkcs7.EnvelopeMessageCFCA(pkcs.SM4CBC, content, c)
		}, []*party{f.sm2a}},
		{"Encrypt sm4cbc sm2+rsa", func(c []*smx509.Certificate) ([]byte, error) { return pkcs7.Encrypt(pkcs.SM4CBC, content, c) }, []*party{f.sm2a, f.rsa}},
		{"Encrypt bare sm4", func(c []*smx509.Certificate) ([]byte, error) { return pkcs7.Encrypt(pkcs.SM4, content, c) }, []*party{f.sm2a}},
		{"Encrypt aes256cbc rsa", func(c []*smx509.Certificate) ([]byte, error) { return pkcs7.Encrypt(pkcs.AES256CBC, content, c) }, []*party{f.rsa}},
		{"Encrypt aes256gcm in EnvelopedData", func(c []*smx509.Certificate) ([]byte, error) {
			return pkcs7.Encrypt(pkcs.AES256GCM, content, c)
		}, []*party{f.rsa, f.sm2a}},
		{"EncryptSM sm4gcm in EnvelopedData", func(c []*smx509.Certificate) ([]byte, error) {
			return pkcs7.EncryptSM(pkcs.SM4GCM, content, c)
		}, []*party{f.sm2a}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := tc.mk(certs(tc.rs...))
			if err != nil {
				t.Fatalf("gmsm: %v", err)
			}
			for _, p := range tc.rs {
				got, err := Open(der, p.opener(t), p.cert, nil)
				if err != nil {
					t.Fatalf("Open as %s: %v", p.name, err)
				}
				if !bytes.Equal(got, content) {
					t.Fatalf("Open as %s: content differs", p.name)
				}
			}
		})
	}
}
