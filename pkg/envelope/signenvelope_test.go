package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/emmansun/gmsm/pkcs"
	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/devpki"

	"signsvr.dev/signsvr/pkg/cms"
	"signsvr.dev/signsvr/pkg/sign"
)

func checkVerified(t *testing.T, res *sign.Result, content []byte, signer *party) {
	t.Helper()
	if !bytes.Equal(res.Content, content) {
		t.Fatalf("verified content differs (%d bytes, want %d)", len(res.Content), len(content))
	}
	if len(res.Signers) != 1 {
		t.Fatalf("%d signers, want 1", len(res.Signers))
	}
	s := res.Signers[0]
	if !s.Signature.Valid {
		t.Fatalf("signature not valid: %s %v", s.Signature.Reason, s.Signature.Err)
	}
	if s.Certificate == nil || !bytes.Equal(s.Certificate.Raw, signer.cert.Raw) {
		t.Fatal("signer certificate not the signer's")
	}
	// The trust step has not run: the message must not count as verified.
	if res.Verified() {
		t.Fatal("Result.Verified() before any trust step")
	}
}

func TestSignAndEnvelopeRoundTrip(t *testing.T) {
	f := getFixture(t)
	content := testContent(1024)
	tests := []struct {
		name   string
		signer *party
		rs     []*party
		opts   SignAndEnvelopeOptions
		wantCT []int
	}{
		{"nested rsa->rsa", f.rsaSign, []*party{f.rsa}, SignAndEnvelopeOptions{}, cms.OIDAuthEnvelopedData},
		{"nested p256->p256+rsa cbc", f.ecSign, []*party{f.ec256, f.rsa}, SignAndEnvelopeOptions{Envelope: Options{Cipher: AES128CBC}}, cms.OIDEnvelopedData},
		{"nested sm2->sm2 gmt", f.sm2Sign, []*party{f.sm2a, f.sm2b}, SignAndEnvelopeOptions{}, cms.OIDSM2EnvelopedData},
		{"nested sm2->sm2 sm4gcm", f.sm2Sign, []*party{f.sm2a}, SignAndEnvelopeOptions{Envelope: Options{Cipher: SM4GCM}}, cms.OIDAuthEnvelopedData},
		{"sae sm2->sm2 gmt", f.sm2Sign, []*party{f.sm2a, f.sm2b}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped}, cms.OIDSM2SignedAndEnvelopedData},
		{"sae sm2->sm2 pkcs7", f.sm2Sign, []*party{f.sm2a}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Envelope: Options{Dialect: DialectPKCS7}}, cms.OIDSignedAndEnvelopedData},
		{"sae sm2->sm2 by key id", f.sm2Sign, []*party{f.sm2a}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Envelope: Options{RecipientID: RecipientSubjectKeyID}}, cms.OIDSM2SignedAndEnvelopedData},
		{"sae rsa->rsa+sm2", f.rsaSign, []*party{f.rsa, f.sm2a}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Envelope: Options{RSA: RSAPKCS1v15}}, cms.OIDSignedAndEnvelopedData},
		{"sae rsa->sm2 (rsa signer keeps pkcs7)", f.rsaSign, []*party{f.sm2a}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped}, cms.OIDSignedAndEnvelopedData},
		{"sae p256 signer->rsa aes128cbc no attrs", f.ecSign, []*party{f.rsa}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Sign: sign.Options{NoSignedAttributes: true}, Envelope: Options{Cipher: AES128CBC}}, cms.OIDSignedAndEnvelopedData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := SignAndEnvelope(content, tc.signer.key, f.chain(tc.signer), certs(tc.rs...), &tc.opts)
			if err != nil {
				t.Fatalf("SignAndEnvelope: %v", err)
			}
			if d := describe(t, der); !d.contentType.Equal(tc.wantCT) {
				t.Fatalf("content type %s, want %v", d.contentType, tc.wantCT)
			}
			for _, p := range tc.rs {
				res, err := OpenAndVerify(der, p.opener(t), p.cert, nil, nil)
				if err != nil {
					t.Fatalf("OpenAndVerify as %s: %v", p.name, err)
				}
				checkVerified(t, res, content, tc.signer)
			}
			// Open refuses a SignedAndEnvelopedData (its signature would go unchecked)
			// and gives the nested SignedData as is otherwise.
			p := tc.rs[0]
			got, err := Open(der, p.opener(t), p.cert, nil)
			if tc.opts.Form == FormSignedAndEnveloped {
				if !errors.Is(err, cms.ErrUnsupported) {
					t.Fatalf("Open of a SignedAndEnvelopedData: %v, want ErrUnsupported", err)
				}
			} else if err != nil {
				t.Fatalf("Open: %v", err)
			} else if ci, err := cms.ParseContentInfo(got); err != nil || !(ci.ContentType.Equal(cms.OIDSignedData) || ci.ContentType.Equal(cms.OIDSM2SignedData)) {
				t.Fatalf("nested content is not a SignedData ContentInfo: %v", err)
			}
		})
	}
}

