package cms

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in, out string // hex
	}{
		{"der passes through", "3003020101", "3003020101"},
		{"indefinite sequence", "30800201010000", "3003020101"},
		{"non-minimal length", "308103020101", "3003020101"},
		{"chunked octet string", "2480040161040162" + "0000", "04026162"},
		{"nested indefinite", "3080a0802480" + "0403616263" + "0000" + "0000" + "0000", "3007a0050403616263"},
		{"chunked octet string definite", "2406040161040162", "04026162"},
		{"constructed context tag kept", "a080040161040162" + "0000", "a006040161040162"},
		{"high tag number", "bf8101800201010000", "bf8101030201 01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := mustHex(t, tc.in)
			want := mustHex(t, tc.out)
			got, err := normalize(in)
			if err != nil {
				t.Fatalf("normalize: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %x, want %x", got, want)
			}
			if !isDER(got, 0) {
				t.Fatalf("result %x is not DER", got)
			}
		})
	}
}

func TestNormalizeRejects(t *testing.T) {
	bad := []string{
		"", "30", "3081", "3084010101", "3080", "308002010100", "0480", // truncated / no EOC / primitive indefinite
		"2480020101" + "0000", // chunk of the wrong type inside an OCTET STRING
		"3003020101ff",        // trailing data
		"1f80",                // truncated high tag
		"3085ffffffffff",      // length too large
	}
	for _, h := range bad {
		if _, err := normalize(mustHex(t, h)); !errors.Is(err, ErrMalformed) {
			t.Errorf("normalize(%s) = %v, want ErrMalformed", h, err)
		}
	}
	// Deep nesting is refused, not recursed into without bound.
	deep := bytes.Repeat([]byte{0x30, 0x80}, 200)
	deep = append(deep, bytes.Repeat([]byte{0, 0}, 200)...)
	if _, err := normalize(deep); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: %v, want ErrMalformed", err)
	}
}

func TestParseContentInfo(t *testing.T) {
	// SEQUENCE { OID data, [0] { OCTET STRING "abc" } } in BER, streamed.
	in := mustHex(t, "3080"+"06092a864886f70d010701"+"a080"+"2480040161040262630000"+"0000"+"0000")
	ci, err := ParseContentInfo(in)
	if err != nil {
		t.Fatal(err)
	}
	if !ci.ContentType.Equal(OIDData) {
		t.Fatalf("content type %v", ci.ContentType)
	}
	if want := mustHex(t, "0403616263"); !bytes.Equal(ci.Content, want) {
		t.Fatalf("content %x, want %x", ci.Content, want)
	}
	der, err := ci.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "3012"+"06092a864886f70d010701"+"a005"+"0403616263"); !bytes.Equal(der, want) {
		t.Fatalf("marshal %x, want %x", der, want)
	}
	for _, h := range []string{"3081", "1f80", "308401", "3000", "300b06092a864886f70d010701ff", "3010" + "06092a864886f70d010701" + "a1030401ff"} {
		if _, err := ParseContentInfo(mustHex(t, h)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseContentInfo(%s) = %v, want ErrMalformed", h, err)
		}
	}
}

func TestMarshalAttributeSetSorts(t *testing.T) {
	a := Attribute{Type: OIDAttrSigningTime, Values: [][]byte{mustHex(t, "170d3236313132373130303030305a")}}
	b := Attribute{Type: OIDAttrContentType, Values: [][]byte{mustHex(t, "06092a864886f70d010701")}}
	x, err := MarshalAttributeSet([]Attribute{a, b})
	if err != nil {
		t.Fatal(err)
	}
	y, err := MarshalAttributeSet([]Attribute{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatal("attribute set encoding depends on input order")
	}
	// The shorter contentType attribute (0x30 0x18 ...) sorts before signingTime (0x30 0x1c ...).
	if !bytes.HasPrefix(x, mustHex(t, "3018")) {
		t.Fatalf("not sorted: %x", x)
	}
}

func FuzzParseContentInfo(f *testing.F) {
	f.Add(mustHexF("3080" + "06092a864886f70d010701" + "a080" + "2480040161040262630000" + "0000" + "0000"))
	f.Add(mustHexF("3081"))
	f.Add(mustHexF("1f80"))
	f.Add(mustHexF("308401"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ci, err := ParseContentInfo(in)
		if err != nil {
			return
		}
		der, err := ci.Marshal()
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		ci2, err := ParseContentInfo(der)
		if err != nil {
			t.Fatalf("reparse of our own output: %v", err)
		}
		if !ci2.ContentType.Equal(ci.ContentType) || !bytes.Equal(ci2.Content, ci.Content) {
			t.Fatal("round trip changed the ContentInfo")
		}
	})
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(stripSpaces(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHexF(s string) []byte {
	b, err := hex.DecodeString(stripSpaces(s))
	if err != nil {
		panic(err)
	}
	return b
}

func stripSpaces(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil))
}
