package cms

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func envelopeSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "envelopes", "*.der"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no envelope seeds in testdata/envelopes: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// parseAnyEnvelope parses the ContentInfo and its envelope and re-encodes it.
func parseAnyEnvelope(t testing.TB, der []byte) (ris []RecipientInfo, eci *EncryptedContentInfo, reenc []byte) {
	t.Helper()
	ci, err := ParseContentInfo(der)
	if err != nil {
		t.Fatalf("ParseContentInfo: %v", err)
	}
	switch ct := ci.ContentType; {
	case ContentTypeIsEnveloped(ct):
		ed, err := ParseEnvelopedData(ci.Content)
		if err != nil {
			t.Fatalf("ParseEnvelopedData: %v", err)
		}
		if reenc, err = ed.MarshalContentInfo(ct); err != nil {
			t.Fatal(err)
		}
		return ed.RecipientInfos, &ed.EncryptedContentInfo, reenc
	case ct.Equal(OIDAuthEnvelopedData):
		ad, err := ParseAuthEnvelopedData(ci.Content)
		if err != nil {
			t.Fatalf("ParseAuthEnvelopedData: %v", err)
		}
		if reenc, err = ad.MarshalContentInfo(); err != nil {
			t.Fatal(err)
		}
		return ad.RecipientInfos, &ad.AuthEncryptedContentInfo, reenc
	case ContentTypeIsSignedAndEnveloped(ct):
		sed, err := ParseSignedAndEnvelopedData(ci.Content)
		if err != nil {
			t.Fatalf("ParseSignedAndEnvelopedData: %v", err)
		}
		if reenc, err = sed.MarshalContentInfo(ct); err != nil {
			t.Fatal(err)
		}
		return sed.RecipientInfos, &sed.EncryptedContentInfo, reenc
	}
	t.Fatalf("not an envelope: %s", ci.ContentType)
	return nil, nil, nil
}

// Every seed parses; every DER seed re-encodes to the same bytes (our encoder writes
// what OpenSSL and gmsm write, SET OF order included); the BER one re-encodes to its
// DER form, which parses to the same fields.
func TestEnvelopeSeedsRoundTrip(t *testing.T) {
	for name, der := range envelopeSeeds(t) {
		t.Run(name, func(t *testing.T) {
			ris, eci, reenc := parseAnyEnvelope(t, der)
			if len(ris) == 0 || len(eci.EncryptedContent) == 0 {
				t.Fatalf("%d recipients, %d content bytes", len(ris), len(eci.EncryptedContent))
			}
			if strings.Contains(name, "stream-ber") {
				if bytes.Equal(reenc, der) {
					t.Fatal("BER seed is not BER")
				}
				ris2, eci2, reenc2 := parseAnyEnvelope(t, reenc)
				if len(ris2) != len(ris) || !bytes.Equal(eci2.EncryptedContent, eci.EncryptedContent) || !bytes.Equal(reenc2, reenc) {
					t.Fatal("DER form of the BER seed differs")
				}
				return
			}
			if !bytes.Equal(reenc, der) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", reenc, der)
			}
		})
	}
}

