package cms

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// The seeds in testdata/signed were made by openssl 3.0 with make.sh there.
func sdReadSeed(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "signed", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sdSeedNames(t testing.TB) []string {
	t.Helper()
	var names []string
	for _, pat := range []string{"*.der", "*.ber"} {
		m, err := filepath.Glob(filepath.Join("testdata", "signed", pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			names = append(names, filepath.Base(p))
		}
	}
	if len(names) == 0 {
		t.Fatal("no seeds in testdata/signed")
	}
	return names
}

func TestParseOpenSSLSeeds(t *testing.T) {
	content := sdReadSeed(t, "content.txt")
	tests := []struct {
		name     string
		detached bool
		ski      bool
		noattr   bool
		certs    int
		digest   asn1.ObjectIdentifier
	}{
		{"ecdsa-attached.der", false, false, false, 1, OIDSHA256},
		{"ecdsa-detached-keyid.der", true, true, false, 1, OIDSHA256},
		{"ecdsa-noattr.der", false, false, true, 1, OIDSHA256},
		{"ecdsa-stream.ber", false, false, false, 1, OIDSHA256},
		{"ecdsa-indef-nocerts.ber", false, false, false, 0, OIDSHA384},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := sdReadSeed(t, tc.name)
			sd, err := ParseSignedDataContentInfo(in)
			if err != nil {
				t.Fatal(err)
			}
			if !sd.ContentType.Equal(OIDSignedData) || !sd.EContentType.Equal(OIDData) || sd.Version != 1 && !tc.ski {
				t.Errorf("types %s %s version %d", sd.ContentType, sd.EContentType, sd.Version)
			}
			if tc.detached != (sd.EContent == nil) || (!tc.detached && !bytes.Equal(sd.EContent, content)) {
				t.Errorf("eContent %q", sd.EContent)
			}
			if len(sd.Certificates) != tc.certs {
				t.Errorf("%d certificates", len(sd.Certificates))
			}
			if len(sd.SignerInfos) != 1 {
				t.Fatalf("%d signers", len(sd.SignerInfos))
			}
			si := sd.SignerInfos[0]
			if si.SID.IsSubjectKeyID() != tc.ski || (tc.ski && si.Version != 3) || (!tc.ski && si.SID.IssuerAndSerial.Serial == nil) {
				t.Errorf("sid %+v version %d", si.SID, si.Version)
			}
			if !si.DigestAlgorithm.Algorithm.Equal(tc.digest) || !si.SignatureAlgorithm.Algorithm.Equal(map[bool]asn1.ObjectIdentifier{true: OIDECDSAWithSHA384, false: OIDECDSAWithSHA256}[tc.digest.Equal(OIDSHA384)]) {
				t.Errorf("algorithms %s %s", si.DigestAlgorithm.Algorithm, si.SignatureAlgorithm.Algorithm)
			}
			if tc.noattr != !si.HasSignedAttrs() {
				t.Errorf("signed attributes present = %v", si.HasSignedAttrs())
			}
			if !tc.noattr {
				if si.RawSignedAttrs[0] != 0xa0 {
					t.Errorf("raw signed attributes tag %#x", si.RawSignedAttrs[0])
				}
				for _, typ := range []asn1.ObjectIdentifier{OIDAttrContentType, OIDAttrMessageDigest, OIDAttrSigningTime} {
					if _, found, single := FindAttribute(si.SignedAttrs, typ); !found || !single {
						t.Errorf("attribute %s missing", typ)
					}
				}
			}
			// Marshal gives back the DER form of the input exactly.
			norm, err := normalize(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := sd.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, norm) {
				t.Fatalf("Marshal(Parse(x)) differs from the DER of x:\n got %x\nwant %x", out, norm)
			}
			if strings.HasSuffix(tc.name, ".ber") && bytes.Equal(norm, in) {
				t.Error("a .ber seed was already DER; it does not test BER")
			}
		})
	}
}

