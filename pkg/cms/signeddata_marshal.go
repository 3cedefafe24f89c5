package cms

// Writing SignedData: the DER ContentInfo, with cryptobyte like every structure here.

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Marshal returns the DER of the ContentInfo holding this SignedData.
func (sd *SignedData) Marshal() ([]byte, error) {
	return sd.AppendMarshal(nil)
}

// AppendMarshal appends the DER ContentInfo to dst and returns it.
func (sd *SignedData) AppendMarshal(dst []byte) ([]byte, error) {
	if err := sd.checkMarshal(); err != nil {
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

// checkMarshal rejects what the encoding cannot check itself: a signer without an
// identifier, and RawSignedAttrs that are not one SET (or [0]) element.
func (sd *SignedData) checkMarshal() error {
	for i := range sd.SignerInfos {
		si := &sd.SignerInfos[i]
		if si.SID.SubjectKeyID == nil && (si.SID.IssuerAndSerial.Serial == nil || len(si.SID.IssuerAndSerial.Issuer) == 0) {
			return fmt.Errorf("cms: SignerInfo %d has no signer identifier", i)
		}
		if raw := si.RawSignedAttrs; len(raw) > 0 {
			_, _, n, hdr, err := berHeader(raw)
			if err != nil || (raw[0] != byte(cbasn1.SET) && raw[0] != byte(cbasn1.Tag(0).Constructed().ContextSpecific())) || n < 0 || hdr+n != len(raw) {
				return fmt.Errorf("cms: SignerInfo %d: RawSignedAttrs is not one SET element", i)
			}
		}
	}
	return nil
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
