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
	"bytes"
	"encoding/asn1"
	"fmt"
	"io"

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
	// verifier hashes 0x31 followed by RawSignedAttrs[1:] (see WriteSignedAttrsTo).
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

// SignedAttrsDER returns the signed attributes as the DER SET OF (tag 31) that the
// signature covers. It returns a new slice.
func (si *SignerInfo) SignedAttrsDER() ([]byte, error) {
	if len(si.RawSignedAttrs) > 0 {
		out := make([]byte, len(si.RawSignedAttrs))
		copy(out, si.RawSignedAttrs)
		out[0] = sdTagSet
		return out, nil
	}
	if len(si.SignedAttrs) == 0 {
		return nil, nil
	}
	body, err := MarshalAttributeSet(si.SignedAttrs)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, sdTlvSize(len(body)))
	out = sdAppendTL(out, sdTagSet, len(body))
	return append(out, body...), nil
}

// WriteSignedAttrsTo writes the DER SET OF signed attributes (tag 31) to w, for
// example a hash, without copying RawSignedAttrs. It does nothing when
// RawSignedAttrs is empty.
func (si *SignerInfo) WriteSignedAttrsTo(w io.Writer) {
	if len(si.RawSignedAttrs) == 0 {
		return
	}
	var tag = [1]byte{sdTagSet}
	w.Write(tag[:])
	w.Write(si.RawSignedAttrs[1:])
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

// Marshal returns the DER of the ContentInfo holding this SignedData. It allocates
// the output once, at its exact size.
func (sd *SignedData) Marshal() ([]byte, error) {
	return sd.AppendMarshal(nil)
}

// AppendMarshal appends the DER ContentInfo to dst (growing it once) and returns it.
func (sd *SignedData) AppendMarshal(dst []byte) ([]byte, error) {
	// Encodings that need scratch space (unsorted SET OF digest algorithms, signed
	// or unsigned attributes given as parsed values) are made first.
	var enc sdEncoding
	if err := enc.prepare(sd); err != nil {
		return nil, err
	}
	ct := sd.ContentType
	if ct == nil {
		ct = OIDSignedData
	}
	if !sdOidValid(ct) || !sdOidValid(sd.EContentType) {
		return nil, fmt.Errorf("cms: SignedData has an invalid content type")
	}
	sdLen := enc.signedDataLen(sd)
	ciBody := sdTlvSize(sdOidSize(ct)) + sdTlvSize(sdTlvSize(sdLen))
	total := sdTlvSize(ciBody)
	if cap(dst)-len(dst) < total {
		grown := make([]byte, len(dst), len(dst)+total)
		copy(grown, dst)
		dst = grown
	}
	start := len(dst)
	dst = sdAppendTL(dst, sdTagSequence, ciBody)
	dst = sdAppendOID(dst, ct)
	dst = sdAppendTL(dst, sdTagContext0Cons, sdTlvSize(sdLen))
	dst = enc.appendSignedData(dst, sd, sdLen)
	if len(dst)-start != total {
		return nil, fmt.Errorf("cms: internal error: SignedData length %d, computed %d", len(dst)-start, total)
	}
	return dst, nil
}

// sdEncoding holds the pieces of a SignedData encoding that are not simple copies.
type sdEncoding struct {
	digestAlgs []byte // content of the digestAlgorithms SET when it had to be sorted
	sorted     bool
	signed     [][]byte // per signer: content of signedAttrs when encoded from values
	unsigned   [][]byte // per signer: content of unsignedAttrs
}

func (e *sdEncoding) prepare(sd *SignedData) error {
	if len(sd.DigestAlgorithms) > 1 {
		encs := make([][]byte, len(sd.DigestAlgorithms))
		total := 0
		for i, a := range sd.DigestAlgorithms {
			if !sdOidValid(a.Algorithm) {
				return fmt.Errorf("cms: invalid digest algorithm")
			}
			encs[i] = sdAppendAlgID(nil, a)
			total += len(encs[i])
		}
		sdSortBytes(encs)
		e.digestAlgs = make([]byte, 0, total)
		for _, x := range encs {
			e.digestAlgs = append(e.digestAlgs, x...)
		}
		e.sorted = true
	} else if len(sd.DigestAlgorithms) == 1 && !sdOidValid(sd.DigestAlgorithms[0].Algorithm) {
		return fmt.Errorf("cms: invalid digest algorithm")
	}
	for i := range sd.SignerInfos {
		si := &sd.SignerInfos[i]
		if !sdOidValid(si.DigestAlgorithm.Algorithm) || !sdOidValid(si.SignatureAlgorithm.Algorithm) {
			return fmt.Errorf("cms: SignerInfo %d has an invalid algorithm", i)
		}
		if si.SID.SubjectKeyID == nil && (si.SID.IssuerAndSerial.Serial == nil || len(si.SID.IssuerAndSerial.Issuer) == 0) {
			return fmt.Errorf("cms: SignerInfo %d has no signer identifier", i)
		}
		if raw := si.RawSignedAttrs; len(raw) > 0 {
			_, _, n, hdr, err := berHeader(raw)
			if err != nil || (raw[0] != sdTagSet && raw[0] != sdTagContext0Cons) || n < 0 || hdr+n != len(raw) {
				return fmt.Errorf("cms: SignerInfo %d: RawSignedAttrs is not one SET element", i)
			}
		} else if len(si.SignedAttrs) > 0 {
			body, err := MarshalAttributeSet(si.SignedAttrs)
			if err != nil {
				return err
			}
			if e.signed == nil {
				e.signed = make([][]byte, len(sd.SignerInfos))
			}
			e.signed[i] = body
		}
		if len(si.UnsignedAttrs) > 0 {
			body, err := MarshalAttributeSet(si.UnsignedAttrs)
			if err != nil {
				return err
			}
			if e.unsigned == nil {
				e.unsigned = make([][]byte, len(sd.SignerInfos))
			}
			e.unsigned[i] = body
		}
	}
	return nil
}

func (e *sdEncoding) digestAlgsLen(sd *SignedData) int {
	if e.sorted {
		return len(e.digestAlgs)
	}
	n := 0
	for _, a := range sd.DigestAlgorithms {
		n += sdAlgIDSize(a)
	}
	return n
}

func sdEncapLen(sd *SignedData) int {
	n := sdTlvSize(sdOidSize(sd.EContentType))
	if sd.EContent != nil {
		n += sdTlvSize(sdTlvSize(len(sd.EContent)))
	}
	return n
}

func sdConcatLen(list [][]byte) int {
	n := 0
	for _, c := range list {
		n += len(c)
	}
	return n
}

func (e *sdEncoding) signedDataLen(sd *SignedData) int {
	n := sdIntSize(int64(sd.Version))
	n += sdTlvSize(e.digestAlgsLen(sd))
	n += sdTlvSize(sdEncapLen(sd))
	if sd.Certificates != nil {
		n += sdTlvSize(sdConcatLen(sd.Certificates))
	}
	if sd.CRLs != nil {
		n += sdTlvSize(sdConcatLen(sd.CRLs))
	}
	si := 0
	for i := range sd.SignerInfos {
		si += sdTlvSize(e.signerInfoLen(sd, i))
	}
	return n + sdTlvSize(si)
}

func sdSidLen(id *SignerIdentifier) int {
	if id.SubjectKeyID != nil {
		return sdTlvSize(len(id.SubjectKeyID))
	}
	return sdTlvSize(len(id.IssuerAndSerial.Issuer) + sdBigIntSize(id.IssuerAndSerial.Serial))
}

func (e *sdEncoding) signedAttrsLen(sd *SignedData, i int) int {
	si := &sd.SignerInfos[i]
	if len(si.RawSignedAttrs) > 0 {
		return len(si.RawSignedAttrs)
	}
	if e.signed != nil && e.signed[i] != nil {
		return sdTlvSize(len(e.signed[i]))
	}
	return 0
}

func (e *sdEncoding) signerInfoLen(sd *SignedData, i int) int {
	si := &sd.SignerInfos[i]
	n := sdIntSize(int64(si.Version)) + sdSidLen(&si.SID) + sdAlgIDSize(si.DigestAlgorithm)
	n += e.signedAttrsLen(sd, i)
	n += sdAlgIDSize(si.SignatureAlgorithm) + sdTlvSize(len(si.Signature))
	if e.unsigned != nil && e.unsigned[i] != nil {
		n += sdTlvSize(len(e.unsigned[i]))
	}
	return n
}

func (e *sdEncoding) appendSignedData(dst []byte, sd *SignedData, sdLen int) []byte {
	dst = sdAppendTL(dst, sdTagSequence, sdLen)
	dst = sdAppendInt(dst, int64(sd.Version))
	dst = sdAppendTL(dst, sdTagSet, e.digestAlgsLen(sd))
	if e.sorted {
		dst = append(dst, e.digestAlgs...)
	} else {
		for _, a := range sd.DigestAlgorithms {
			dst = sdAppendAlgID(dst, a)
		}
	}
	dst = sdAppendTL(dst, sdTagSequence, sdEncapLen(sd))
	dst = sdAppendOID(dst, sd.EContentType)
	if sd.EContent != nil {
		dst = sdAppendTL(dst, sdTagContext0Cons, sdTlvSize(len(sd.EContent)))
		dst = sdAppendTL(dst, tagOctetString, len(sd.EContent))
		dst = append(dst, sd.EContent...)
	}
	if sd.Certificates != nil {
		dst = sdAppendTL(dst, sdTagContext0Cons, sdConcatLen(sd.Certificates))
		for _, c := range sd.Certificates {
			dst = append(dst, c...)
		}
	}
	if sd.CRLs != nil {
		dst = sdAppendTL(dst, sdTagContext1Cons, sdConcatLen(sd.CRLs))
		for _, c := range sd.CRLs {
			dst = append(dst, c...)
		}
	}
	siTotal := 0
	for i := range sd.SignerInfos {
		siTotal += sdTlvSize(e.signerInfoLen(sd, i))
	}
	dst = sdAppendTL(dst, sdTagSet, siTotal)
	for i := range sd.SignerInfos {
		dst = e.appendSignerInfo(dst, sd, i)
	}
	return dst
}

func (e *sdEncoding) appendSignerInfo(dst []byte, sd *SignedData, i int) []byte {
	si := &sd.SignerInfos[i]
	dst = sdAppendTL(dst, sdTagSequence, e.signerInfoLen(sd, i))
	dst = sdAppendInt(dst, int64(si.Version))
	if si.SID.SubjectKeyID != nil {
		dst = sdAppendTL(dst, sdTagContext0Prim, len(si.SID.SubjectKeyID))
		dst = append(dst, si.SID.SubjectKeyID...)
	} else {
		ias := &si.SID.IssuerAndSerial
		dst = sdAppendTL(dst, sdTagSequence, len(ias.Issuer)+sdBigIntSize(ias.Serial))
		dst = append(dst, ias.Issuer...)
		dst = sdAppendBigInt(dst, ias.Serial)
	}
	dst = sdAppendAlgID(dst, si.DigestAlgorithm)
	if len(si.RawSignedAttrs) > 0 {
		dst = append(dst, sdTagContext0Cons)
		dst = append(dst, si.RawSignedAttrs[1:]...)
	} else if e.signed != nil && e.signed[i] != nil {
		dst = sdAppendTL(dst, sdTagContext0Cons, len(e.signed[i]))
		dst = append(dst, e.signed[i]...)
	}
	dst = sdAppendAlgID(dst, si.SignatureAlgorithm)
	dst = sdAppendTL(dst, tagOctetString, len(si.Signature))
	dst = append(dst, si.Signature...)
	if e.unsigned != nil && e.unsigned[i] != nil {
		dst = sdAppendTL(dst, sdTagContext1Cons, len(e.unsigned[i]))
		dst = append(dst, e.unsigned[i]...)
	}
	return dst
}

func sdSortBytes(list [][]byte) {
	// Insertion sort: these lists have a handful of entries.
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && bytes.Compare(list[j-1], list[j]) > 0; j-- {
			list[j-1], list[j] = list[j], list[j-1]
		}
	}
}