// The fields of OpenSSL's ECDH recipient are read as OpenSSL wrote them.
func TestParseOpenSSLKeyAgree(t *testing.T) {
	seeds := envelopeSeeds(t)
	ris, eci, _ := parseAnyEnvelope(t, seeds["openssl-ec-keyid-aes256cbc.der"])
	if len(ris) != 1 || ris[0].KeyAgree == nil {
		t.Fatalf("want one KeyAgreeRecipientInfo, got %+v", ris)
	}
	k := ris[0].KeyAgree
	if k.Version != 3 || k.UKM != nil || k.Originator.PublicKey == nil || len(k.Originator.PublicKey.PublicKey) != 65 ||
		!k.Originator.PublicKey.Algorithm.Algorithm.Equal(OIDECPublicKey) {
		t.Fatalf("originator %+v", k.Originator)
	}
	if !k.KeyEncryptionAlgorithm.Algorithm.Equal(OIDDHSinglePassStdDHSHA256KDF) {
		t.Fatalf("scheme %s", k.KeyEncryptionAlgorithm.Algorithm)
	}
	wrap, err := ParseAlgorithmIdentifier(k.KeyEncryptionAlgorithm.Parameters)
	if err != nil || !wrap.Algorithm.Equal(OIDAES256Wrap) || wrap.Parameters != nil {
		t.Fatalf("wrap %+v %v", wrap, err)
	}
	rek := k.RecipientEncryptedKeys
	if len(rek) != 1 || len(rek[0].RID.SubjectKeyID) != 20 || rek[0].RID.IssuerAndSerial != nil || len(rek[0].EncryptedKey) != 40 {
		t.Fatalf("recipient encrypted keys %+v", rek)
	}
	if !eci.ContentEncryptionAlgorithm.Algorithm.Equal(OIDAES256CBC) {
		t.Fatalf("content algorithm %s", eci.ContentEncryptionAlgorithm.Algorithm)
	}
	iv, err := ParseIVParameters(eci.ContentEncryptionAlgorithm.Parameters)
	if err != nil || len(iv) != 16 {
		t.Fatalf("iv %x %v", iv, err)
	}
}

// Our OAEP parameters are byte for byte what OpenSSL writes for rsa_oaep_md:sha256.
func TestOAEPParamsMatchOpenSSL(t *testing.T) {
	ris, _, _ := parseAnyEnvelope(t, envelopeSeeds(t)["openssl-rsa-oaep-aes256gcm.der"])
	alg := ris[0].KeyTrans.KeyEncryptionAlgorithm
	if !alg.Algorithm.Equal(OIDRSAESOAEP) {
		t.Fatalf("algorithm %s", alg.Algorithm)
	}
	p, err := ParseRSAESOAEPParams(alg.Parameters)
	if err != nil || !p.Hash.Algorithm.Equal(OIDSHA256) || !p.MGFHash.Algorithm.Equal(OIDSHA256) || len(p.Label) != 0 {
		t.Fatalf("params %+v %v", p, err)
	}
	sha := AlgorithmIdentifier{Algorithm: OIDSHA256}
	ours, err := RSAESOAEPParams{Hash: sha, MGFHash: sha}.Marshal()
	if err != nil || !bytes.Equal(ours, alg.Parameters) {
		t.Fatalf("ours %x, OpenSSL's %x", ours, alg.Parameters)
	}
	// Absent parameters mean the SHA-1 defaults; a label round-trips.
	d, err := ParseRSAESOAEPParams(nil)
	if err != nil || !d.Hash.Algorithm.Equal(OIDSHA1) || !d.MGFHash.Algorithm.Equal(OIDSHA1) {
		t.Fatalf("defaults %+v %v", d, err)
	}
	withLabel, _ := RSAESOAEPParams{Hash: sha, MGFHash: sha, Label: []byte("L")}.Marshal()
	if p, err := ParseRSAESOAEPParams(withLabel); err != nil || string(p.Label) != "L" {
		t.Fatalf("label %+v %v", p, err)
	}
}

func TestGCMParameters(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, 12)
	for _, icv := range []int{12, 16} {
		der, err := GCMParameters{Nonce: nonce, ICVLen: icv}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseGCMParameters(der)
		if err != nil || p.ICVLen != icv || !bytes.Equal(p.Nonce, nonce) {
			t.Fatalf("icv %d: %+v %v", icv, p, err)
		}
		if icv == 12 && len(der) != 2+14 {
			t.Fatalf("default ICV length written: %x", der)
		}
	}
	for _, bad := range []string{"", "3000", "30020400", "30050401ff0500", "30060401ff020110ff", "3011040c07070707070707070707070702010b", "3011040c070707070707070707070707020111"} {
		if _, err := ParseGCMParameters(mustHex(t, bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseGCMParameters(%s) = %v, want ErrMalformed", bad, err)
		}
	}
}

