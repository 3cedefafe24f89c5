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

import "encoding/asn1"

// SignedData is a parsed or to-be-written SignedData. Byte slices of a parsed value
// alias the normalised input, and well-known OIDs are shared package values (see
// sdReadOID): treat a parsed SignedData as read-only, replacing fields rather than
// modifying their contents.
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
	// RawSignerInfos is the DER of the signerInfos SET as read (its whole element):
	// what an audit record digests to name the object (SignerInfosDER). Marshal
	// ignores it.
	RawSignerInfos []byte
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