func TestSignAndEnvelopeErrors(t *testing.T) {
	f := getFixture(t)
	tests := []struct {
		name   string
		signer *party
		rs     []*party
		opts   SignAndEnvelopeOptions
	}{
		{"sae with gcm", f.sm2Sign, []*party{f.sm2a}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Envelope: Options{Cipher: SM4GCM}}},
		{"sae with ec recipient", f.rsaSign, []*party{f.ec256}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped}},
		{"sae gmt with rsa signer", f.rsaSign, []*party{f.sm2a}, SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Envelope: Options{Dialect: DialectGMT0010}}},
		{"unknown form", f.rsaSign, []*party{f.rsa}, SignAndEnvelopeOptions{Form: 7}},
		{"nested, no recipients", f.rsaSign, nil, SignAndEnvelopeOptions{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := SignAndEnvelope([]byte("x"), tc.signer.key, f.chain(tc.signer), certs(tc.rs...), &tc.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// A SignedAndEnvelopedData whose signature was changed still decrypts; the result
// says the signature is invalid (a verification result, not a transport error).
func TestSignedAndEnvelopedBadSignature(t *testing.T) {
	f := getFixture(t)
	content := []byte("signed and enveloped")
	der, err := SignAndEnvelope(content, f.sm2Sign.key, f.chain(f.sm2Sign), certs(f.sm2a), &SignAndEnvelopeOptions{Form: FormSignedAndEnveloped})
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cms.ParseContentInfo(bytes.Clone(der))
	if err != nil {
		t.Fatal(err)
	}
	sed, err := cms.ParseSignedAndEnvelopedData(ci.Content)
	if err != nil {
		t.Fatal(err)
	}
	si := bytes.Clone(sed.SignerInfos[0])
	si[len(si)-5] ^= 0x01 // inside the signature value, the last field
	sed.SignerInfos[0] = si
	bad, err := sed.MarshalContentInfo(ci.ContentType)
	if err != nil {
		t.Fatal(err)
	}
	res, err := OpenAndVerify(bad, f.sm2a.key, f.sm2a.cert, nil, nil)
	if err != nil {
		t.Fatalf("OpenAndVerify: %v", err)
	}
	if len(res.Signers) != 1 || res.Signers[0].Signature.Valid {
		t.Fatalf("tampered signature judged valid: %+v", res.Signers)
	}
	// Someone else's key: a decryption error, not a verification result.
	if _, err := OpenAndVerify(der, f.sm2b.key, f.sm2a.cert, nil, nil); err != ErrDecrypt {
		t.Fatalf("wrong key: %v, want ErrDecrypt", err)
	}
}

// gmsm's pkcs7 reads our SM2 SignedAndEnvelopedData and verifies it (given the
// signature OID 1.2.156.10197.1.301.1, the only one gmsm v0.44.1 reads), and we read
// and verify gmsm's.
func TestSignedAndEnvelopedWithGmsm(t *testing.T) {
	f := getFixture(t)
	content := testContent(700)
	for _, noAttrs := range []bool{false, true} {
		der, err := SignAndEnvelope(content, f.sm2Sign.key, f.chain(f.sm2Sign), certs(f.sm2a),
			&SignAndEnvelopeOptions{Form: FormSignedAndEnveloped, Sign: sign.Options{NoSignedAttributes: noAttrs, SM2SignatureOID: cms.OIDSM2Sign}})
		if err != nil {
			t.Fatal(err)
		}
		p7, err := pkcs7.Parse(der)
		if err != nil {
			t.Fatalf("gmsm Parse: %v", err)
		}
		got, err := p7.DecryptAndVerify(f.sm2a.cert, f.sm2a.key, func() error { return p7.Verify() })
		if err != nil {
			t.Fatalf("gmsm DecryptAndVerify (signed attributes: %v): %v", !noAttrs, err)
		}
		if !bytes.Equal(got, content) {
			t.Fatal("gmsm: content differs")
		}
	}

	for _, tc := range []struct {
		name   string
		sm     bool
		signer *party
		rcpt   *party
		cipher pkcs.Cipher
	}{
		{"gmsm sm2 gmt", true, f.sm2Sign, f.sm2a, pkcs.SM4CBC},
		{"gmsm rsa pkcs7", false, f.rsaSign, f.rsa, pkcs.AES256CBC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newSAED := pkcs7.NewSignedAndEnvelopedData
			if tc.sm {
				newSAED = pkcs7.NewSMSignedAndEnvelopedData
			}
			saed, err := newSAED(content, tc.cipher)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.sm {
				saed.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
			}
			if err := saed.AddSigner(tc.signer.cert, tc.signer.key); err != nil {
				t.Fatal(err)
			}
			if err := saed.AddRecipient(tc.rcpt.cert); err != nil {
				t.Fatal(err)
			}
			der, err := saed.Finish()
			if err != nil {
				t.Fatal(err)
			}
			res, err := OpenAndVerify(der, tc.rcpt.opener(t), tc.rcpt.cert, nil, nil)
			if err != nil {
				t.Fatalf("OpenAndVerify: %v", err)
			}
			checkVerified(t, res, content, tc.signer)
		})
	}
}

// Nested CMS interoperates with OpenSSL both ways: `openssl cms -decrypt | openssl cms
// -verify` opens ours, and we open `openssl cms -sign | openssl cms -encrypt`.
func TestSignAndEnvelopeWithOpenSSL(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	content := testContent(2000)
	in := filepath.Join(dir, "content.bin")
	writeFile(t, in, content)
	for _, tc := range []struct {
		name   string
		signer *party
		rcpt   *party
		opts   SignAndEnvelopeOptions
	}{
		{"rsa->rsa gcm", f.rsaSign, f.rsa, SignAndEnvelopeOptions{}},
		{"rsa pss->p256 cbc", f.rsaSign, f.ec256, SignAndEnvelopeOptions{Sign: sign.Options{PSS: true}, Envelope: Options{Cipher: AES256CBC}}},
		{"p256->rsa v1.5 by key id", f.ecSign, f.rsa, SignAndEnvelopeOptions{Sign: sign.Options{SignerID: sign.SubjectKeyID}, Envelope: Options{RSA: RSAPKCS1v15, RecipientID: RecipientSubjectKeyID}}},
	} {
		t.Run("ours to openssl/"+tc.name, func(t *testing.T) {
			der, err := SignAndEnvelope(content, tc.signer.key, f.chain(tc.signer), certs(tc.rcpt), &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			msg := filepath.Join(dir, sanitize(tc.name)+".der")
			writeFile(t, msg, der)
			crt, key := tc.rcpt.writePEM(t, dir)
			caFile := filepath.Join(dir, sanitize(tc.name)+"-ca.pem")
			writeFile(t, caFile, pemCerts(f.chain(tc.signer)[1:]))
			signed := runOpenSSL(t, dir, nil, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", msg, "-recip", crt, "-inkey", key)
			got := runOpenSSL(t, dir, signed, "cms", "-verify", "-binary", "-inform", "DER", "-CAfile", caFile, "-purpose", "any")
			if !bytes.Equal(got, content) {
				t.Fatal("openssl decrypt|verify: content differs")
			}
		})
	}
	for _, tc := range []struct {
		name         string
		signer, rcpt *party
		signArgs     []string
		encArgs      []string
	}{
		{"rsa->rsa", f.rsaSign, f.rsa, nil, []string{"-aes-256-gcm"}},
		{"p256->p256 stream", f.ecSign, f.ec256, []string{"-stream"}, []string{"-aes256", "-stream"}},
		{"rsa pss keyid->p256", f.rsaSign, f.ec256, []string{"-keyid", "-keyopt", "rsa_padding_mode:pss"}, []string{"-aes-128-gcm"}},
	} {
		t.Run("openssl to ours/"+tc.name, func(t *testing.T) {
			sc, sk := tc.signer.writePEM(t, dir)
			rc, _ := tc.rcpt.writePEM(t, dir)
			signArgs := append([]string{"cms", "-sign", "-binary", "-outform", "DER", "-in", in, "-md", "sha256", "-nodetach", "-signer", sc, "-inkey", sk}, tc.signArgs...)
			signed := runOpenSSL(t, dir, nil, signArgs...)
			encArgs := append([]string{"cms", "-encrypt", "-binary", "-outform", "DER"}, tc.encArgs...)
			encArgs = append(encArgs, "-recip", rc)
			if tc.rcpt.alg != "rsa-2048" {
				encArgs = append(encArgs, "-keyopt", "ecdh_kdf_md:sha256")
			}
			der := runOpenSSL(t, dir, signed, encArgs...)
			res, err := OpenAndVerify(der, tc.rcpt.opener(t), tc.rcpt.cert, nil, nil)
			if err != nil {
				t.Fatalf("OpenAndVerify: %v", err)
			}
			checkVerified(t, res, content, tc.signer)
		})
	}
}

func pemCerts(cs []*smx509.Certificate) []byte { return devpki.CertsPEM(cs...) }

// RFC 5652 nesting (eContentType id-signedData, the content being the SignedData
// itself without a ContentInfo) opens and verifies too.
func TestOpenAndVerifyRFC5652Nesting(t *testing.T) {
	f := getFixture(t)
	content := []byte("rfc 5652 nesting")
	sd, err := sign.Sign(content, f.ecSign.key, f.chain(f.ecSign), nil)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cms.ParseContentInfo(sd)
	if err != nil {
		t.Fatal(err)
	}
	alg, _ := contentAlgFor(AES256GCM)
	cek := make([]byte, alg.keyLen)
	rand.Read(cek)
	s, err := alg.seal(rand.Reader, cek, ci.Content, nil)
	if err != nil {
		t.Fatal(err)
	}
	kalg, ek, err := keyTransport(rand.Reader, f.rsa.cert, kindRSA, cek, RSAOAEP)
	if err != nil {
		t.Fatal(err)
	}
	ad := &cms.AuthEnvelopedData{
		RecipientInfos: []cms.RecipientInfo{{KeyTrans: &cms.KeyTransRecipientInfo{
			RID:                    cms.RecipientIdentifier{IssuerAndSerial: &cms.IssuerAndSerial{Issuer: f.rsa.cert.RawIssuer, Serial: f.rsa.cert.SerialNumber}},
			KeyEncryptionAlgorithm: kalg, EncryptedKey: ek,
		}}},
		AuthEncryptedContentInfo: cms.EncryptedContentInfo{ContentType: cms.OIDSignedData, ContentEncryptionAlgorithm: s.alg, EncryptedContent: s.ct},
		MAC:                      s.tag,
	}
	der, err := ad.MarshalContentInfo()
	if err != nil {
		t.Fatal(err)
	}
	res, err := OpenAndVerify(der, f.rsa.key, f.rsa.cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkVerified(t, res, content, f.ecSign)
}

// TestOpenAndVerifyFailsAsOneAfterDecryption: once the recipient's key has opened the
// envelope, whatever is wrong with the decrypted SignedData — something it does not
// support, a structure that does not parse — is exactly ErrDecrypt: with CBC a
// tampered ciphertext can make any of them, so telling them apart would be an oracle.
func TestOpenAndVerifyFailsAsOneAfterDecryption(t *testing.T) {
	f := getFixture(t)
	// The content is itself DER (an OCTET STRING "abc"), so the eContent can be
	// relabelled a SEQUENCE: PKCS#7's ANY content, which verification does not support.
	sd, err := sign.Sign([]byte{0x04, 0x03, 'a', 'b', 'c'}, f.ecSign.key, f.chain(f.ecSign), nil)
	if err != nil {
		t.Fatal(err)
	}
	octets := []byte{0xa0, 0x07, 0x04, 0x05, 0x04, 0x03, 'a', 'b', 'c'}
	any := []byte{0xa0, 0x07, 0x30, 0x05, 0x04, 0x03, 'a', 'b', 'c'}
	unsupported := bytes.Replace(sd, octets, any, 1)
	if bytes.Equal(unsupported, sd) {
		t.Fatal("no eContent to relabel")
	}
	if _, err := sign.Verify(unsupported, nil); !errors.Is(err, cms.ErrUnsupported) {
		t.Fatalf("the relabelled SignedData alone: %v, want cms.ErrUnsupported", err)
	}
	truncated := sd[:len(sd)/2]
	for _, tc := range []struct {
		name  string
		inner []byte
	}{{"unsupported content", unsupported}, {"truncated", truncated}} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := Envelope(tc.inner, []*smx509.Certificate{f.rsa.cert}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := OpenAndVerify(der, f.rsa.key, f.rsa.cert, nil, nil); err != ErrDecrypt {
				t.Fatalf("OpenAndVerify: %v, want exactly ErrDecrypt", err)
			}
		})
	}
}
