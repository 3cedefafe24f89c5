package cms

// SignedData (RFC 5652 §5, PKCS#7 §9, GM/T 0010 §7).
//
//	SignedData ::= SEQUENCE {
//	  version CMSVersion,
//	  digestAlgorithms SET OF DigestAlgorithmIdentifier,
//	  encapContentInfo EncapsulatedContentInfo,
//	  certificates [0] IMPLICIT CertificateSet OPTIONAL,
//	  crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//	  signerInfos SET OF SignerInfo }
//
//	EncapsulatedContentInfo ::= SEQUENCE {
//	  eContentType ContentType,
//	  eContent [0] EXPLICIT OCTET STRING OPTIONAL }
//
//	SignerInfo ::= SEQUENCE {
//	  version CMSVersion,
//	  sid SignerIdentifier,
//	  digestAlgorithm DigestAlgorithmIdentifier,
//	  signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
//	  signatureAlgorithm SignatureAlgorithmIdentifier,
//	  signature SignatureValue,
//	  unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
//
//	SignerIdentifier ::= CHOICE {
//	  issuerAndSerialNumber IssuerAndSerialNumber,
//	  subjectKeyIdentifier [0] SubjectKeyIdentifier }
//
// The same structure serves both content-type families: PKCS#7 (1.2.840.113549.1.7.2,
// eContentType usually id-data) and GM/T 0010 (1.2.156.10197.6.1.4.2.2, eContentType
// usually 1.2.156.10197.6.1.4.2.1). The family is kept in SignedData.ContentType and
// written back by Marshal.

