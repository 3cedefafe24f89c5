package sign

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"testing"

	"signsvr.dev/signsvr/internal/devpki"
	"signsvr.dev/signsvr/pkg/cms"
)

func TestSignContentTypeAndExtraAttributes(t *testing.T) {
	custom := cms.Attribute{Type: asn1.ObjectIdentifier{1, 2, 3, 4, 5}, Values: [][]byte{{0x04, 0x02, 0xca, 0xfe}}}
	for _, alg := range []devpki.Algorithm{devpki.RSA2048, devpki.ECDSAP256, devpki.SM2} {
		t.Run(string(alg), func(t *testing.T) {
			p := pkiFor(t, alg)
			content := []byte("tst info stand-in")
			der, err := Sign(content, p.key, p.chain, &Options{
				Now: fixedClock, EContentType: cms.OIDTSTInfo, ExtraSignedAttributes: []cms.Attribute{custom},
			})
			if err != nil {
				t.Fatal(err)
			}
			sd, err := cms.ParseSignedDataContentInfo(der)
			if err != nil {
				t.Fatal(err)
			}
			if !sd.EContentType.Equal(cms.OIDTSTInfo) {
				t.Fatalf("eContentType %s", sd.EContentType)
			}
			si := &sd.SignerInfos[0]
			if len(si.SignedAttrs) != 4 {
				t.Fatalf("%d signed attributes, want 4", len(si.SignedAttrs))
			}
			got, found, single := cms.FindAttribute(si.SignedAttrs, custom.Type)
			if !found || !single || !bytes.Equal(got.Values[0], custom.Values[0]) {
				t.Fatalf("extra attribute not signed as given: %+v", got)
			}
			// DER order of the SET OF.
			for i := 1; i < len(si.SignedAttrs); i++ {
				a, _ := cms.MarshalAttributeSet(si.SignedAttrs[i-1 : i])
				b, _ := cms.MarshalAttributeSet(si.SignedAttrs[i : i+1])
				if bytes.Compare(a, b) > 0 {
					t.Fatalf("signed attributes %d and %d out of DER order", i-1, i)
				}
			}
			res, err := VerifyParsed(sd, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Signers[0].Signature.Valid || res.ContentType != cms.OIDTSTInfo.String() {
				t.Fatalf("verify: %+v, content type %s", res.Signers[0].Signature, res.ContentType)
			}
		})
	}
}

func TestSignContentOptionsRejected(t *testing.T) {
	p := pkiFor(t, devpki.ECDSAP256)
	cases := []struct {
		name string
		o    Options
	}{
		{"tstinfo without attributes", Options{EContentType: cms.OIDTSTInfo, NoSignedAttributes: true}},
		{"extra without attributes", Options{NoSignedAttributes: true, ExtraSignedAttributes: []cms.Attribute{{Type: asn1.ObjectIdentifier{1, 2, 3}, Values: [][]byte{{5, 0}}}}}},
		{"repeats messageDigest", Options{ExtraSignedAttributes: []cms.Attribute{{Type: cms.OIDAttrMessageDigest, Values: [][]byte{{4, 0}}}}}},
		{"no value", Options{ExtraSignedAttributes: []cms.Attribute{{Type: asn1.ObjectIdentifier{1, 2, 3}}}}},
		{"value not DER", Options{ExtraSignedAttributes: []cms.Attribute{{Type: asn1.ObjectIdentifier{1, 2, 3}, Values: [][]byte{{4, 5, 0}}}}}},
		{"bad content type", Options{EContentType: asn1.ObjectIdentifier{1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.Now = fixedClock
			if _, err := Sign([]byte("x"), p.key, p.chain, &c.o); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
		})
	}
}
