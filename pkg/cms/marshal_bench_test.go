package cms

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkMarshal measures the DER writers alone, on messages parsed from the seeds
// in testdata (OpenSSL's and ours) and on the signed attributes a signer writes. It
// is the measurement to consult before giving a structure a DER writer of its own
// instead of cryptobyte.Builder: the end-to-end cost of Sign and Envelope is in the
// benchmarks of pkg/sign and pkg/envelope, beside their bare primitives.
//
//	go test -run '^$' -bench Marshal -benchmem ./pkg/cms
func BenchmarkMarshal(b *testing.B) {
	signed, err := ParseSignedDataContentInfo(sdReadSeed(b, "ecdsa-attached.der"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("signeddata", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := signed.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	digest := bytes.Repeat([]byte{0x5a}, 32)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	b.Run("signing-attributes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := AppendSigningAttributes(nil, OIDData, digest, now); err != nil {
				b.Fatal(err)
			}
		}
	})
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