// A message with recipient kinds this package does not read (kekri, pwri, ori) keeps
// them raw and still parses; key agreement with ukm and an rKeyId with a date parses.
func TestRecipientInfoChoices(t *testing.T) {
	issuer := mustHex(t, "300d310b300906035504030c026361")
	ktri := RecipientInfo{KeyTrans: &KeyTransRecipientInfo{
		Version: 0, RID: RecipientIdentifier{IssuerAndSerial: &IssuerAndSerial{Issuer: issuer, Serial: big.NewInt(5)}},
		KeyEncryptionAlgorithm: AlgorithmIdentifier{Algorithm: OIDRSAEncryption, Parameters: NullParameters}, EncryptedKey: []byte{1, 2, 3},
	}}
	kari := RecipientInfo{KeyAgree: &KeyAgreeRecipientInfo{
		Version:                3,
		Originator:             OriginatorIdentifierOrKey{PublicKey: &OriginatorPublicKey{Algorithm: AlgorithmIdentifier{Algorithm: OIDECPublicKey}, PublicKey: []byte{4, 1, 2}}},
		UKM:                    []byte("ukm"),
		KeyEncryptionAlgorithm: AlgorithmIdentifier{Algorithm: OIDDHSinglePassStdDHSHA256KDF, Parameters: mustHex(t, "300b0609608648016503040105")},
		RecipientEncryptedKeys: []RecipientEncryptedKey{
			{RID: RecipientIdentifier{SubjectKeyID: []byte{9, 9}}, EncryptedKey: []byte{5}},
			{RID: RecipientIdentifier{IssuerAndSerial: &IssuerAndSerial{Issuer: issuer, Serial: big.NewInt(6)}}, EncryptedKey: []byte{6}},
		},
	}}
	// kekri [2] { version 4, kekid { keyIdentifier }, aes128-wrap, encryptedKey }
	kekri := RecipientInfo{Raw: mustHex(t, "a21a 020104 3003 040101 300b 0609608648016503040105 0403 010203")}
	// pwri [3] { version 0, keyEncryptionAlgorithm aes128-wrap, encryptedKey }
	pwri := RecipientInfo{Raw: mustHex(t, "a315 020100 300b 0609608648016503040105 0403 010203")}
	ed := &EnvelopedData{
		RecipientInfos:       []RecipientInfo{ktri, kari, kekri, pwri},
		EncryptedContentInfo: EncryptedContentInfo{ContentType: OIDData, ContentEncryptionAlgorithm: AlgorithmIdentifier{Algorithm: OIDAES128CBC, Parameters: marshalIVParameters(make([]byte, 16))}, EncryptedContent: make([]byte, 16)},
	}
	ed.Version = ed.StandardVersion()
	if ed.Version != 3 {
		t.Fatalf("version %d with a pwri, want 3", ed.Version)
	}
	der, err := ed.MarshalContentInfo(OIDEnvelopedData)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := ParseContentInfo(der)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelopedData(ci.Content)
	if err != nil {
		t.Fatalf("ParseEnvelopedData: %v", err)
	}
	var nKT, nKA, nRaw int
	for _, ri := range got.RecipientInfos {
		switch {
		case ri.KeyTrans != nil:
			nKT++
		case ri.KeyAgree != nil:
			nKA++
			if string(ri.KeyAgree.UKM) != "ukm" || len(ri.KeyAgree.RecipientEncryptedKeys) != 2 {
				t.Fatalf("kari %+v", ri.KeyAgree)
			}
		default:
			nRaw++
		}
	}
	if nKT != 1 || nKA != 1 || nRaw != 2 {
		t.Fatalf("kinds: %d ktri, %d kari, %d raw", nKT, nKA, nRaw)
	}
	// rKeyId with a date and an other attribute parses to its key identifier.
	rkid := mustHex(t, "a0 17 0402 0909 180f 32303236313132373130303030305a 3000")
	s := cryptobyte.String(rkid)
	var rid RecipientIdentifier
	if !readRecipientIdentifier(&s, &rid, true) || !bytes.Equal(rid.SubjectKeyID, []byte{9, 9}) {
		t.Fatalf("rKeyId with date: %+v", rid)
	}
}

