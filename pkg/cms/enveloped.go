package cms

import (
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// EnvelopedData (RFC 5652 §6.1; PKCS#7 type 3; GM/T 0010 1.2.156.10197.6.1.4.2.3):
//
//	EnvelopedData ::= SEQUENCE {
//	  version CMSVersion,
//	  originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//	  recipientInfos SET SIZE (1..MAX) OF RecipientInfo,
//	  encryptedContentInfo EncryptedContentInfo,
//	  unprotectedAttrs [1] IMPLICIT SET SIZE (1..MAX) OF Attribute OPTIONAL }
//
//	EncryptedContentInfo ::= SEQUENCE {
//	  contentType ContentType,
//	  contentEncryptionAlgorithm AlgorithmIdentifier,
//	  encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL,
//	  sharedInfo1 [1] IMPLICIT OCTET STRING OPTIONAL,   -- GM/T 0010 only
//	  sharedInfo2 [2] IMPLICIT OCTET STRING OPTIONAL }  -- GM/T 0010 only
//
// encryptedContent may arrive as a constructed [0] of OCTET STRING chunks (OpenSSL's
// streamed output); it is joined on parse and always written primitive.

// EncryptedContentInfo is the encrypted content and how it was encrypted.
type EncryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm AlgorithmIdentifier
	// EncryptedContent is nil when absent (detached content).
	EncryptedContent []byte
	// SharedInfo1 and SharedInfo2 are the GM/T 0010 extension fields, nil when absent.
	SharedInfo1, SharedInfo2 []byte
}

// EnvelopedData is a parsed or to-be-written EnvelopedData.
type EnvelopedData struct {
	Version int
	// OriginatorInfo is the complete [0] element as read, or nil. It is written back
	// unchanged and otherwise ignored.
	OriginatorInfo       []byte
	RecipientInfos       []RecipientInfo
	EncryptedContentInfo EncryptedContentInfo
	// UnprotectedAttrs is nil when absent.
	UnprotectedAttrs []Attribute
}

var (
	envTagCtx0PrimOctets = cbasn1.Tag(0).ContextSpecific()
	envTagCtx1Prim       = cbasn1.Tag(1).ContextSpecific()
	envTagCtx2Prim       = cbasn1.Tag(2).ContextSpecific()
)

// ParseEnvelopedData reads the DER of an EnvelopedData SEQUENCE, as ContentInfo.Content
// holds it after ParseContentInfo (which turns BER input into DER).
func ParseEnvelopedData(der []byte) (*EnvelopedData, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("EnvelopedData")
	}
	ed := &EnvelopedData{}
	if !seq.ReadASN1Integer(&ed.Version) {
		return nil, malformed("EnvelopedData.version")
	}
	if seq.PeekASN1Tag(envTagCtx0Cons) {
		var oi cryptobyte.String
		if !seq.ReadASN1Element(&oi, envTagCtx0Cons) {
			return nil, malformed("EnvelopedData.originatorInfo")
		}
		ed.OriginatorInfo = oi
	}
	var set cryptobyte.String
	if !seq.ReadASN1(&set, cbasn1.SET) {
		return nil, malformed("EnvelopedData.recipientInfos")
	}
	var err error
	if ed.RecipientInfos, err = readRecipientInfos(set); err != nil {
		return nil, err
	}
	if !readEncryptedContentInfo(&seq, &ed.EncryptedContentInfo) {
		return nil, malformed("EnvelopedData.encryptedContentInfo")
	}
	if seq.PeekASN1Tag(envTagCtx1Cons) {
		var attrs cryptobyte.String
		var ok bool
		if !seq.ReadASN1(&attrs, envTagCtx1Cons) {
			return nil, malformed("EnvelopedData.unprotectedAttrs")
		}
		if ed.UnprotectedAttrs, ok = readAttributes(attrs); !ok || len(ed.UnprotectedAttrs) == 0 {
			return nil, malformed("EnvelopedData.unprotectedAttrs")
		}
	}
	if !seq.Empty() {
		return nil, malformed("EnvelopedData: trailing fields")
	}
	return ed, nil
}

