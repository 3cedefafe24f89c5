package cms

import (
	"bytes"
	"testing"
)

// SignerInfosDER finds the SET the full parser reads, in DER and in OpenSSL's
// streamed BER, with and without certificates; it refuses what is not a SignedData.
func TestSignerInfosDER(t *testing.T) {
	for _, n := range sdSeedNames(t) {
		in := sdReadSeed(t, n)
		sd, err := ParseSignedDataContentInfo(in)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		got, err := SignerInfosDER(in)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if !bytes.Equal(got, sd.RawSignerInfos) || len(got) == 0 || got[0] != 0x31 {
			t.Errorf("%s: SignerInfosDER = %x\nparser's      %x", n, got, sd.RawSignerInfos)
		}
	}
	env, err := (&ContentInfo{ContentType: OIDData, Content: []byte{0x04, 0x01, 0x00}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"empty": nil, "truncated": {0x30, 0x81}, "id-data": env,
		"no end-of-contents": {0x30, 0x80, 0x06, 0x01, 0x00},
	} {
		if _, err := SignerInfosDER(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzSignerInfosDER: never a panic, and whatever the full parser accepts,
// SignerInfosDER finds the same SET in.
func FuzzSignerInfosDER(f *testing.F) {
	sdAddSignedSeeds(f, false)
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := SignerInfosDER(in)
		sd, perr := ParseSignedDataContentInfo(in)
		if perr != nil {
			return
		}
		if err != nil {
			t.Fatalf("the parser reads the message, SignerInfosDER fails: %v", err)
		}
		if !bytes.Equal(got, sd.RawSignerInfos) {
			t.Fatalf("SignerInfosDER = %x, parser's %x", got, sd.RawSignerInfos)
		}
	})
}
