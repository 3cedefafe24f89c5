package cms

// Reading SignedData: the entry points, then the allocation-lean readers they use.

import (
	"bytes"
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

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
	if !seq.ReadASN1Element(&infos, cbasn1.SET) || !seq.Empty() {
		return nil, malformed("SignedData.signerInfos")
	}
	sd.RawSignerInfos = infos
	if !infos.ReadASN1(&infos, cbasn1.SET) {
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

// Allocation-lean readers for the SignedData verification path.
//
// Verify runs once per request, and cryptobyte's ReadASN1ObjectIdentifier allocates
// a new []int for every OID: about ten per SignedData (content types, algorithms,
// attribute types). The OIDs that occur in practice are few, so they are interned:
// an OID whose encoding is in the table below is returned as the shared,
// capacity-limited package value instead of a new slice. Parsed structures already
// alias their input and must be treated as read-only; interned OIDs are no different.

type sdInterned struct {
	der []byte // content octets of the OID
	oid asn1.ObjectIdentifier
}

// sdInternTable is built once from the package OIDs and never modified.
var sdInternTable = sdBuildInternTable(
	OIDData, OIDSignedData, OIDSM2Data, OIDSM2SignedData, OIDTSTInfo,
	OIDAttrContentType, OIDAttrMessageDigest, OIDAttrSigningTime, OIDAttrSignatureTimeStamp,
	OIDAttrSigningCertificateV2, OIDAttrCMSAlgorithmProtection,
	asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 15}, // smimeCapabilities, written by OpenSSL
	OIDSHA1, OIDSHA256, OIDSHA384, OIDSHA512, OIDSM3,
	OIDRSAEncryption, OIDRSASSAPSS, OIDSHA256WithRSA, OIDSHA384WithRSA, OIDSHA512WithRSA,
	OIDECPublicKey, OIDECDSAWithSHA256, OIDECDSAWithSHA384, OIDECDSAWithSHA512,
	OIDSM2, OIDSM2Sign, OIDSM2WithSM3,
)

func sdBuildInternTable(oids ...asn1.ObjectIdentifier) []sdInterned {
	t := make([]sdInterned, len(oids))
	for i, o := range oids {
		enc := sdAppendOID(nil, o)
		t[i] = sdInterned{der: enc[2:], oid: o[:len(o):len(o)]}
	}
	return t
}

// sdReadOID reads an OBJECT IDENTIFIER, returning an interned value when it is a
// known one.
func sdReadOID(s *cryptobyte.String, out *asn1.ObjectIdentifier) bool {
	var elem cryptobyte.String
	if !s.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) || !s.ReadASN1Element(&elem, cbasn1.OBJECT_IDENTIFIER) {
		return false
	}
	if len(elem) > 2 && elem[1] < 0x80 {
		body := elem[2:]
		for i := range sdInternTable {
			if bytes.Equal(sdInternTable[i].der, body) {
				*out = sdInternTable[i].oid
				return true
			}
		}
	}
	return elem.ReadASN1ObjectIdentifier(out) && elem.Empty()
}

// sdReadAttributes reads the content of a SET OF Attribute like readAttributes, with
// two allocations in all: the attributes, and one backing array for their values.
func sdReadAttributes(s cryptobyte.String) ([]Attribute, bool) {
	// First pass: count attributes and values, checking the structure.
	nAttrs, nValues := 0, 0
	for scan := s; !scan.Empty(); {
		var seq, set cryptobyte.String
		if !scan.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
			!seq.ReadASN1(&set, cbasn1.SET) || !seq.Empty() || set.Empty() {
			return nil, false
		}
		for !set.Empty() {
			var tag cbasn1.Tag
			var v cryptobyte.String
			if !set.ReadAnyASN1Element(&v, &tag) {
				return nil, false
			}
			nValues++
		}
		nAttrs++
	}
	attrs := make([]Attribute, nAttrs)
	values := make([][]byte, nValues)
	for i := range attrs {
		var seq, set cryptobyte.String
		s.ReadASN1(&seq, cbasn1.SEQUENCE)
		if !sdReadOID(&seq, &attrs[i].Type) {
			return nil, false
		}
		seq.ReadASN1(&set, cbasn1.SET)
		n := 0
		for !set.Empty() {
			var tag cbasn1.Tag
			var v cryptobyte.String
			set.ReadAnyASN1Element(&v, &tag)
			values[n] = v
			n++
		}
		attrs[i].Values = values[:n:n]
		values = values[n:]
	}
	return attrs, true
}

// sdParseContentInfo reads the outer ContentInfo of a SignedData: normalised once,
// its content type interned.
func sdParseContentInfo(ber []byte) (asn1.ObjectIdentifier, []byte, error) {
	der, err := normalize(ber)
	if err != nil {
		return nil, nil, err
	}
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !sdReadOID(&seq, &ct) {
		return nil, nil, malformed("ContentInfo")
	}
	if seq.Empty() {
		return ct, nil, nil
	}
	var explicit, inner cryptobyte.String
	var tag cbasn1.Tag
	if !seq.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !seq.Empty() ||
		!explicit.ReadAnyASN1Element(&inner, &tag) || !explicit.Empty() {
		return nil, nil, malformed("ContentInfo.content")
	}
	return ct, inner, nil
}
