package sign

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/emmansun/gmsm/pkcs8"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The files in testdata/gmssl were written by GmSSL 3.x itself (its cmssign
// command; scripts/gmssl-fixtures.sh says how, gmssl-version.txt with which build).
const gmsslDir = "testdata/gmssl"

// gmsslFixture is the GmSSL-made SignedData and what it was made with.
type gmsslFixture struct {
	cms     []byte // the DER ContentInfo cmssign wrote
	content []byte
	signer  *smx509.Certificate
	ca      *smx509.Certificate
	key     *sm2.PrivateKey
}

// gmsslObjects are the SignedData files and their contents: a short content, and
// one of 1000 bytes whose EncapsulatedContentInfo has long-form lengths.
var gmsslObjects = []struct{ signed, content string }{
	{"signed.pem", "content.txt"},
	{"signed-long.pem", "content-long.txt"},
}

func loadGmSSLFixture(t testing.TB, signed, content string) *gmsslFixture {
	t.Helper()
	pemDER := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(gmsslDir, name))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s: no PEM block", name)
		}
		return block.Bytes
	}
	f := &gmsslFixture{cms: pemDER(signed), content: readFile(t, filepath.Join(gmsslDir, content))}
	var err error
	if f.signer, err = smx509.ParseCertificate(pemDER("signer.pem")); err != nil {
		t.Fatal(err)
	}
	if f.ca, err = smx509.ParseCertificate(pemDER("ca.pem")); err != nil {
		t.Fatal(err)
	}
	if f.key, err = pkcs8.ParsePKCS8PrivateKeySM2(pemDER("signer.key.pem"), []byte("P@ssw0rd")); err != nil {
		t.Fatalf("the GmSSL signer key: %v", err)
	}
	return f
}

var (
	oidGMTData       = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 1}
	oidGMTSignedData = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 2}
	oidGmSSLSM3      = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401}
	oidGmSSLSM2Sign  = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}
)

// gmsslSign is GmSSL 3.x's cms_sign (src/cms.c) written out with gmsm primitives, for
// one signer and content type data, step for step:
//
//   - cms_signed_data_sign_to_der builds content_header: the ContentInfo header of
//     the content (SEQUENCE header, OID data 1.2.156.10197.6.1.4.2.1, [0] header)
//     followed by the OCTET STRING header of the data, and starts SM3 over
//     content_header, then data;
//   - cms_signer_info_sign_to_der adds the authenticated attributes (none: length 0)
//     to that SM3 and signs the digest with sm2_sign_fixlen: plain SM2 over the digest
//     (no Z value), retried until the DER signature is 71 bytes long
//     (SM2_signature_typical_size);
//   - the SignerInfo is version 1, issuerAndSerialNumber of the certificate, digest
//     algorithm sm3 and signature algorithm sm2sign-with-sm3 without parameters, no
//     attributes;
//   - the SignedData is version 1, digestAlgorithms {sm3}, the encapsulated content,
//     [0] the signer's certificates as given, no CRLs, and the SignerInfo, inside a
//     ContentInfo of type signedData 1.2.156.10197.6.1.4.2.2.
//
// It returns the ContentInfo and content_header.
func gmsslSign(t testing.TB, key *sm2.PrivateKey, cert *smx509.Certificate, data []byte) (ci, contentHeader []byte) {
	t.Helper()
	// content_header: what precedes data in the DER EncapsulatedContentInfo.
	octetHeader := derHeader(cbasn1.OCTET_STRING, len(data))
	oid := derOID(oidGMTData)
	explicitHeader := derHeader(cbasn1.Tag(0).ContextSpecific().Constructed(), len(octetHeader)+len(data))
	seqHeader := derHeader(cbasn1.SEQUENCE, len(oid)+len(explicitHeader)+len(octetHeader)+len(data))
	contentHeader = bytes.Join([][]byte{seqHeader, oid, explicitHeader, octetHeader}, nil)

	h := sm3.New()
	h.Write(contentHeader)
	h.Write(data)
	h.Write(nil) // authed_attrs, authed_attrs_len = 0
	dgst := h.Sum(nil)
	var sig []byte
	for tries := 0; ; tries++ {
		if tries == 200 {
			t.Fatal("sm2_sign_fixlen: no 71-byte signature in 200 tries")
		}
		s, err := key.Sign(rand.Reader, dgst, nil) // nil options: the digest as is, no Z
		if err != nil {
			t.Fatal(err)
		}
		if len(s) == 71 {
			sig = s
			break
		}
	}

	var tbsCert struct {
		Raw     asn1.RawContent
		Version asn1.RawValue `asn1:"optional,explicit,tag:0"`
		Serial  asn1.RawValue
	}
	if _, err := asn1.Unmarshal(cert.RawTBSCertificate, &tbsCert); err != nil {
		t.Fatal(err)
	}
	algID := func(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) })
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidGMTSignedData)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { algID(b, oidGmSSLSM3) })
				b.AddBytes(contentHeader)
				b.AddBytes(data)
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddBytes(cert.Raw)
				})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(1)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(cert.RawIssuer)
							b.AddBytes(tbsCert.Serial.FullBytes)
						})
						algID(b, oidGmSSLSM3)
						algID(b, oidGmSSLSM2Sign)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	ci, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return ci, contentHeader
}