func TestParseSignedDataRejects(t *testing.T) {
	good := sdReadSeed(t, "ecdsa-attached.der")
	for n := 0; n < len(good); n++ {
		if _, err := ParseSignedDataContentInfo(good[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	data, _ := (&ContentInfo{ContentType: OIDData, Content: []byte{4, 0}}).Marshal()
	noContent, _ := (&ContentInfo{ContentType: OIDSignedData}).Marshal()
	tests := map[string][]byte{
		"not SignedData":          data,
		"SignedData without body": noContent,
		"empty SEQUENCE":          {0x30, 0x00},
		"version only":            {0x30, 0x03, 0x02, 0x01, 0x01},
		"version too big":         {0x30, 0x03, 0x02, 0x01, 0x09},
		"negative version":        {0x30, 0x03, 0x02, 0x01, 0xff},
		"missing signerInfos":     mustHex(t, "300c020101310030060609"+"2a864886f70d010701"[:2]),
		"trailing":                append(bytes.Clone(good), 0x00),
	}
	for name, in := range tests {
		var err error
		if name == "version only" || name == "version too big" || name == "negative version" || name == "empty SEQUENCE" || name == "missing signerInfos" {
			_, err = ParseSignedData(in)
		} else {
			_, err = ParseSignedDataContentInfo(in)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// sdMinimalSignedData builds a small SignedData with the given signer identifier and
// attributes, for structure tests without cryptography.
func sdMinimalSignedData(sid SignerIdentifier) *SignedData {
	return &SignedData{
		ContentType:      OIDSM2SignedData,
		Version:          1,
		DigestAlgorithms: []AlgorithmIdentifier{{Algorithm: OIDSM3}},
		EContentType:     OIDSM2Data,
		EContent:         []byte("hello"),
		Certificates:     [][]byte{{0x30, 0x00}, {0xa1, 0x00}},
		CRLs:             [][]byte{{0x30, 0x00}},
		SignerInfos: []SignerInfo{{
			Version:            1,
			SID:                sid,
			DigestAlgorithm:    AlgorithmIdentifier{Algorithm: OIDSM3},
			SignedAttrs:        []Attribute{{Type: OIDAttrContentType, Values: [][]byte{{0x06, 0x01, 0x2a}}}},
			SignatureAlgorithm: AlgorithmIdentifier{Algorithm: OIDSM2WithSM3},
			Signature:          []byte{1, 2, 3},
		}},
	}
}

func TestSignedDataMarshalRoundTrip(t *testing.T) {
	name := mustHex(t, "300f310d300b0603550403130474657374")
	serials := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(128), big.NewInt(-1), big.NewInt(-129), new(big.Int).Lsh(big.NewInt(1), 159)}
	var sids []SignerIdentifier
	for _, s := range serials {
		sids = append(sids, SignerIdentifier{IssuerAndSerial: IssuerAndSerial{Issuer: name, Serial: s}})
	}
	sids = append(sids, SignerIdentifier{SubjectKeyID: []byte{9, 8, 7}}, SignerIdentifier{SubjectKeyID: []byte{}})
	for i, sid := range sids {
		sd := sdMinimalSignedData(sid)
		sd.DigestAlgorithms = append(sd.DigestAlgorithms, AlgorithmIdentifier{Algorithm: OIDSHA256, Parameters: NullParameters})
		sd.SignerInfos[0].AddUnsignedAttribute(Attribute{Type: OIDAttrSignatureTimeStamp, Values: [][]byte{{0x30, 0x00}}})
		der, err := sd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSignedDataContentInfo(der)
		if err != nil {
			t.Fatalf("sid %d: %v", i, err)
		}
		if !got.ContentType.Equal(OIDSM2SignedData) || !bytes.Equal(got.EContent, sd.EContent) ||
			len(got.Certificates) != 2 || len(got.CRLs) != 1 || len(got.DigestAlgorithms) != 2 {
			t.Fatalf("sid %d: round trip lost structure: %+v", i, got)
		}
		// The SET OF digest algorithms was sorted by encoding (SM3's is shorter).
		if !got.DigestAlgorithms[0].Algorithm.Equal(OIDSM3) {
			t.Errorf("digest algorithms not sorted")
		}
		si := got.SignerInfos[0]
		if sid.IsSubjectKeyID() {
			if !si.SID.IsSubjectKeyID() || !bytes.Equal(si.SID.SubjectKeyID, sid.SubjectKeyID) {
				t.Errorf("sid %d: ski %x", i, si.SID.SubjectKeyID)
			}
		} else if !si.SID.IssuerAndSerial.Matches(name, sid.IssuerAndSerial.Serial) {
			t.Errorf("sid %d: serial %v", i, si.SID.IssuerAndSerial.Serial)
		}
		if len(si.UnsignedAttrs) != 1 || !si.UnsignedAttrs[0].Type.Equal(OIDAttrSignatureTimeStamp) {
			t.Errorf("unsigned attributes %+v", si.UnsignedAttrs)
		}
		// Re-marshalling the parsed form is byte-identical.
		again, err := got.Marshal()
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("sid %d: second marshal differs (%v)", i, err)
		}
	}
}

func TestSignedDataMarshalRejects(t *testing.T) {
	name := mustHex(t, "3000")
	tests := map[string]func(sd *SignedData){
		"nil serial": func(sd *SignedData) {
			sd.SignerInfos[0].SID = SignerIdentifier{IssuerAndSerial: IssuerAndSerial{Issuer: name}}
		},
		"bad econtent type":    func(sd *SignedData) { sd.EContentType = asn1.ObjectIdentifier{7} },
		"bad digest":           func(sd *SignedData) { sd.SignerInfos[0].DigestAlgorithm.Algorithm = nil },
		"bad raw attrs":        func(sd *SignedData) { sd.SignerInfos[0].RawSignedAttrs = []byte{0x31, 0x05, 0x00} },
		"raw attrs wrong tag":  func(sd *SignedData) { sd.SignerInfos[0].RawSignedAttrs = []byte{0x30, 0x00} },
		"bad outer type":       func(sd *SignedData) { sd.ContentType = asn1.ObjectIdentifier{1, 40} },
		"bad digest algorithm": func(sd *SignedData) { sd.DigestAlgorithms[0].Algorithm = asn1.ObjectIdentifier{3, 1} },
	}
	for n, f := range tests {
		sd := sdMinimalSignedData(SignerIdentifier{SubjectKeyID: []byte{1}})
		f(sd)
		if _, err := sd.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted it", n)
		}
	}
}

// TestBERForms: every constructed element rewritten with an indefinite length and
// every OCTET STRING and [0] primitive (eContent, signature, SubjectKeyIdentifier)
// split into chunks, as a streaming BER writer may do, reads back to the same DER.
func TestBERForms(t *testing.T) {
	inputs := map[string][]byte{}
	for _, sid := range []SignerIdentifier{{SubjectKeyID: []byte{0xaa, 0xbb, 0xcc}}, {IssuerAndSerial: IssuerAndSerial{Issuer: []byte{0x30, 0x00}, Serial: big.NewInt(5)}}} {
		der, err := sdMinimalSignedData(sid).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		inputs[fmt.Sprintf("minimal ski=%v", sid.IsSubjectKeyID())] = der
	}
	for _, n := range sdSeedNames(t) {
		der, err := normalize(sdReadSeed(t, n))
		if err != nil {
			t.Fatal(err)
		}
		inputs[n] = der
	}
	for name, der := range inputs {
		ber := sdToBER(t, der)
		if bytes.Equal(ber, der) {
			t.Fatalf("%s: sdToBER changed nothing", name)
		}
		sd, err := ParseSignedDataContentInfo(ber)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := sd.Marshal()
		if err != nil || !bytes.Equal(out, der) {
			t.Fatalf("%s: BER form does not read back to the DER (%v)", name, err)
		}
	}
}

// sdToBER rewrites DER as BER: indefinite lengths for constructed elements, chunked
// OCTET STRINGs and context [0] primitives.
func sdToBER(t *testing.T, der []byte) []byte {
	t.Helper()
	var out []byte
	for len(der) > 0 {
		_, cons, n, hdr, err := berHeader(der)
		if err != nil || n < 0 {
			t.Fatalf("sdToBER: %v", err)
		}
		tag, body := der[0], der[hdr:hdr+n]
		switch {
		case cons:
			out = append(out, tag, 0x80)
			out = append(out, sdToBER(t, body)...)
			out = append(out, 0, 0)
		case (tag == 0x04 || tag == 0x80) && n > 1:
			out = append(out, tag|0x20, 0x80)
			for i := 0; i < n; i += 3 {
				chunk := body[i:min(i+3, n)]
				out = append(out, 0x04, byte(len(chunk)))
				out = append(out, chunk...)
			}
			out = append(out, 0, 0)
		default:
			out = append(out, der[:hdr+n]...)
		}
		der = der[hdr+n:]
	}
	return out
}

func TestDERWriterMatchesEncodingASN1(t *testing.T) {
	oids := []asn1.ObjectIdentifier{OIDData, OIDSM2SignedData, OIDSHA512, OIDNamedCurveP384, {2, 999, 3}, {0, 0}, {1, 39, 1<<31 - 1}}
	for _, o := range oids {
		want, _ := asn1.Marshal(o)
		if got := sdAppendOID(nil, o); !bytes.Equal(got, want) || sdOidSize(o) != len(want)-2 {
			t.Errorf("OID %s: %x, want %x", o, got, want)
		}
	}
	for _, bad := range []asn1.ObjectIdentifier{nil, {1}, {3, 1}, {1, 40}, {1, 2, -1}} {
		if sdOidValid(bad) {
			t.Errorf("sdOidValid(%v)", bad)
		}
	}
	ints := []int64{0, 1, 127, 128, 255, 256, -1, -128, -129, 1 << 40, -1 << 40}
	for _, v := range ints {
		want, _ := asn1.Marshal(v)
		if got := sdAppendInt(nil, v); !bytes.Equal(got, want) || sdIntSize(v) != len(want) {
			t.Errorf("int %d: %x, want %x", v, got, want)
		}
		bv := big.NewInt(v)
		wantBig, _ := asn1.Marshal(bv)
		if got := sdAppendBigInt(nil, bv); !bytes.Equal(got, wantBig) || sdBigIntSize(bv) != len(wantBig) {
			t.Errorf("big %d: %x, want %x", v, got, wantBig)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		b := make([]byte, r.IntN(40)+1)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		n := new(big.Int).SetBytes(b)
		if i%2 == 1 {
			n.Neg(n)
		}
		want, _ := asn1.Marshal(n)
		if got := sdAppendBigInt(nil, n); !bytes.Equal(got, want) || sdBigIntSize(n) != len(want) {
			t.Fatalf("big %v: %x, want %x", n, got, want)
		}
	}
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 24} {
		got := sdAppendTL(nil, 0x04, n)
		if len(got)+n != sdTlvSize(n) {
			t.Errorf("sdTlvSize(%d) = %d, header %d", n, sdTlvSize(n), len(got))
		}
		_, _, l, hdr, err := berHeader(append(got, make([]byte, n)...))
		if err != nil || l != n || hdr != len(got) {
			t.Errorf("length %d: header %x reads as %d (%v)", n, got, l, err)
		}
	}
	times := []time.Time{
		time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 11, 27, 10, 0, 0, 123, time.FixedZone("CST", 8*3600)),
	}
	for _, tm := range times {
		want, _ := asn1.Marshal(tm.UTC().Truncate(time.Second))
		if got := sdAppendTime(nil, tm); !bytes.Equal(got, want) || sdTimeSize(tm) != len(want) {
			t.Errorf("time %v: %q, want %q", tm, got, want)
		}
		back, err := ParseTimeAttribute(want)
		if err != nil || !back.Equal(tm.Truncate(time.Second)) {
			t.Errorf("ParseTimeAttribute(%q) = %v, %v", want, back, err)
		}
	}
}

// TestSignedDataWritersAgree: the sizes-first writer and the cryptobyte reference write
// the same bytes, for the OpenSSL seeds and for structures with every optional field,
// and reject the same structures.
func TestSignedDataWritersAgree(t *testing.T) {
	var sds []*SignedData
	for _, n := range sdSeedNames(t) {
		sd, err := ParseSignedDataContentInfo(sdReadSeed(t, n))
		if err != nil {
			t.Fatal(err)
		}
		sds = append(sds, sd)
	}
	name := mustHex(t, "300f310d300b0603550403130474657374")
	for _, sid := range []SignerIdentifier{{SubjectKeyID: []byte{9, 8, 7}}, {IssuerAndSerial: IssuerAndSerial{Issuer: name, Serial: big.NewInt(-129)}}} {
		sd := sdMinimalSignedData(sid)
		sd.DigestAlgorithms = append(sd.DigestAlgorithms, AlgorithmIdentifier{Algorithm: OIDSHA256, Parameters: NullParameters})
		sd.SignerInfos[0].AddUnsignedAttribute(Attribute{Type: OIDAttrSignatureTimeStamp, Values: [][]byte{{0x30, 0x00}}})
		sds = append(sds, sd)
		detached := *sdMinimalSignedData(sid)
		detached.EContent, detached.Certificates, detached.CRLs, detached.ContentType = nil, nil, nil, nil
		sds = append(sds, &detached)
	}
	bad := sdMinimalSignedData(SignerIdentifier{SubjectKeyID: []byte{1}})
	bad.DigestAlgorithms[0].Algorithm = asn1.ObjectIdentifier{3, 1}
	sds = append(sds, bad)
	for i, sd := range sds {
		want, werr := sd.AppendMarshal([]byte{0xee})
		got, gerr := marshalSignedDataCryptobyte(sd, []byte{0xee})
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("%d: the writers disagree: %v, %v\n got %x\nwant %x", i, gerr, werr, got, want)
		}
	}
	for _, ct := range []asn1.ObjectIdentifier{OIDData, OIDSM2Data, OIDTSTInfo} {
		for _, tm := range []time.Time{{}, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2077, 1, 2, 3, 4, 5, 0, time.FixedZone("CST", 8*3600))} {
			for _, dlen := range []int{20, 32, 64} {
				digest := bytes.Repeat([]byte{byte(dlen)}, dlen)
				want, _ := AppendSigningAttributes([]byte{0xee}, ct, digest, tm)
				got, err := appendSigningAttributesCryptobyte([]byte{0xee}, ct, digest, tm)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("signing attributes %s %v %d: %v\n got %x\nwant %x", ct, tm, dlen, err, got, want)
				}
			}
		}
	}
}

