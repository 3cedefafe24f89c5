package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"testing"

	"signsvr.dev/signsvr/pkg/cms"
)

var cipherNames = map[Cipher]string{
	CipherDefault: "default", AES128CBC: "aes128cbc", AES256CBC: "aes256cbc", AES128GCM: "aes128gcm",
	AES256GCM: "aes256gcm", SM4CBC: "sm4cbc", SM4GCM: "sm4gcm",
}

func testContent(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// describe parses an envelope enough to check what was written.
type described struct {
	contentType  asn1.ObjectIdentifier
	eContentType asn1.ObjectIdentifier
	alg          asn1.ObjectIdentifier
	version      int
	ris          []cms.RecipientInfo
}

func describe(t *testing.T, der []byte) described {
	t.Helper()
	ci, err := cms.ParseContentInfo(der)
	if err != nil {
		t.Fatalf("ParseContentInfo: %v", err)
	}
	d := described{contentType: ci.ContentType}
	switch {
	case cms.ContentTypeIsEnveloped(ci.ContentType):
		ed, err := cms.ParseEnvelopedData(ci.Content)
		if err != nil {
			t.Fatalf("ParseEnvelopedData: %v", err)
		}
		d.eContentType, d.alg, d.version, d.ris = ed.EncryptedContentInfo.ContentType, ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm, ed.Version, ed.RecipientInfos
	case ci.ContentType.Equal(cms.OIDAuthEnvelopedData):
		ad, err := cms.ParseAuthEnvelopedData(ci.Content)
		if err != nil {
			t.Fatalf("ParseAuthEnvelopedData: %v", err)
		}
		d.eContentType, d.alg, d.version, d.ris = ad.AuthEncryptedContentInfo.ContentType, ad.AuthEncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm, ad.Version, ad.RecipientInfos
	case cms.ContentTypeIsSignedAndEnveloped(ci.ContentType):
		sed, err := cms.ParseSignedAndEnvelopedData(ci.Content)
		if err != nil {
			t.Fatalf("ParseSignedAndEnvelopedData: %v", err)
		}
		d.eContentType, d.alg, d.version, d.ris = sed.EncryptedContentInfo.ContentType, sed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm, sed.Version, sed.RecipientInfos
	default:
		t.Fatalf("unexpected content type %s", ci.ContentType)
	}
	return d
}

func TestRoundTrip(t *testing.T) {
	f := getFixture(t)
	sets := []struct {
		name string
		rs   []*party
	}{
		{"rsa", []*party{f.rsa}},
		{"p256", []*party{f.ec256}},
		{"p384", []*party{f.ec384}},
		{"sm2", []*party{f.sm2a}},
		{"sm2x2", []*party{f.sm2a, f.sm2b}},
		{"mixed", []*party{f.rsa, f.ec256, f.sm2a, f.ec384, f.rsa2}},
	}
	ciphers := []Cipher{CipherDefault, AES128CBC, AES256CBC, AES128GCM, AES256GCM, SM4CBC, SM4GCM}
	content := testContent(1000)
	for _, set := range sets {
		hasRSA, allSM2 := false, true
		for _, p := range set.rs {
			hasRSA = hasRSA || p.alg == "rsa-2048"
			allSM2 = allSM2 && p.alg == "sm2"
		}
		schemes := []RSAScheme{RSAOAEP}
		if hasRSA {
			schemes = append(schemes, RSAPKCS1v15)
		}
		for _, c := range ciphers {
			for _, scheme := range schemes {
				for _, ridType := range []RecipientIDType{RecipientIssuerAndSerial, RecipientSubjectKeyID} {
					name := fmt.Sprintf("%s/%s/rsa%d/rid%d", set.name, cipherNames[c], scheme, ridType)
					t.Run(name, func(t *testing.T) {
						opts := &Options{Cipher: c, RSA: scheme, RecipientID: ridType}
						der, err := Envelope(content, certs(set.rs...), opts)
						if err != nil {
							t.Fatalf("Envelope: %v", err)
						}
						d := describe(t, der)
						checkShape(t, d, c, allSM2, ridType, scheme)
						for _, p := range set.rs {
							got, err := Open(der, p.opener(t), p.cert, nil)
							if err != nil {
								t.Fatalf("Open as %s: %v", p.name, err)
							}
							if !bytes.Equal(got, content) {
								t.Fatalf("Open as %s: content differs", p.name)
							}
						}
						// Someone not addressed finds no recipient.
						if _, err := Open(der, f.rsaSign.key, f.rsaSign.cert, nil); !errors.Is(err, ErrNoRecipient) {
							t.Fatalf("Open by a stranger: %v, want ErrNoRecipient", err)
						}
					})
				}
			}
		}
	}
}

// checkShape checks content type, cipher OID, versions and recipient naming.
func checkShape(t *testing.T, d described, c Cipher, allSM2 bool, ridType RecipientIDType, scheme RSAScheme) {
	t.Helper()
	eff := c
	if c == CipherDefault {
		eff = AES256GCM
		if allSM2 {
			eff = SM4CBC
		}
	}
	alg, _ := contentAlgFor(eff)
	if !d.alg.Equal(alg.oid) {
		t.Errorf("content algorithm %s, want %s", d.alg, alg.oid)
	}
	gmt := allSM2 && !alg.gcm
	switch {
	case alg.gcm:
		if !d.contentType.Equal(cms.OIDAuthEnvelopedData) || d.version != 0 {
			t.Errorf("GCM: content type %s version %d, want AuthEnvelopedData v0", d.contentType, d.version)
		}
	case gmt:
		if !d.contentType.Equal(cms.OIDSM2EnvelopedData) || !d.eContentType.Equal(cms.OIDSM2Data) || d.version != 1 {
			t.Errorf("GM/T: content type %s / %s version %d", d.contentType, d.eContentType, d.version)
		}
	default:
		if !d.contentType.Equal(cms.OIDEnvelopedData) || !d.eContentType.Equal(cms.OIDData) {
			t.Errorf("content type %s / %s", d.contentType, d.eContentType)
		}
		wantV := 0
		for _, ri := range d.ris {
			if ri.KeyAgree != nil || ri.KeyTrans.Version != 0 {
				wantV = 2
			}
		}
		if d.version != wantV {
			t.Errorf("EnvelopedData version %d, want %d", d.version, wantV)
		}
	}
	for _, ri := range d.ris {
		var rid cms.RecipientIdentifier
		switch {
		case ri.KeyTrans != nil:
			rid = ri.KeyTrans.RID
			a := ri.KeyTrans.KeyEncryptionAlgorithm
			switch {
			case a.Algorithm.Equal(cms.OIDRSAESOAEP):
				if scheme != RSAOAEP {
					t.Errorf("OAEP written for scheme %d", scheme)
				}
			case a.Algorithm.Equal(cms.OIDRSAEncryption):
				if scheme != RSAPKCS1v15 || !a.HasNullOrNoParameters() {
					t.Errorf("rsaEncryption written for scheme %d", scheme)
				}
			case a.Algorithm.Equal(cms.OIDSM2Encrypt):
				if !bytes.Equal(a.Parameters, cms.NullParameters) {
					t.Errorf("SM2 key transport without NULL parameters")
				}
			default:
				t.Errorf("key transport %s", a.Algorithm)
			}
			wantV := 0
			if ridType == RecipientSubjectKeyID {
				wantV = 2
			} else if gmt {
				wantV = 1
			}
			if ri.KeyTrans.Version != wantV {
				t.Errorf("KTRI version %d, want %d", ri.KeyTrans.Version, wantV)
			}
		case ri.KeyAgree != nil:
			rid = ri.KeyAgree.RecipientEncryptedKeys[0].RID
			if ri.KeyAgree.Version != 3 || ri.KeyAgree.Originator.PublicKey == nil {
				t.Errorf("KARI version %d / originator %+v", ri.KeyAgree.Version, ri.KeyAgree.Originator)
			}
		}
		if (ridType == RecipientSubjectKeyID) != (rid.SubjectKeyID != nil) {
			t.Errorf("recipient named by %+v, want type %d", rid, ridType)
		}
	}
}

func TestEnvelopeOptionErrors(t *testing.T) {
	f := getFixture(t)
	tests := []struct {
		name string
		rs   []*party
		opts *Options
		want string
	}{
		{"no recipients", nil, nil, "no recipients"},
		{"gmt with rsa", []*party{f.sm2a, f.rsa}, &Options{Dialect: DialectGMT0010}, "every recipient to be SM2"},
		{"gmt with gcm", []*party{f.sm2a}, &Options{Dialect: DialectGMT0010, Cipher: SM4GCM}, "no authenticated envelope"},
		{"ski missing", []*party{f.noSKI}, &Options{RecipientID: RecipientSubjectKeyID}, "no SubjectKeyIdentifier"},
		{"signing certificate", []*party{f.sm2Sign}, nil, "lacks the keyEncipherment"},
		{"ec signing certificate", []*party{f.ecSign}, nil, "lacks the keyAgreement"},
		{"unknown cipher", []*party{f.rsa}, &Options{Cipher: 99}, "unknown cipher"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Envelope([]byte("x"), certs(tc.rs...), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	// IgnoreKeyUsage lets a signing certificate through.
	if _, err := Envelope([]byte("x"), certs(f.sm2Sign), &Options{IgnoreKeyUsage: true}); err != nil {
		t.Fatalf("IgnoreKeyUsage: %v", err)
	}
}

func TestDialects(t *testing.T) {
	f := getFixture(t)
	content := []byte("dialects")
	tests := []struct {
		name   string
		rs     []*party
		opts   Options
		wantCT asn1.ObjectIdentifier
		wantEC asn1.ObjectIdentifier
	}{
		{"sm2 auto", []*party{f.sm2a}, Options{}, cms.OIDSM2EnvelopedData, cms.OIDSM2Data},
		{"sm2 pkcs7", []*party{f.sm2a}, Options{Dialect: DialectPKCS7}, cms.OIDEnvelopedData, cms.OIDData},
		{"sm2 gcm auto", []*party{f.sm2a}, Options{Cipher: SM4GCM}, cms.OIDAuthEnvelopedData, cms.OIDData},
		{"sm2 and rsa auto", []*party{f.sm2a, f.rsa}, Options{Cipher: SM4CBC}, cms.OIDEnvelopedData, cms.OIDData},
		{"rsa default", []*party{f.rsa}, Options{}, cms.OIDAuthEnvelopedData, cms.OIDData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := Envelope(content, certs(tc.rs...), &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			d := describe(t, der)
			if !d.contentType.Equal(tc.wantCT) || !d.eContentType.Equal(tc.wantEC) {
				t.Fatalf("got %s / %s, want %s / %s", d.contentType, d.eContentType, tc.wantCT, tc.wantEC)
			}
			for _, p := range tc.rs {
				got, err := Open(der, p.opener(t), p.cert, nil)
				if err != nil || !bytes.Equal(got, content) {
					t.Fatalf("Open as %s: %v", p.name, err)
				}
			}
		})
	}
}

func TestSizes(t *testing.T) {
	f := getFixture(t)
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 100000} {
		for _, c := range []Cipher{AES128CBC, AES256GCM, SM4CBC} {
			content := testContent(n)
			der, err := Envelope(content, certs(f.ec256), &Options{Cipher: c})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Open(der, f.ec256.opener(t), f.ec256.cert, nil)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("size %d cipher %s: %v", n, cipherNames[c], err)
			}
		}
	}
}

// An *ecdsa.PrivateKey is accepted in place of a KeyAgreer; a Decrypter is not.
func TestOpenKeyTypes(t *testing.T) {
	f := getFixture(t)
	der, err := Envelope([]byte("k"), certs(f.ec256, f.rsa), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(der, f.ec256.key, f.ec256.cert, nil); err != nil {
		t.Fatalf("Open with *ecdsa.PrivateKey: %v", err)
	}
	if _, err := Open(der, f.rsa.key, f.ec256.cert, nil); !errors.Is(err, ErrKeyType) {
		t.Fatalf("Open EC recipient with an RSA key: %v, want ErrKeyType", err)
	}
	if _, err := Open(der, f.ec256.opener(t), f.rsa.cert, nil); !errors.Is(err, ErrKeyType) {
		t.Fatalf("Open RSA recipient with an ECDH key: %v, want ErrKeyType", err)
	}
	if _, err := Open(der, "not a key", f.rsa.cert, nil); !errors.Is(err, ErrKeyType) {
		t.Fatalf("Open with a string: %v, want ErrKeyType", err)
	}
}

// The content-encryption key is fresh for each message.
func TestFreshKeys(t *testing.T) {
	f := getFixture(t)
	a, _ := Envelope([]byte("same"), certs(f.sm2a), nil)
	b, _ := Envelope([]byte("same"), certs(f.sm2a), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two envelopes of the same content are identical")
	}
	_ = rand.Reader
}

// Recipient kinds this package does not handle (kekri, pwri) sit beside ours without
// failing the message, unlike gmsm and go.mozilla.org/pkcs7, which fail to parse it.
func TestOtherRecipientKindsSkipped(t *testing.T) {
	f := getFixture(t)
	content := []byte("others skipped")
	der, err := Envelope(content, certs(f.rsa, f.ec256), &Options{Cipher: AES128CBC})
	if err != nil {
		t.Fatal(err)
	}
	m := parseMutable(t, der)
	kekri := mustDecodeHex(t, "a21a0201043003040101300b06096086480165030401050403010203")
	pwri := mustDecodeHex(t, "a315020100300b06096086480165030401050403010203")
	m.ed.RecipientInfos = append([]cms.RecipientInfo{{Raw: kekri}}, append(m.ed.RecipientInfos, cms.RecipientInfo{Raw: pwri})...)
	m.ed.Version = m.ed.StandardVersion()
	der = m.marshal(t)
	for _, p := range []*party{f.rsa, f.ec256} {
		got, err := Open(der, p.opener(t), p.cert, nil)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("Open as %s beside kekri and pwri: %v", p.name, err)
		}
	}
}

// SM2 key transport is read under every label peers use: sm2-3 with or without NULL
// (gmsm, GmSSL), sm2-2 with or without parameters (GmSSL 3.x), the bare SM2 OID, and
// rsaEncryption (gmsm, for a certificate an RSA CA signed).
func TestSM2KeyTransportLabels(t *testing.T) {
	f := getFixture(t)
	content := []byte("sm2 labels")
	der, err := Envelope(content, certs(f.sm2a), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []cms.AlgorithmIdentifier{
		{Algorithm: cms.OIDSM2Encrypt}, {Algorithm: cms.OIDSM2Encrypt, Parameters: cms.NullParameters},
		{Algorithm: cms.OIDSM2KeyExchange}, {Algorithm: cms.OIDSM2KeyExchange, Parameters: cms.NullParameters},
		{Algorithm: cms.OIDSM2}, {Algorithm: cms.OIDRSAEncryption, Parameters: cms.NullParameters},
	} {
		m := parseMutable(t, der)
		m.ris[0].KeyTrans.KeyEncryptionAlgorithm = alg
		got, err := Open(m.marshal(t), f.sm2a.key, f.sm2a.cert, nil)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("label %s params %x: %v", alg.Algorithm, alg.Parameters, err)
		}
	}
	m := parseMutable(t, der)
	m.ris[0].KeyTrans.KeyEncryptionAlgorithm = cms.AlgorithmIdentifier{Algorithm: cms.OIDRSAESOAEP}
	if _, err := Open(m.marshal(t), f.sm2a.key, f.sm2a.cert, nil); !errors.Is(err, cms.ErrUnsupported) {
		t.Fatalf("OAEP label on an SM2 recipient: %v, want ErrUnsupported", err)
	}
}
