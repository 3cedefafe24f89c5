package cms

// Allocation-lean readers for the SignedData verification path.
//
// Verify runs once per request, and cryptobyte's ReadASN1ObjectIdentifier allocates
// a new []int for every OID: about ten per SignedData (content types, algorithms,
// attribute types). The OIDs that occur in practice are few, so they are interned:
// an OID whose encoding is in the table below is returned as the shared,
// capacity-limited package value instead of a new slice. Parsed structures already
// alias their input and must be treated as read-only; interned OIDs are no different.

import (
	"bytes"
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

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
		var b cryptobyte.Builder
		b.AddASN1ObjectIdentifier(o)
		enc := b.BytesOrPanic()
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