// TestSigningAttributesMatchGenericEncoder: the hand-built attribute SET equals what
// MarshalAttributeSet makes from the same attributes (sorted DER SET OF).
func TestSigningAttributesMatchGenericEncoder(t *testing.T) {
	for _, ct := range []asn1.ObjectIdentifier{OIDData, OIDSM2Data, OIDTSTInfo} {
		for _, dlen := range []int{20, 32, 48, 64} {
			for _, tm := range []time.Time{{}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2077, 1, 2, 3, 4, 5, 0, time.UTC)} {
				digest := bytes.Repeat([]byte{byte(dlen)}, dlen)
				got, err := AppendSigningAttributes([]byte{0xee}, ct, digest, tm)
				if err != nil {
					t.Fatal(err)
				}
				if got[0] != 0xee || len(got)-1 != SigningAttributesSize(ct, digest, tm) {
					t.Fatalf("prefix lost or size wrong: %d vs %d", len(got)-1, SigningAttributesSize(ct, digest, tm))
				}
				ctv, _ := asn1.Marshal(ct)
				mdv, _ := asn1.Marshal(digest)
				attrs := []Attribute{{Type: OIDAttrMessageDigest, Values: [][]byte{mdv}}, {Type: OIDAttrContentType, Values: [][]byte{ctv}}}
				if !tm.IsZero() {
					tv, _ := asn1.Marshal(tm.UTC())
					attrs = append(attrs, Attribute{Type: OIDAttrSigningTime, Values: [][]byte{tv}})
				}
				body, _ := MarshalAttributeSet(attrs)
				want := append(sdAppendTL(nil, 0x31, len(body)), body...)
				if !bytes.Equal(got[1:], want) {
					t.Fatalf("ct %s digest %d time %v:\n got %x\nwant %x", ct, dlen, tm, got[1:], want)
				}
			}
		}
	}
	if _, err := AppendSigningAttributes(nil, asn1.ObjectIdentifier{5}, nil, time.Time{}); err == nil {
		t.Error("invalid content type accepted")
	}
}

func TestSortInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		var elems [][]byte
		var buf []byte
		var ends []int
		for j := 0; j < 1+r.IntN(5); j++ {
			e := make([]byte, 1+r.IntN(4))
			for k := range e {
				e[k] = byte(r.IntN(3))
			}
			elems = append(elems, e)
			buf = append(buf, e...)
			ends = append(ends, len(buf))
		}
		sdSortInPlace(buf, ends)
		slices.SortFunc(elems, bytes.Compare)
		if want := bytes.Join(elems, nil); !bytes.Equal(buf, want) {
			t.Fatalf("sorted %x, want %x", buf, want)
		}
	}
}

func TestAttributeValueHelpers(t *testing.T) {
	ctv, _ := asn1.Marshal(OIDData)
	if !OIDAttributeEquals(ctv, OIDData) || OIDAttributeEquals(ctv, OIDSM2Data) || OIDAttributeEquals(ctv[:5], OIDData) {
		t.Error("OIDAttributeEquals")
	}
	if o, err := ParseOIDAttribute(ctv); err != nil || !o.Equal(OIDData) {
		t.Error("ParseOIDAttribute")
	}
	if _, err := ParseOIDAttribute(append(bytes.Clone(ctv), 0)); !errors.Is(err, ErrMalformed) {
		t.Error("ParseOIDAttribute trailing")
	}
	if v, err := ParseOctetStringAttribute([]byte{4, 2, 1, 2}); err != nil || !bytes.Equal(v, []byte{1, 2}) {
		t.Error("ParseOctetStringAttribute")
	}
	for _, bad := range [][]byte{{0x02, 0x01, 0x01}, {0x17, 0x02, '1', '2'}, {0x18, 0x00}, nil} {
		if _, err := ParseTimeAttribute(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTimeAttribute(%x) = %v", bad, err)
		}
	}
}

