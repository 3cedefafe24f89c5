package cms

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Fuzz targets for the SignedData parser entry points, seeded with the OpenSSL-made
// objects in testdata/signed and with structures written here. Beyond "no panic",
// whatever parses must marshal, re-parse, and marshal to the same bytes.

func sdAddSignedSeeds(f *testing.F, raw bool) {
	for _, n := range sdSeedNames(f) {
		in := sdReadSeed(f, n)
		if raw {
			ci, err := ParseContentInfo(in)
			if err != nil {
				f.Fatal(err)
			}
			in = bytes.Clone(ci.Content)
		}
		f.Add(in)
	}
	for _, sid := range []SignerIdentifier{{SubjectKeyID: []byte{1, 2}}, {IssuerAndSerial: IssuerAndSerial{Issuer: []byte{0x30, 0x00}, Serial: big.NewInt(300)}}} {
		der, err := sdMinimalSignedData(sid).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		if raw {
			ci, _ := ParseContentInfo(der)
			der = bytes.Clone(ci.Content)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x81})
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00})
}

func sdCheckRoundTrip(t *testing.T, sd *SignedData, reparse func([]byte) (*SignedData, error)) {
	der, err := sd.Marshal()
	if err != nil {
		t.Fatalf("a parsed SignedData does not marshal: %v", err)
	}
	if ref, err := marshalSignedDataCryptobyte(sd, nil); err != nil || !bytes.Equal(ref, der) {
		t.Fatalf("the cryptobyte reference writes something else (%v)", err)
	}
	sd2, err := reparse(der)
	if err != nil {
		t.Fatalf("our own output does not parse: %v", err)
	}
	der2, err := sd2.Marshal()
	if err != nil || !bytes.Equal(der, der2) {
		t.Fatalf("marshal is not stable (%v)", err)
	}
	if len(sd2.SignerInfos) != len(sd.SignerInfos) || !bytes.Equal(sd2.EContent, sd.EContent) || (sd2.EContent == nil) != (sd.EContent == nil) {
		t.Fatal("round trip changed the structure")
	}
	for i := range sd.SignerInfos {
		a, b := &sd.SignerInfos[i], &sd2.SignerInfos[i]
		if !bytes.Equal(a.Signature, b.Signature) || !bytes.Equal(a.RawSignedAttrs[min(1, len(a.RawSignedAttrs)):], b.RawSignedAttrs[min(1, len(b.RawSignedAttrs)):]) {
			t.Fatal("round trip changed a signature or the signed attributes")
		}
	}
}

func FuzzParseSignedDataContentInfo(f *testing.F) {
	sdAddSignedSeeds(f, false)
	f.Fuzz(func(t *testing.T, in []byte) {
		sd, err := ParseSignedDataContentInfo(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnsupported: %v", err)
			}
			return
		}
		sdCheckRoundTrip(t, sd, ParseSignedDataContentInfo)
	})
}

// sdParseWithoutNormalizing reads our own ContentInfo output as DER only, as
// ParseSignedData's callers do (the raw entry point does not normalise its input, so
// certificate bodies are never looked into).
func sdParseWithoutNormalizing(der []byte) (*SignedData, error) {
	s := cryptobyte.String(der)
	var seq, explicit cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!seq.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, malformed("ContentInfo")
	}
	return ParseSignedData(explicit)
}

func FuzzParseSignedData(f *testing.F) {
	sdAddSignedSeeds(f, true)
	f.Fuzz(func(t *testing.T, in []byte) {
		sd, err := ParseSignedData(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnsupported: %v", err)
			}
			return
		}
		sd.ContentType = OIDSignedData
		sdCheckRoundTrip(t, sd, sdParseWithoutNormalizing)
	})
}

// FuzzSignedAttributeValues covers the exported attribute-value readers.
func FuzzSignedAttributeValues(f *testing.F) {
	f.Add([]byte("\x17\x0d261127100000Z"))
	f.Add([]byte("\x18\x0f20770102030405Z"))
	f.Add([]byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01})
	f.Add([]byte{0x04, 0x02, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, in []byte) {
		if tm, err := ParseTimeAttribute(in); err == nil {
			if got := sdAppendTime(nil, tm); (tm.Year() >= 1950 && tm.Year() < 2050) && in[0] == 0x17 && tm.Nanosecond() == 0 && !bytes.Equal(got, in) {
				t.Fatalf("UTCTime %q re-encodes as %q", in, got)
			}
		}
		if oid, err := ParseOIDAttribute(in); err == nil && !OIDAttributeEquals(in, oid) {
			t.Fatalf("OID %v does not equal its own encoding %x", oid, in)
		}
		ParseOctetStringAttribute(in)
	})
}
