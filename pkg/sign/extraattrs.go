package sign

import (
	"bytes"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signsvr.dev/signsvr/pkg/cms"
)

// Content types other than data, and signed attributes beyond the three Sign always
// writes, are what an RFC 3161 timestamp token needs: its SignedData encapsulates a
// TSTInfo (eContentType id-ct-TSTInfo) and signs an ESS signingCertificateV2
// attribute naming the TSA certificate (RFC 5816). pkg/tsa builds those through
// Options.EContentType and Options.ExtraSignedAttributes; a plain Sign never pays
// for this path.

// applyContentOptions checks Options.EContentType and Options.ExtraSignedAttributes
// and applies the content type to the plan.
func applyContentOptions(p *plan, o *Options) error {
	if o.EContentType != nil {
		if len(o.EContentType) < 2 {
			return fmt.Errorf("%w: invalid EContentType", ErrInvalidOptions)
		}
		if o.NoSignedAttributes && !cms.IsDataType(o.EContentType) {
			// RFC 5652 §5.3: signed attributes must be present when the content
			// type is not id-data, so that the type is signed too.
			return fmt.Errorf("%w: EContentType %s needs signed attributes", ErrInvalidOptions, o.EContentType)
		}
		p.eType = o.EContentType
	}
	if len(o.ExtraSignedAttributes) == 0 {
		return nil
	}
	if o.NoSignedAttributes {
		return fmt.Errorf("%w: ExtraSignedAttributes with NoSignedAttributes", ErrInvalidOptions)
	}
	for _, a := range o.ExtraSignedAttributes {
		switch {
		case a.Type.Equal(cms.OIDAttrContentType), a.Type.Equal(cms.OIDAttrMessageDigest), a.Type.Equal(cms.OIDAttrSigningTime):
			return fmt.Errorf("%w: ExtraSignedAttributes may not give %s (Sign writes it)", ErrInvalidOptions, a.Type)
		case len(a.Values) == 0:
			return fmt.Errorf("%w: signed attribute %s has no value", ErrInvalidOptions, a.Type)
		}
		for _, v := range a.Values {
			s := cryptobyte.String(v)
			var elem cryptobyte.String
			var tag cbasn1.Tag
			if !s.ReadAnyASN1Element(&elem, &tag) || !s.Empty() {
				return fmt.Errorf("%w: a value of signed attribute %s is not one DER element", ErrInvalidOptions, a.Type)
			}
		}
	}
	return nil
}

// addSignedAttributes merges extra attributes into set, the DER SET OF (tag 31) of
// the standard signed attributes, and returns the new SET, sorted as DER requires.
func addSignedAttributes(set []byte, extra []cms.Attribute) ([]byte, error) {
	more, err := cms.MarshalAttributeSet(extra)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	s := cryptobyte.String(set)
	var body cryptobyte.String
	if !s.ReadASN1(&body, cbasn1.SET) || !s.Empty() {
		return nil, fmt.Errorf("%w: signed attributes are not a SET", ErrInvalidOptions)
	}
	var elems [][]byte
	for _, src := range []cryptobyte.String{body, cryptobyte.String(more)} {
		for !src.Empty() {
			var e cryptobyte.String
			if !src.ReadASN1Element(&e, cbasn1.SEQUENCE) {
				return nil, fmt.Errorf("%w: signed attribute is not a SEQUENCE", ErrInvalidOptions)
			}
			elems = append(elems, e)
		}
	}
	slices.SortFunc(elems, bytes.Compare)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, e := range elems {
			b.AddBytes(e)
		}
	})
	return b.Bytes()
}