func TestInternedOIDs(t *testing.T) {
	for _, o := range []asn1.ObjectIdentifier{OIDData, OIDSM2WithSM3, {1, 2, 3, 4, 5}, {2, 999, 1 << 20}} {
		enc, _ := asn1.Marshal(o)
		s := cryptobyte.String(append(bytes.Clone(enc), 0x05, 0x00))
		var got asn1.ObjectIdentifier
		if !sdReadOID(&s, &got) || !got.Equal(o) || !bytes.Equal(s, []byte{0x05, 0x00}) {
			t.Fatalf("sdReadOID(%v) = %v, rest %x", o, got, s)
		}
		_ = append(got, 99) // must not write into the shared table
	}
	if !OIDData.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}) || len(sdInternTable[0].oid) != cap(sdInternTable[0].oid) {
		t.Fatal("interned OID modified or not capacity-limited")
	}
	for _, bad := range [][]byte{{0x06, 0x00}, {0x04, 0x01, 0x2a}, {0x06, 0x02, 0x2a}, {}} {
		s := cryptobyte.String(bad)
		var got asn1.ObjectIdentifier
		if sdReadOID(&s, &got) {
			t.Errorf("sdReadOID(%x) accepted", bad)
		}
	}
	// Attributes read by the lean reader equal the generic reader's.
	sd, err := ParseSignedDataContentInfo(sdReadSeed(t, "ecdsa-attached.der"))
	if err != nil {
		t.Fatal(err)
	}
	raw := sd.SignerInfos[0].RawSignedAttrs
	_, _, n, hdr, _ := berHeader(raw)
	generic, ok := readAttributes(cryptobyte.String(raw[hdr : hdr+n]))
	if !ok || len(generic) != len(sd.SignerInfos[0].SignedAttrs) {
		t.Fatal("attribute readers disagree")
	}
	for i, a := range generic {
		b := sd.SignerInfos[0].SignedAttrs[i]
		if !a.Type.Equal(b.Type) || len(a.Values) != len(b.Values) || !bytes.Equal(bytes.Join(a.Values, nil), bytes.Join(b.Values, nil)) {
			t.Fatalf("attribute %d differs", i)
		}
	}
}