import (
	"encoding/asn1"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignedData is a parsed or to-be-written SignedData. Byte slices of a parsed value
// alias the normalised input, and well-known OIDs are shared package values (see
// signedparse.go): treat a parsed SignedData as read-only, replacing fields rather
// than modifying their contents.
type SignedData struct {
	// ContentType is the type of the enclosing ContentInfo: OIDSignedData or
	// OIDSM2SignedData. Marshal writes OIDSignedData when it is nil.
	ContentType asn1.ObjectIdentifier
	Version     int
	// DigestAlgorithms lists the digest algorithms of the signers (a SET OF).
	DigestAlgorithms []AlgorithmIdentifier
	// EContentType is the type of the encapsulated content (OIDData, OIDSM2Data, ...).
	EContentType asn1.ObjectIdentifier
	// EContent is the encapsulated content, nil when absent (a detached signature).
	// A present but empty content is a non-nil empty slice.
	EContent []byte
	// RawEncapContentInfo is the DER of the EncapsulatedContentInfo as read (GmSSL 3.x
	// signs it directly; see pkg/sign). Marshal ignores it.
	RawEncapContentInfo []byte
	// Certificates holds each CertificateChoices element as its complete DER: a
	// Certificate SEQUENCE, or another choice with its context tag, kept as received.
	Certificates [][]byte
	// CRLs holds each RevocationInfoChoice element as its complete DER.
	CRLs        [][]byte
	SignerInfos []SignerInfo
}

// SignerIdentifier names the signer's certificate: by issuer and serial number, or,
// when SubjectKeyID is non-nil, by subject key identifier.
type SignerIdentifier struct {
	IssuerAndSerial IssuerAndSerial
	SubjectKeyID    []byte
}

// IsSubjectKeyID reports whether the signer is named by subject key identifier.
func (id SignerIdentifier) IsSubjectKeyID() bool { return id.SubjectKeyID != nil }

// SignerInfo is one signer.
type SignerInfo struct {
	// Version is 1 for a signer named by issuer and serial, 3 for a subject key identifier.
	Version         int
	SID             SignerIdentifier
	DigestAlgorithm AlgorithmIdentifier
	// SignedAttrs are the parsed signed attributes, in the order received.
	SignedAttrs []Attribute
	// RawSignedAttrs is the complete DER element of the signed attributes: as read
	// it starts with the [0] IMPLICIT tag A0; as built for signing it may start with
	// the SET tag 31. The signature covers it with the tag 31 (RFC 5652 §5.4), so a
	// verifier hashes 0x31 followed by RawSignedAttrs[1:].
	// Marshal writes it unchanged except for the tag, so a re-marshalled message keeps
	// a valid signature. When nil and SignedAttrs is not empty, Marshal encodes
	// SignedAttrs as a sorted DER SET OF.
	RawSignedAttrs     []byte
	SignatureAlgorithm AlgorithmIdentifier
	Signature          []byte
	// UnsignedAttrs are the unsigned attributes (for example a signature timestamp).
	UnsignedAttrs []Attribute
}

// HasSignedAttrs reports whether the signer has signed attributes.
func (si *SignerInfo) HasSignedAttrs() bool {
	return len(si.RawSignedAttrs) > 0 || len(si.SignedAttrs) > 0
}

// AddUnsignedAttribute appends an unsigned attribute (for example
// id-aa-signatureTimeStampToken over Signature). Marshal the SignedData again to
// get the new encoding; the signature stays valid because unsigned attributes are
// not signed.
func (si *SignerInfo) AddUnsignedAttribute(a Attribute) {
	si.UnsignedAttrs = append(si.UnsignedAttrs, a)
}

// IsSignedDataType reports whether oid is a SignedData content type of either family.
func IsSignedDataType(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(OIDSignedData) || oid.Equal(OIDSM2SignedData)
}

// IsDataType reports whether oid is the plain data content type of either family.
func IsDataType(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(OIDData) || oid.Equal(OIDSM2Data)
}

// ParseSignedDataContentInfo reads a BER or DER ContentInfo holding a SignedData of
// either family. It returns an error wrapping ErrMalformed for anything else.
func ParseSignedDataContentInfo(ber []byte) (*SignedData, error) {
	ct, content, err := sdParseContentInfo(ber)
	if err != nil {
		return nil, err
	}
	if !IsSignedDataType(ct) {
		return nil, fmt.Errorf("%w: content type %s is not SignedData", ErrMalformed, ct)
	}
	if content == nil {
		return nil, malformed("SignedData ContentInfo without content")
	}
	sd, err := ParseSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.ContentType = ct
	return sd, nil
}

// ParseSignedData reads the DER of a SignedData SEQUENCE (ContentInfo.Content, which
// ParseContentInfo has already normalised from BER). ContentType is left nil; use
// ParseSignedDataContentInfo to read a whole message.
func ParseSignedData(der []byte) (*SignedData, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("SignedData")
	}
	sd := &SignedData{}
	var v int64
	if !seq.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || v < 0 || v > 5 {
		return nil, malformed("SignedData.version")
	}
	sd.Version = int(v)

	var algs cryptobyte.String
	if !seq.ReadASN1(&algs, cbasn1.SET) {
		return nil, malformed("SignedData.digestAlgorithms")
	}
	for !algs.Empty() {
		var a AlgorithmIdentifier
		if !readAlgorithmIdentifier(&algs, &a) {
			return nil, malformed("SignedData.digestAlgorithms")
		}
		sd.DigestAlgorithms = append(sd.DigestAlgorithms, a)
	}

	var eci cryptobyte.String
	if !seq.ReadASN1Element(&eci, cbasn1.SEQUENCE) {
		return nil, malformed("SignedData.encapContentInfo")
	}
	sd.RawEncapContentInfo = eci
	if err := sdParseEncapContentInfo(eci, sd); err != nil {
		return nil, err
	}

	if seq.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var certs cryptobyte.String
		seq.ReadASN1(&certs, cbasn1.Tag(0).Constructed().ContextSpecific())
		list, ok := sdReadElements(certs)
		if !ok {
			return nil, malformed("SignedData.certificates")
		}
		sd.Certificates = list
	}
	if seq.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		var crls cryptobyte.String
		seq.ReadASN1(&crls, cbasn1.Tag(1).Constructed().ContextSpecific())
		list, ok := sdReadElements(crls)
		if !ok {
			return nil, malformed("SignedData.crls")
		}
		sd.CRLs = list
	}

	var infos cryptobyte.String
	if !seq.ReadASN1(&infos, cbasn1.SET) || !seq.Empty() {
		return nil, malformed("SignedData.signerInfos")
	}
	for !infos.Empty() {
		var si SignerInfo
		if err := sdReadSignerInfo(&infos, &si); err != nil {
			return nil, err
		}
		sd.SignerInfos = append(sd.SignerInfos, si)
	}
	return sd, nil
}