func derHeader(tag cbasn1.Tag, n int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, n)) })
	out := b.BytesOrPanic()
	return out[:len(out)-n]
}

func derOID(oid asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return b
}

// TestGmSSLFixture: the SignedData GmSSL's cmssign wrote is refused by default (its
// SM2 signature has no Z value), verifies with AllowSM2WithoutZ, flagged, and every
// tampered copy fails with signature-invalid.
func TestGmSSLFixture(t *testing.T) {
	for _, o := range gmsslObjects {
		t.Run(o.signed, func(t *testing.T) { testGmSSLFixture(t, loadGmSSLFixture(t, o.signed, o.content)) })
	}
}

func testGmSSLFixture(t *testing.T, f *gmsslFixture) {
	res, err := Verify(f.cms, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Signers[0]; s.Signature.Valid || s.Signature.Reason != ReasonSignatureInvalid || s.SM2WithoutZ {
		t.Fatalf("default options: %+v", s)
	}
	res, err = Verify(f.cms, &VerifyOptions{AllowSM2WithoutZ: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Signers[0]; !s.Signature.Valid || !s.SM2WithoutZ || !s.Certificate.Equal(f.signer) {
		t.Fatalf("AllowSM2WithoutZ: %+v", s)
	}
	if !bytes.Equal(res.Content, f.content) || res.ContentType != oidGMTData.String() {
		t.Errorf("content %q type %s", res.Content, res.ContentType)
	}
	for _, tc := range []struct {
		name string
		at   []byte // a byte string inside the message to alter
	}{
		{"content", f.content},
		{"signature", f.cms[len(f.cms)-8:]},
	} {
		t.Run("tampered-"+tc.name, func(t *testing.T) {
			i := bytes.Index(f.cms, tc.at)
			bad := bytes.Clone(f.cms)
			bad[i+len(tc.at)/2] ^= 0x01
			res, err := Verify(bad, &VerifyOptions{AllowSM2WithoutZ: true})
			if err != nil {
				t.Fatal(err)
			}
			if s := res.Signers[0]; s.Signature.Valid || s.Signature.Reason != ReasonSignatureInvalid || s.SM2WithoutZ {
				t.Fatalf("%+v", s)
			}
		})
	}
}

// TestGmSSLAlgorithm: gmsslSign, GmSSL's algorithm written out here, produces the
// same bytes as GmSSL's cmssign with the same key, certificate and content, apart
// from the (randomized) signature value; what it signs is exactly the DER
// EncapsulatedContentInfo; and its output verifies as GmSSL's does, also for content
// longer than a short-form length and for empty content.
func TestGmSSLAlgorithm(t *testing.T) {
	var f *gmsslFixture
	for _, o := range gmsslObjects {
		f = loadGmSSLFixture(t, o.signed, o.content)
		ours, header := gmsslSign(t, f.key, f.signer, f.content)
		if len(ours) != len(f.cms) || !bytes.Equal(ours[:len(ours)-71], f.cms[:len(f.cms)-71]) {
			t.Fatalf("%s: gmsslSign differs from GmSSL's cmssign before the signature value:\nours   %x\ngmssl  %x", o.signed, ours, f.cms)
		}
		sd := parseSignedDataForTest(t, f.cms)
		if !bytes.Equal(sd, append(bytes.Clone(header), f.content...)) {
			t.Fatalf("%s: content_header||data is not the DER EncapsulatedContentInfo:\n%x\n%x", o.signed, header, sd)
		}
	}
	for _, n := range []int{0, 1, 200, 70000} {
		data := testContent(n)
		der, _ := gmsslSign(t, f.key, f.signer, data)
		res, err := Verify(der, &VerifyOptions{AllowSM2WithoutZ: true})
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if s := res.Signers[0]; !s.Signature.Valid || !s.SM2WithoutZ || !bytes.Equal(res.Content, data) {
			t.Fatalf("%d bytes: %+v", n, s)
		}
		if res, _ := Verify(der, nil); res.Signers[0].Signature.Valid {
			t.Fatalf("%d bytes: accepted without AllowSM2WithoutZ", n)
		}
	}
}

// parseSignedDataForTest returns the raw EncapsulatedContentInfo of a ContentInfo
// holding SignedData.
func parseSignedDataForTest(t testing.TB, ci []byte) []byte {
	t.Helper()
	s := cryptobyte.String(ci)
	var ciSeq, content, sdSeq, eci cryptobyte.String
	if !s.ReadASN1(&ciSeq, cbasn1.SEQUENCE) || !ciSeq.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!ciSeq.ReadASN1(&content, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		!content.ReadASN1(&sdSeq, cbasn1.SEQUENCE) || !sdSeq.SkipASN1(cbasn1.INTEGER) || !sdSeq.SkipASN1(cbasn1.SET) ||
		!sdSeq.ReadASN1Element(&eci, cbasn1.SEQUENCE) {
		t.Fatal("not a SignedData")
	}
	return eci
}
