package cms

import (
	"bytes"
	"encoding/asn1"
	"testing"
	"time"
)

// BenchmarkMarshal measures the DER writers alone, on messages parsed from the seeds
// in testdata (OpenSSL's and ours) and on the signed attributes a signer writes.
//
// It is what decides whether SignedData and the signing attributes keep the writer of
// their own (signedder.go) that every other structure does without: their cases run
// twice in the same run, with that writer and with cryptobyte.Builder writing the same
// bytes (marshalSignedDataCryptobyte, appendSigningAttributesCryptobyte; the tests
// check they agree). The end-to-end effect is in pkg/sign's
// BenchmarkSignOverheadSkipSelfCheck, the cost of Sign over the bare signature. When
// neither shows a difference worth keeping, remove signedder.go and use the
// cryptobyte versions.
//
//	go test -run '^$' -bench Marshal -benchmem ./pkg/cms
func BenchmarkMarshal(b *testing.B) {
	signed, err := ParseSignedDataContentInfo(sdReadSeed(b, "ecdsa-attached.der"))
	if err != nil {
		b.Fatal(err)
	}
	digest := bytes.Repeat([]byte{0x5a}, 32)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, w := range []struct {
		name  string
		sd    func(*SignedData, []byte) ([]byte, error)
		attrs func([]byte, asn1.ObjectIdentifier, []byte, time.Time) ([]byte, error)
	}{
		{"sizes-first", (*SignedData).AppendMarshal, AppendSigningAttributes},
		{"cryptobyte", marshalSignedDataCryptobyte, appendSigningAttributesCryptobyte},
	} {
		b.Run("signeddata/"+w.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.sd(signed, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("signing-attributes/"+w.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf := make([]byte, 0, SigningAttributesSize(OIDData, digest, now))
				if _, err := w.attrs(buf, OIDData, digest, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	seeds := envelopeSeeds(b)
	for _, tc := range []struct{ name, seed string }{
		{"enveloped-rsa", "openssl-rsa-v15-aes256cbc.der"},
		{"enveloped-ecdh", "openssl-ec-keyid-aes256cbc.der"},
		{"enveloped-sm2", "ours-sm2-gmt-sm4cbc.der"},
		{"authenveloped-rsa-oaep", "openssl-rsa-oaep-aes256gcm.der"},
		{"signedandenveloped-sm2", "ours-sae-sm2-gmt.der"},
	} {
		ci, err := ParseContentInfo(seeds[tc.seed])
		if err != nil {
			b.Fatal(err)
		}
		var marshal func() ([]byte, error)
		switch ct := ci.ContentType; {
		case ContentTypeIsEnveloped(ct):
			ed, err := ParseEnvelopedData(ci.Content)
			if err != nil {
				b.Fatal(err)
			}
			marshal = func() ([]byte, error) { return ed.MarshalContentInfo(ct) }
		case ct.Equal(OIDAuthEnvelopedData):
			ad, err := ParseAuthEnvelopedData(ci.Content)
			if err != nil {
				b.Fatal(err)
			}
			marshal = ad.MarshalContentInfo
		default:
			sed, err := ParseSignedAndEnvelopedData(ci.Content)
			if err != nil {
				b.Fatal(err)
			}
			marshal = func() ([]byte, error) { return sed.MarshalContentInfo(ct) }
			b.Run("detached-signeddata", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := sed.DetachedSignedData(OIDSM2SignedData, sed.EncryptedContentInfo.ContentType); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