func TestStandardVersion(t *testing.T) {
	ias := &IssuerAndSerial{Issuer: []byte{0x30, 0}, Serial: big.NewInt(1)}
	kt := func(v int) RecipientInfo {
		rid := RecipientIdentifier{IssuerAndSerial: ias}
		if v == 2 {
			rid = RecipientIdentifier{SubjectKeyID: []byte{1}}
		}
		return RecipientInfo{KeyTrans: &KeyTransRecipientInfo{Version: v, RID: rid}}
	}
	ka := RecipientInfo{KeyAgree: &KeyAgreeRecipientInfo{Version: 3}}
	tests := []struct {
		name string
		ed   EnvelopedData
		want int
	}{
		{"ktri v0 only", EnvelopedData{RecipientInfos: []RecipientInfo{kt(0), kt(0)}}, 0},
		{"ktri by ski", EnvelopedData{RecipientInfos: []RecipientInfo{kt(0), kt(2)}}, 2},
		{"kari", EnvelopedData{RecipientInfos: []RecipientInfo{ka}}, 2},
		{"unprotected attrs", EnvelopedData{RecipientInfos: []RecipientInfo{kt(0)}, UnprotectedAttrs: []Attribute{{Type: OIDAttrSigningTime}}}, 2},
		{"ori", EnvelopedData{RecipientInfos: []RecipientInfo{kt(0), {Raw: []byte{0xa4, 0}}}}, 3},
		{"originator info plain", EnvelopedData{OriginatorInfo: mustHex(t, "a000"), RecipientInfos: []RecipientInfo{kt(0)}}, 2},
		{"originator info other cert", EnvelopedData{OriginatorInfo: mustHex(t, "a004a002a300"), RecipientInfos: []RecipientInfo{kt(0)}}, 4},
		{"originator info v2 attr cert", EnvelopedData{OriginatorInfo: mustHex(t, "a004a002a200"), RecipientInfos: []RecipientInfo{kt(0)}}, 3},
	}
	for _, tc := range tests {
		if got := tc.ed.StandardVersion(); got != tc.want {
			t.Errorf("%s: version %d, want %d", tc.name, got, tc.want)
		}
	}
}

