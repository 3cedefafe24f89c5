package cms

import (
	"bytes"
	"testing"
)

// addEnvelopeSeeds seeds f with the real objects in testdata/envelopes: the whole
// ContentInfo (BER or DER) and, for the structure parsers, the inner content.
func addEnvelopeSeeds(f *testing.F, inner bool) {
	for _, der := range envelopeSeeds(f) {
		if !inner {
			f.Add(der)
			continue
		}
		ci, err := ParseContentInfo(der)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(ci.Content))
	}
}

// checkReencode requires that whatever parses re-encodes and parses again.
func checkReencode(t *testing.T, marshal func() ([]byte, error), parse func([]byte) error) {
	out, err := marshal()
	if err != nil {
		return // e.g. a raw RecipientInfo that does not re-encode; not a crash
	}
	if err := parse(out); err != nil {
		t.Fatalf("re-encoding of a parsed value does not parse: %v\n%x", err, out)
	}
}

// FuzzParseEnvelope runs BER input through ParseContentInfo and the parser its
// content type selects, as Open does.
func FuzzParseEnvelope(f *testing.F) {
	addEnvelopeSeeds(f, false)
	f.Fuzz(func(t *testing.T, in []byte) {
		ci, err := ParseContentInfo(in)
		if err != nil || ci.Content == nil {
			return
		}
		switch ct := ci.ContentType; {
		case ContentTypeIsEnveloped(ct):
			ed, err := ParseEnvelopedData(ci.Content)
			if err == nil {
				_ = ed.StandardVersion()
				checkReencode(t, func() ([]byte, error) { return marshalDER(ed) }, func(b []byte) error { _, err := ParseEnvelopedData(b); return err })
			}
		case ct.Equal(OIDAuthEnvelopedData):
			ad, err := ParseAuthEnvelopedData(ci.Content)
			if err == nil {
				if _, err := ad.AAD(); err != nil {
					t.Fatalf("AAD of a parsed message: %v", err)
				}
				checkReencode(t, func() ([]byte, error) { return marshalDER(ad) }, func(b []byte) error { _, err := ParseAuthEnvelopedData(b); return err })
			}
		case ContentTypeIsSignedAndEnveloped(ct):
			sed, err := ParseSignedAndEnvelopedData(ci.Content)
			if err == nil {
				checkReencode(t, func() ([]byte, error) { return marshalDER(sed) }, func(b []byte) error { _, err := ParseSignedAndEnvelopedData(b); return err })
				if sd, err := sed.DetachedSignedData(OIDSignedData, sed.EncryptedContentInfo.ContentType); err == nil {
					sci, err := ParseContentInfo(sd)
					if err != nil {
						t.Fatalf("detached SignedData does not parse: %v", err)
					}
					if _, _, _, err := ParseSignedParts(sci.Content); err != nil {
						t.Fatalf("detached SignedData parts do not parse: %v", err)
					}
				}
			}
		}
	})
}

// FuzzParseEnvelopedData calls each structure parser directly on DER input.
func FuzzParseEnvelopedData(f *testing.F) {
	addEnvelopeSeeds(f, true)
	f.Fuzz(func(t *testing.T, in []byte) {
		if ed, err := ParseEnvelopedData(in); err == nil {
			for _, ri := range ed.RecipientInfos {
				if ri.KeyTrans == nil && ri.KeyAgree == nil && len(ri.Raw) == 0 {
					t.Fatal("empty RecipientInfo from the parser")
				}
			}
		}
		_, _ = ParseAuthEnvelopedData(in)
		_, _ = ParseSignedAndEnvelopedData(in)
		_, _, _, _ = ParseSignedParts(in)
	})
}

// FuzzParseEnvelopeParams covers the algorithm parameter parsers.
func FuzzParseEnvelopeParams(f *testing.F) {
	sha := AlgorithmIdentifier{Algorithm: OIDSHA256}
	oaep, _ := RSAESOAEPParams{Hash: sha, MGFHash: sha, Label: []byte("x")}.Marshal()
	gcm, _ := GCMParameters{Nonce: make([]byte, 12), ICVLen: 16}.Marshal()
	f.Add(oaep)
	f.Add(gcm)
	f.Add(marshalIVParameters(make([]byte, 16)))
	f.Fuzz(func(t *testing.T, in []byte) {
		if p, err := ParseRSAESOAEPParams(in); err == nil {
			if p.Hash.Algorithm == nil || p.MGFHash.Algorithm == nil {
				t.Fatal("OAEP parameters without hashes")
			}
		}
		if p, err := ParseGCMParameters(in); err == nil && (p.ICVLen < 12 || p.ICVLen > 16 || len(p.Nonce) == 0) {
			t.Fatalf("GCM parameters out of range: %+v", p)
		}
		_, _ = ParseIVParameters(in)
		_ = KeyIDFromSPKI(in)
	})
}

// FuzzParsePBKDF2Params reads arbitrary PBKDF2-params: nothing may panic, and what
// parses has an iteration count a reader can bound and re-encodes.
func FuzzParsePBKDF2Params(f *testing.F) {
	p := PBKDF2Params{Salt: []byte("0123456789abcdef"), Iterations: 2048, KeyLength: 32, PRF: AlgorithmIdentifier{Algorithm: OIDHMACWithSHA256, Parameters: NullParameters}}
	b, _ := p.Marshal()
	f.Add(b)
	f.Add([]byte{0x30, 0x0d, 0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParsePBKDF2Params(in)
		if err != nil {
			return
		}
		if p.Iterations < 1 || p.PRF.Algorithm == nil {
			t.Fatalf("parsed %+v", p)
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParsePBKDF2Params(out); err != nil {
			t.Fatalf("re-encoding does not parse: %v", err)
		}
	})
}
