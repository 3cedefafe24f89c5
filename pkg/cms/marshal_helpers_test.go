package cms

import (
	"encoding/asn1"
	"errors"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Encoders only the tests need: the package writes whole ContentInfos, the tests also
// look at the structures inside them.

// marshalDER returns the DER of one structure on its own, without a ContentInfo around it.
func marshalDER(m interface{ marshalInto(*cryptobyte.Builder) }) ([]byte, error) {
	var b cryptobyte.Builder
	m.marshalInto(&b)
	return b.Bytes()
}

// marshalIVParameters returns the DER OCTET STRING holding iv, the parameters of a
// CBC content-encryption algorithm.
func marshalIVParameters(iv []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1OctetString(iv)
	return b.BytesOrPanic()
}

// marshalSignedDataCryptobyte writes what SignedData.AppendMarshal writes, with
// cryptobyte.Builder like the rest of the package: the reference the sizes-first
// writer is checked against, and what BenchmarkMarshal compares it with.
func marshalSignedDataCryptobyte(sd *SignedData, dst []byte) ([]byte, error) {
	var enc sdEncoding
	if err := enc.prepare(sd); err != nil {
		return nil, err
	}
	ct := sd.ContentType
	if ct == nil {
		ct = OIDSignedData
	}
	b := cryptobyte.NewBuilder(slices.Grow(dst, sd.sizeHint()))
	addContentInfo(b, ct, sd.marshalInto)
	return b.Bytes()
}

// sizeHint is the length of the encoding give or take its headers, so that the
// output is allocated once.
func (sd *SignedData) sizeHint() int {
	n := 256 + len(sd.EContent)
	for _, l := range [][][]byte{sd.Certificates, sd.CRLs} {
		for _, c := range l {
			n += len(c)
		}
	}
	for i := range sd.SignerInfos {
		si := &sd.SignerInfos[i]
		n += 256 + len(si.SID.SubjectKeyID) + len(si.SID.IssuerAndSerial.Issuer) + len(si.RawSignedAttrs) + len(si.Signature)
	}
	return n
}

func (sd *SignedData) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(sd.Version))
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			addSetOfElements(b, len(sd.DigestAlgorithms), func(i int, b *cryptobyte.Builder) { sd.DigestAlgorithms[i].marshalInto(b) })
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(sd.EContentType)
			if sd.EContent != nil {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1OctetString(sd.EContent)
				})
			}
		})
		elems := func(tag cbasn1.Tag, list [][]byte) {
			b.AddASN1(tag, func(b *cryptobyte.Builder) {
				for _, e := range list {
					b.AddBytes(e)
				}
			})
		}
		if sd.Certificates != nil {
			elems(cbasn1.Tag(0).Constructed().ContextSpecific(), sd.Certificates)
		}
		if sd.CRLs != nil {
			elems(cbasn1.Tag(1).Constructed().ContextSpecific(), sd.CRLs)
		}
		// Signers are written in the order given, as OpenSSL does, not sorted.
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for i := range sd.SignerInfos {
				sd.SignerInfos[i].marshalInto(b)
			}
		})
	})
}

func (si *SignerInfo) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(si.Version))
		if si.SID.SubjectKeyID != nil {
			addTagged(b, cbasn1.Tag(0).ContextSpecific(), si.SID.SubjectKeyID)
		} else {
			si.SID.IssuerAndSerial.marshalInto(b)
		}
		si.DigestAlgorithm.marshalInto(b)
		if len(si.RawSignedAttrs) > 0 {
			// Written as received apart from the tag, so the signature stays valid.
			b.AddUint8(uint8(cbasn1.Tag(0).Constructed().ContextSpecific()))
			b.AddBytes(si.RawSignedAttrs[1:])
		} else if len(si.SignedAttrs) > 0 {
			addAttributes(b, cbasn1.Tag(0).Constructed().ContextSpecific(), si.SignedAttrs)
		}
		si.SignatureAlgorithm.marshalInto(b)
		b.AddASN1OctetString(si.Signature)
		if len(si.UnsignedAttrs) > 0 {
			addAttributes(b, cbasn1.Tag(1).Constructed().ContextSpecific(), si.UnsignedAttrs)
		}
	})
}

// appendSigningAttributesCryptobyte writes what AppendSigningAttributes writes, with
// cryptobyte.Builder: the attributes in a fixed order, then sorted where they stand.
func appendSigningAttributesCryptobyte(dst []byte, contentType asn1.ObjectIdentifier, digest []byte, signingTime time.Time) ([]byte, error) {
	start := len(dst)
	b := cryptobyte.NewBuilder(dst)
	attr := func(b *cryptobyte.Builder, typ asn1.ObjectIdentifier, value cryptobyte.BuilderContinuation) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(typ)
			b.AddASN1(cbasn1.SET, value)
		})
	}
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		attr(b, OIDAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(contentType) })
		attr(b, OIDAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) })
		if !signingTime.IsZero() {
			attr(b, OIDAttrSigningTime, func(b *cryptobyte.Builder) {
				t := signingTime.UTC().Truncate(time.Second)
				if y := t.Year(); y >= 1950 && y < 2050 {
					b.AddASN1UTCTime(t)
				} else {
					b.AddASN1GeneralizedTime(t)
				}
			})
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	set := cryptobyte.String(out[start:])
	var body cryptobyte.String
	var tag cbasn1.Tag
	if !set.ReadAnyASN1(&body, &tag) {
		return nil, errors.New("signed attributes do not read back")
	}
	var ends []int
	for rest, off := body, 0; !rest.Empty(); {
		var e cryptobyte.String
		if !rest.ReadAnyASN1Element(&e, &tag) {
			return nil, errors.New("signed attributes do not read back")
		}
		off += len(e)
		ends = append(ends, off)
	}
	sdSortInPlace(body, ends)
	return out, nil
}