func readEncryptedContentInfo(s *cryptobyte.String, eci *EncryptedContentInfo) bool {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&eci.ContentType) ||
		!readAlgorithmIdentifier(&seq, &eci.ContentEncryptionAlgorithm) {
		return false
	}
	if seq.PeekASN1Tag(envTagCtx0PrimOctets) || seq.PeekASN1Tag(envTagCtx0Cons) {
		c, ok := readOctetsOrChunks(&seq, envTagCtx0PrimOctets)
		if !ok {
			return false
		}
		eci.EncryptedContent = c
	}
	for _, f := range []struct {
		tag cbasn1.Tag
		out *[]byte
	}{{envTagCtx1Prim, &eci.SharedInfo1}, {envTagCtx2Prim, &eci.SharedInfo2}} {
		if seq.PeekASN1Tag(f.tag) || seq.PeekASN1Tag(f.tag.Constructed()) {
			v, ok := readOctetsOrChunks(&seq, f.tag)
			if !ok {
				return false
			}
			*f.out = v
		}
	}
	return seq.Empty()
}

func (eci *EncryptedContentInfo) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(eci.ContentType)
		eci.ContentEncryptionAlgorithm.marshalInto(b)
		if eci.EncryptedContent != nil {
			addTagged(b, envTagCtx0PrimOctets, eci.EncryptedContent)
		}
		if eci.SharedInfo1 != nil {
			addTagged(b, envTagCtx1Prim, eci.SharedInfo1)
		}
		if eci.SharedInfo2 != nil {
			addTagged(b, envTagCtx2Prim, eci.SharedInfo2)
		}
	})
}

// StandardVersion returns the version RFC 5652 §6.1 prescribes for ed as it stands.
// (GM/T 0010 peers write 1 instead; the writer chooses.)
func (ed *EnvelopedData) StandardVersion() int {
	allV0, pwriOrOri := recipientInfosVersionInputs(ed.RecipientInfos)
	otherCerts, v2AttrCerts := originatorInfoVersionInputs(ed.OriginatorInfo)
	switch {
	case ed.OriginatorInfo != nil && otherCerts:
		return 4
	case ed.OriginatorInfo != nil && v2AttrCerts, pwriOrOri:
		return 3
	case ed.OriginatorInfo == nil && ed.UnprotectedAttrs == nil && allV0:
		return 0
	}
	return 2
}

// originatorInfoVersionInputs looks into an OriginatorInfo for the certificate and CRL
// choices that raise the EnvelopedData version:
//
//	OriginatorInfo ::= SEQUENCE {
//	  certs [0] IMPLICIT CertificateSet OPTIONAL,   -- other [3] raises to 4, v2AttrCert [2] to 3
//	  crls [1] IMPLICIT RevocationInfoChoices OPTIONAL }  -- other [1] raises to 4
func originatorInfoVersionInputs(oi []byte) (other, v2Attr bool) {
	s := cryptobyte.String(oi)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, envTagCtx0Cons) {
		return false, false
	}
	if seq.PeekASN1Tag(envTagCtx0Cons) {
		var certs cryptobyte.String
		seq.ReadASN1(&certs, envTagCtx0Cons)
		for !certs.Empty() {
			var e cryptobyte.String
			var tag cbasn1.Tag
			if !certs.ReadAnyASN1Element(&e, &tag) {
				break
			}
			switch tag {
			case cbasn1.Tag(3).ContextSpecific().Constructed():
				other = true
			case cbasn1.Tag(2).ContextSpecific().Constructed():
				v2Attr = true
			}
		}
	}
	if seq.PeekASN1Tag(envTagCtx1Cons) {
		var crls cryptobyte.String
		seq.ReadASN1(&crls, envTagCtx1Cons)
		for !crls.Empty() {
			var e cryptobyte.String
			var tag cbasn1.Tag
			if !crls.ReadAnyASN1Element(&e, &tag) {
				break
			}
			if tag == envTagCtx1Cons {
				other = true
			}
		}
	}
	return other, v2Attr
}

func (ed *EnvelopedData) sizeHint() int {
	return len(ed.EncryptedContentInfo.EncryptedContent) + 512 + 512*len(ed.RecipientInfos)
}

func (ed *EnvelopedData) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(ed.Version))
		b.AddBytes(ed.OriginatorInfo)
		addRecipientInfos(b, ed.RecipientInfos)
		ed.EncryptedContentInfo.marshalInto(b)
		if ed.UnprotectedAttrs != nil {
			addAttributes(b, envTagCtx1Cons, ed.UnprotectedAttrs)
		}
	})
}

// MarshalContentInfo returns the DER ContentInfo of the given content type (OIDEnvelopedData
// or OIDSM2EnvelopedData) holding ed. Version is written as set.
func (ed *EnvelopedData) MarshalContentInfo(contentType asn1.ObjectIdentifier) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, ed.sizeHint()))
	addContentInfo(b, contentType, ed.marshalInto)
	return b.Bytes()
}