// An EnvelopedData with originatorInfo and unprotectedAttrs, and an AuthEnvelopedData
// with authAttrs and unauthAttrs, round-trip; the AAD is the SET OF authAttrs.
func TestOptionalFields(t *testing.T) {
	ktri := RecipientInfo{KeyTrans: &KeyTransRecipientInfo{Version: 2, RID: RecipientIdentifier{SubjectKeyID: []byte{1, 2}},
		KeyEncryptionAlgorithm: AlgorithmIdentifier{Algorithm: OIDRSAEncryption}, EncryptedKey: []byte{3}}}
	eci := EncryptedContentInfo{ContentType: OIDSM2Data, ContentEncryptionAlgorithm: AlgorithmIdentifier{Algorithm: OIDSM4CBC},
		EncryptedContent: []byte{1, 2, 3}, SharedInfo1: []byte("s1"), SharedInfo2: []byte("s2")}
	attr := Attribute{Type: OIDAttrSigningTime, Values: [][]byte{mustHex(t, "170d3236313132373130303030305a")}}
	ed := &EnvelopedData{Version: 2, OriginatorInfo: mustHex(t, "a000"), RecipientInfos: []RecipientInfo{ktri}, EncryptedContentInfo: eci, UnprotectedAttrs: []Attribute{attr}}
	der, err := marshalDER(ed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelopedData(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.OriginatorInfo, ed.OriginatorInfo) || len(got.UnprotectedAttrs) != 1 ||
		string(got.EncryptedContentInfo.SharedInfo1) != "s1" || string(got.EncryptedContentInfo.SharedInfo2) != "s2" {
		t.Fatalf("got %+v", got)
	}
	ad := &AuthEnvelopedData{RecipientInfos: []RecipientInfo{ktri}, AuthEncryptedContentInfo: eci, AuthAttrs: []Attribute{attr}, MAC: []byte("tag"), UnauthAttrs: []Attribute{attr}}
	der, err = marshalDER(ad)
	if err != nil {
		t.Fatal(err)
	}
	gad, err := ParseAuthEnvelopedData(der)
	if err != nil {
		t.Fatal(err)
	}
	aad1, _ := ad.AAD()
	aad2, _ := gad.AAD()
	if !bytes.Equal(aad1, aad2) || aad1[0] != 0x31 || string(gad.MAC) != "tag" || len(gad.UnauthAttrs) != 1 {
		t.Fatalf("aad %x / %x, parsed %+v", aad1, aad2, gad)
	}
	if none, _ := (&AuthEnvelopedData{}).AAD(); none != nil {
		t.Fatal("AAD without authAttrs is not nil")
	}
}

func TestSignedPartsRoundTrip(t *testing.T) {
	ci, err := ParseContentInfo(envelopeSeeds(t)["ours-sae-sm2-gmt.der"])
	if err != nil {
		t.Fatal(err)
	}
	sed, err := ParseSignedAndEnvelopedData(ci.Content)
	if err != nil {
		t.Fatal(err)
	}
	if sed.Version != 1 || len(sed.SignerInfos) != 1 || len(sed.Certificates) == 0 || len(sed.DigestAlgorithms) != 1 {
		t.Fatalf("parsed %+v", sed.SignedParts)
	}
	sd, err := sed.DetachedSignedData(OIDSM2SignedData, sed.EncryptedContentInfo.ContentType)
	if err != nil {
		t.Fatal(err)
	}
	sci, err := ParseContentInfo(sd)
	if err != nil || !sci.ContentType.Equal(OIDSM2SignedData) {
		t.Fatalf("detached SignedData: %v", err)
	}
	parts, ect, content, err := ParseSignedParts(sci.Content)
	if err != nil || content != nil || !ect.Equal(OIDSM2Data) || len(parts.SignerInfos) != 1 || !bytes.Equal(parts.SignerInfos[0], sed.SignerInfos[0]) {
		t.Fatalf("ParseSignedParts: %v %s %v", err, ect, content)
	}
}

func TestEnvelopeParsersRejectMalformed(t *testing.T) {
	bad := []string{
		"", "30", "3000", "3003020100", "30050201003100",
		"3081", "308002010000", // BER is not accepted here (ParseContentInfo normalises first)
		"300a020100310530030201ff", // recipient info of a wrong universal type... an INTEGER in the SET
		"3008020100310330010000",   // garbage RecipientInfo
	}
	for _, h := range bad {
		in := mustHex(t, h)
		if _, err := ParseEnvelopedData(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseEnvelopedData(%s) = %v", h, err)
		}
		if _, err := ParseAuthEnvelopedData(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseAuthEnvelopedData(%s) = %v", h, err)
		}
		if _, err := ParseSignedAndEnvelopedData(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSignedAndEnvelopedData(%s) = %v", h, err)
		}
		if _, _, _, err := ParseSignedParts(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSignedParts(%s) = %v", h, err)
		}
	}
	// Every truncation of every seed is malformed, never a panic.
	for name, der := range envelopeSeeds(t) {
		ci, err := ParseContentInfo(der)
		if err != nil {
			t.Fatal(err)
		}
		c := bytes.Clone(ci.Content)
		for n := 0; n < len(c); n++ {
			var err error
			switch {
			case ContentTypeIsEnveloped(ci.ContentType):
				_, err = ParseEnvelopedData(c[:n])
			case ci.ContentType.Equal(OIDAuthEnvelopedData):
				_, err = ParseAuthEnvelopedData(c[:n])
			default:
				_, err = ParseSignedAndEnvelopedData(c[:n])
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s truncated to %d: %v", name, n, err)
			}
		}
	}
	_ = asn1.ObjectIdentifier{}
}
