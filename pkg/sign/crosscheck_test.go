package sign

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	gmpkcs7 "github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm2"
	mozpkcs7 "go.mozilla.org/pkcs7"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/keystore"
)

// gmsm's pkcs7 (v0.44.1) is the independent SM2 peer. It names the SM2 signature
// algorithm only as sm2-1 (1.2.156.10197.1.301.1) and finds signers only by issuer
// and serial. The GM/T 0010 dialect writes sm2-1 by default, so gmsm reads it as it
// is; the PKCS#7 dialect needs Options.SM2SignatureOID = cms.OIDSM2Sign.

func TestGmsmReadsOurSM2(t *testing.T) {
	p := pkiFor(t, devpki.SM2)
	content := testContent(1024)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"gmt-attached", Options{}},
		{"gmt-detached", Options{Detached: true}},
		{"gmt-noattr", Options{NoSignedAttributes: true}},
		{"pkcs7-attached", Options{Dialect: DialectPKCS7}},
		{"gmt-chain", Options{Certs: IncludeChain}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.Dialect == DialectPKCS7 {
				opts.SM2SignatureOID = cms.OIDSM2Sign
			}
			der := mustSign(t, content, p, &opts)
			p7, err := gmpkcs7.Parse(der)
			if err != nil {
				t.Fatalf("gmsm Parse: %v", err)
			}
			if opts.Detached {
				p7.Content = content
			}
			if !bytes.Equal(p7.Content, content) {
				t.Fatal("gmsm sees other content")
			}
			if err := p7.Verify(); err != nil {
				t.Fatalf("gmsm Verify: %v", err)
			}
			p7.Content = append(bytes.Clone(content), 1)
			if err := p7.Verify(); err == nil {
				t.Fatal("gmsm verified other content: the cross-check is not checking")
			}
		})
	}
	// With SM2-with-SM3 (1.2.156.10197.1.501) gmsm v0.44.1 gives up; this documents
	// why the GM/T dialect writes sm2-1 (if gmsm learns it, this test says so).
	p7, err := gmpkcs7.Parse(mustSign(t, content, p, &Options{SM2SignatureOID: cms.OIDSM2WithSM3}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p7.Verify(); err == nil || !strings.Contains(err.Error(), "unsupported algorithm") {
		t.Fatalf("gmsm now reads 1.2.156.10197.1.501 (err %v): SM2SignatureOID may no longer be needed for it", err)
	}
}

func TestWeReadGmsm(t *testing.T) {
	content := testContent(1000)
	type maker func(t *testing.T, p *testPKI) ([]byte, bool)
	build := func(newSD func([]byte) (*gmpkcs7.SignedData, error), digest []int, detach, noattr bool) maker {
		return func(t *testing.T, p *testPKI) ([]byte, bool) {
			sd, err := newSD(content)
			if err != nil {
				t.Fatal(err)
			}
			if digest != nil {
				sd.SetDigestAlgorithm(digest)
			}
			if noattr {
				err = sd.SignWithoutAttr(p.leaf, p.key, gmpkcs7.SignerInfoConfig{})
			} else {
				err = sd.AddSigner(p.leaf, p.key, gmpkcs7.SignerInfoConfig{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if detach {
				sd.Detach()
			}
			der, err := sd.Finish()
			if err != nil {
				t.Fatal(err)
			}
			return der, detach
		}
	}
	sm3OID := []int(gmpkcs7.OIDDigestAlgorithmSM3)
	sha256OID := []int(gmpkcs7.OIDDigestAlgorithmSHA256)
	tests := []struct {
		name string
		alg  devpki.Algorithm
		make maker
		gmt  bool
	}{
		{"sm2 NewSMSignedData", devpki.SM2, build(gmpkcs7.NewSMSignedData, nil, false, false), true},
		{"sm2 NewSMSignedData detached", devpki.SM2, build(gmpkcs7.NewSMSignedData, nil, true, false), true},
		{"sm2 NewSMSignedData without attributes", devpki.SM2, build(gmpkcs7.NewSMSignedData, nil, false, true), true},
		{"sm2 PKCS#7 OIDs with SM3", devpki.SM2, build(gmpkcs7.NewSignedData, sm3OID, false, false), false},
		{"rsa sha256", devpki.RSA2048, build(gmpkcs7.NewSignedData, sha256OID, false, false), false},
		{"ecdsa sha256 detached", devpki.ECDSAP256, build(gmpkcs7.NewSignedData, sha256OID, true, false), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pkiFor(t, tc.alg)
			der, detached := tc.make(t, p)
			vo := &VerifyOptions{}
			if detached {
				vo.Content = content
			}
			res, err := Verify(der, vo)
			if err != nil {
				t.Fatal(err)
			}
			s := res.Signers[0]
			if !s.Signature.Valid || s.SM2WithoutZ {
				t.Fatalf("%+v", s.Signature)
			}
			if wantGMT := "1.2.156.10197.6.1.4.2.1"; (res.ContentType == wantGMT) != tc.gmt {
				t.Fatalf("content type %s", res.ContentType)
			}
			if !bytes.Equal(res.Content, content) {
				t.Fatal("content differs")
			}
		})
	}
	// gmsm's default digest is SHA-1: refused unless allowed.
	p := pkiFor(t, devpki.RSA2048)
	der, _ := build(gmpkcs7.NewSignedData, nil, false, false)(t, p)
	if res, _ := Verify(der, nil); res.Signers[0].Signature.Reason != ReasonWeakAlgorithm {
		t.Fatalf("gmsm SHA-1 default: %+v", res.Signers[0].Signature)
	}
	if res, _ := Verify(der, &VerifyOptions{AllowSHA1: true}); !res.Signers[0].Signature.Valid {
		t.Fatalf("gmsm SHA-1 with AllowSHA1: %+v", res.Signers[0].Signature)
	}
}

// go.mozilla.org/pkcs7 reads RSA and ECDSA PKCS#7 (not PSS, not SubjectKeyIdentifier).
func TestMozillaCrossCheck(t *testing.T) {
	content := testContent(1024)
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.ECDSAP384} {
		p := pkiFor(t, alg)
		for _, o := range []Options{{}, {Detached: true}, {NoSignedAttributes: true}, {Certs: IncludeChain}} {
			der := mustSign(t, content, p, &o)
			p7, err := mozpkcs7.Parse(der)
			if err != nil {
				t.Fatalf("%s %+v: mozilla Parse: %v", alg, o, err)
			}
			if o.Detached {
				p7.Content = content
			}
			if err := p7.Verify(); err != nil {
				t.Fatalf("%s %+v: mozilla Verify: %v", alg, o, err)
			}
		}
		// And the other way.
		leaf, err := x509.ParseCertificate(p.leaf.Raw)
		if err != nil {
			t.Fatal(err)
		}
		sd, err := mozpkcs7.NewSignedData(content)
		if err != nil {
			t.Fatal(err)
		}
		sd.SetDigestAlgorithm(mozpkcs7.OIDDigestAlgorithmSHA256)
		if err := sd.AddSigner(leaf, p.key, mozpkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		der, err := sd.Finish()
		if err != nil {
			t.Fatal(err)
		}
		res, err := Verify(der, nil)
		if err != nil || !res.Signers[0].Signature.Valid {
			t.Fatalf("%s: mozilla-made: %v %+v", alg, err, res.Signers[0].Signature)
		}
	}
}

func TestSM3KnownAnswer(t *testing.T) {
	// GB/T 32905-2016 Appendix A.1: SM3("abc").
	var buf [maxDigestSize]byte
	got := hex.EncodeToString(digestSM3.sum(&buf, []byte("abc")))
	if want := "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"; got != want {
		t.Fatalf("SM3(abc) = %s, want %s", got, want)
	}
	// A.2: 64 bytes "abcd" repeated.
	got = hex.EncodeToString(digestSM3.sum(&buf, bytes.Repeat([]byte("abcd"), 16)))
	if want := "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"; got != want {
		t.Fatalf("SM3(abcd*16) = %s, want %s", got, want)
	}
}

func hexInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic(s)
	}
	return n
}

// TestSM2KnownAnswer checks a published SM2 signature through the whole Verify path:
// the GM/T 0003.5-2012 Appendix A example on the recommended curve (private key
// 3945208F..., user ID 1234567812345678, message "message digest", r = F5A03B06...,
// s = B1B6AA29...; Z = B2E14C5C...), and the vector from gmsm's sm2 tests
// (sm2_dsa_test.go TestRecoverPublicKeysFromSM2Signature, key d6833540..., message
// "encryption standard encryption ", default user ID), used with attribution.
func TestSM2KnownAnswer(t *testing.T) {
	ca := pkiFor(t, devpki.SM2).ca
	vectors := []struct {
		name, d, msg, sig, z string
	}{
		{"GM/T 0003.5 A", "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8", "message digest",
			"3046022100F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3022100B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA",
			"b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"},
		{"gmsm sm2_dsa_test", "d6833540d019e0438a5dd73b414f26ab43d8064b99671206944e284dbd969093", "encryption standard encryption ",
			"3045022000cd0b56bf6be810032d28ff27d6f3468f1f1a09bcf8581f30a5de6692c85ea602210096ba29c086134af1be139dd572f2f2908f30e01fd0c28e06a687cbb0ff6e33ce", ""},
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			priv, err := sm2.NewPrivateKeyFromInt(hexInt(v.d))
			if err != nil {
				t.Fatal(err)
			}
			if v.z != "" {
				z, _ := sm2.CalculateZA(&priv.PublicKey, defaultSM2UID)
				if hex.EncodeToString(z) != v.z {
					t.Fatalf("Z = %x", z)
				}
			}
			_, leaf, err := ca.Issue(devpki.SM2, devpki.LeafOptions{CommonName: "kat", Key: priv, Usage: keystore.UsageSign, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			sig, _ := hex.DecodeString(v.sig)
			kp := &testPKI{key: priv, leaf: leaf, chain: leaf2chain(leaf)}
			// A SignedData without signed attributes signs the content itself, so the
			// published signature over the message drops straight in.
			der := mutate(t, mustSign(t, []byte(v.msg), kp, &Options{NoSignedAttributes: true}), func(sd *cms.SignedData) {
				sd.SignerInfos[0].Signature = sig
			})
			res, err := Verify(der, nil)
			if err != nil || !res.Signers[0].Signature.Valid {
				t.Fatalf("known-answer signature rejected: %v %+v", err, res.Signers[0].Signature)
			}
			sig[len(sig)-1] ^= 1
			if err := verifyPrepared(&priv.PublicKey, schemeSM2, digestSM3, 0, []byte(v.msg), nil, nil, sig, defaultSM2UID); err == nil {
				t.Fatal("altered known-answer signature accepted")
			}
		})
	}
}