func sdParseEncapContentInfo(der cryptobyte.String, sd *SignedData) error {
	var seq cryptobyte.String
	if !der.ReadASN1(&seq, cbasn1.SEQUENCE) || !sdReadOID(&seq, &sd.EContentType) {
		return malformed("EncapsulatedContentInfo")
	}
	if seq.Empty() {
		return nil
	}
	var explicit cryptobyte.String
	if !seq.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !seq.Empty() {
		return malformed("EncapsulatedContentInfo.eContent")
	}
	// normalize has joined a chunked OCTET STRING into a primitive one.
	var content cryptobyte.String
	if !explicit.PeekASN1Tag(cbasn1.OCTET_STRING) {
		return fmt.Errorf("%w: eContent that is not an OCTET STRING (PKCS#7 ANY content)", ErrUnsupported)
	}
	if !explicit.ReadASN1(&content, cbasn1.OCTET_STRING) || !explicit.Empty() {
		return malformed("EncapsulatedContentInfo.eContent")
	}
	if content == nil {
		content = []byte{}
	}
	sd.EContent = content
	return nil
}

// sdReadElements splits the content of a SET OF into its complete DER elements.
func sdReadElements(s cryptobyte.String) ([][]byte, bool) {
	var out [][]byte
	for !s.Empty() {
		var e cryptobyte.String
		var tag cbasn1.Tag
		if !s.ReadAnyASN1Element(&e, &tag) {
			return nil, false
		}
		out = append(out, e)
	}
	if out == nil {
		out = [][]byte{}
	}
	return out, true
}

func sdReadSignerInfo(s *cryptobyte.String, si *SignerInfo) error {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return malformed("SignerInfo")
	}
	var v int64
	if !seq.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || v < 0 || v > 5 {
		return malformed("SignerInfo.version")
	}
	si.Version = int(v)

	switch {
	case seq.PeekASN1Tag(cbasn1.SEQUENCE):
		if !readIssuerAndSerial(&seq, &si.SID.IssuerAndSerial) {
			return malformed("SignerInfo.sid")
		}
	default:
		ski, ok := readOctetsOrChunks(&seq, cbasn1.Tag(0).ContextSpecific())
		if !ok {
			return malformed("SignerInfo.sid")
		}
		si.SID.SubjectKeyID = ski
	}

	if !readAlgorithmIdentifier(&seq, &si.DigestAlgorithm) {
		return malformed("SignerInfo.digestAlgorithm")
	}

	if seq.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var raw cryptobyte.String
		seq.ReadASN1Element(&raw, cbasn1.Tag(0).Constructed().ContextSpecific())
		body := cryptobyte.String(raw)
		var content cryptobyte.String
		if !body.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return malformed("SignerInfo.signedAttrs")
		}
		attrs, ok := sdReadAttributes(content)
		if !ok || len(attrs) == 0 {
			return malformed("SignerInfo.signedAttrs")
		}
		si.SignedAttrs = attrs
		si.RawSignedAttrs = raw
	}

	if !readAlgorithmIdentifier(&seq, &si.SignatureAlgorithm) {
		return malformed("SignerInfo.signatureAlgorithm")
	}
	var sig cryptobyte.String
	if !seq.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return malformed("SignerInfo.signature")
	}
	si.Signature = sig

	if seq.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		var content cryptobyte.String
		seq.ReadASN1(&content, cbasn1.Tag(1).Constructed().ContextSpecific())
		attrs, ok := sdReadAttributes(content)
		if !ok {
			return malformed("SignerInfo.unsignedAttrs")
		}
		si.UnsignedAttrs = attrs
	}
	if !seq.Empty() {
		return malformed("SignerInfo: trailing data")
	}
	return nil
}

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
