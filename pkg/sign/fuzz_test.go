package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	gmpkcs7 "github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

// The OpenSSL-made seeds of pkg/cms (testdata/signed, see make.sh there) verify here
// without running openssl: a golden check of the whole path.
const cmsSeeds = "../cms/testdata/signed"

func cmsSeedCert(t testing.TB) *smx509.Certificate {
	t.Helper()
	certs, err := devpki.ReadCertsPEM(filepath.Join(cmsSeeds, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func TestOpenSSLGoldenSeeds(t *testing.T) {
	cert := cmsSeedCert(t)
	content := readFile(t, filepath.Join(cmsSeeds, "content.txt"))
	for _, name := range []string{"ecdsa-attached.der", "ecdsa-detached-keyid.der", "ecdsa-noattr.der", "ecdsa-stream.ber", "ecdsa-indef-nocerts.ber"} {
		t.Run(name, func(t *testing.T) {
			der := readFile(t, filepath.Join(cmsSeeds, name))
			sd, err := cms.ParseSignedDataContentInfo(der)
			if err != nil {
				t.Fatal(err)
			}
			vo := &VerifyOptions{Certs: []*smx509.Certificate{cert}}
			if sd.EContent == nil {
				vo.Content = content
			}
			res, err := Verify(der, vo)
			if err != nil {
				t.Fatal(err)
			}
			if s := res.Signers[0]; !s.Signature.Valid || !bytes.Equal(s.Certificate.Raw, cert.Raw) {
				t.Fatalf("%+v", s.Signature)
			}
			if !bytes.Equal(res.Content, content) {
				t.Fatal("content differs")
			}
		})
	}
}

// fuzzKeys makes EC and SM2 keys with self-signed certificates quickly (no RSA key
// generation in every fuzz worker).
func fuzzKeys(f *testing.F) []*testPKI {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	smKey, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	var out []*testPKI
	for i, key := range []crypto.Signer{ecKey, smKey} {
		tmpl := &smx509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "fuzz"},
			NotBefore: testNow, NotAfter: testNow.AddDate(1, 0, 0), SubjectKeyId: []byte{byte(i), 1, 2, 3}}
		der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			f.Fatal(err)
		}
		c, err := smx509.ParseCertificate(der)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, &testPKI{key: key, leaf: c, chain: []*smx509.Certificate{c}})
	}
	return out
}

func FuzzVerify(f *testing.F) {
	keys := fuzzKeys(f)
	content := []byte("fuzz content")
	for _, p := range keys {
		for _, o := range []Options{{}, {Detached: true}, {NoSignedAttributes: true}, {SignerID: SubjectKeyID}, {Certs: IncludeNone}} {
			der, err := Sign(content, p.key, p.chain, &o)
			if err != nil {
				f.Fatal(err)
			}
			c := []byte(nil)
			if o.Detached {
				c = content
			}
			f.Add(der, c)
		}
	}
	// gmsm-made SM2 (sm2-1 OID, NULL parameters).
	if sd, err := gmpkcs7.NewSMSignedData(content); err == nil {
		if sd.AddSigner(keys[1].leaf, keys[1].key, gmpkcs7.SignerInfoConfig{}) == nil {
			if der, err := sd.Finish(); err == nil {
				f.Add(der, []byte(nil))
			}
		}
	}
	// OpenSSL-made seeds from pkg/cms.
	seedContent, _ := os.ReadFile(filepath.Join(cmsSeeds, "content.txt"))
	for _, n := range []string{"ecdsa-attached.der", "ecdsa-detached-keyid.der", "ecdsa-stream.ber", "ecdsa-noattr.der"} {
		if der, err := os.ReadFile(filepath.Join(cmsSeeds, n)); err == nil {
			f.Add(der, seedContent)
		}
	}
	// GmSSL-made SM2 (no signed attributes, no Z value).
	for _, o := range gmsslObjects {
		if b, err := os.ReadFile(filepath.Join(gmsslDir, o.signed)); err == nil {
			if block, _ := pem.Decode(b); block != nil {
				f.Add(block.Bytes, []byte(nil))
			}
		}
	}
	certs := []*smx509.Certificate{keys[0].leaf, keys[1].leaf, cmsSeedCert(f)}
	f.Fuzz(func(t *testing.T, der, content []byte) {
		for _, vo := range []*VerifyOptions{
			{Certs: certs, Content: content, AllowSM2WithoutZ: true, AllowSHA1: true},
			nil,
		} {
			res, err := Verify(der, vo)
			if err != nil {
				if !errors.Is(err, cms.ErrMalformed) && !errors.Is(err, cms.ErrUnsupported) &&
					!errors.Is(err, ErrNoContent) && !errors.Is(err, ErrContentConflict) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				continue
			}
			for _, s := range res.Signers {
				if s.Signature.Valid == (s.Signature.Reason != "") {
					t.Fatalf("verdict inconsistent: %+v", s.Signature)
				}
				if s.Verified() {
					t.Fatal("Verify filled the certificate verdict")
				}
			}
		}
	})
}
