package cms

import (
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// AuthEnvelopedData (RFC 5083), with AES-GCM or SM4-GCM content encryption (RFC 5084):
//
//	AuthEnvelopedData ::= SEQUENCE {
//	  version CMSVersion,  -- always 0
//	  originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//	  recipientInfos RecipientInfos,
//	  authEncryptedContentInfo EncryptedContentInfo,
//	  authAttrs [1] IMPLICIT AuthAttributes OPTIONAL,
//	  mac MessageAuthenticationCode,  -- OCTET STRING: the GCM tag
//	  unauthAttrs [2] IMPLICIT UnauthAttributes OPTIONAL }
//
// The additional authenticated data of GCM is the DER of authAttrs with a SET OF tag
// (not the [1] tag), or nothing when authAttrs is absent.

// AuthEnvelopedData is a parsed or to-be-written AuthEnvelopedData.
type AuthEnvelopedData struct {
	Version                  int
	OriginatorInfo           []byte // complete [0] element, or nil
	RecipientInfos           []RecipientInfo
	AuthEncryptedContentInfo EncryptedContentInfo
	// AuthAttrs is nil when absent.
	AuthAttrs []Attribute
	MAC       []byte
	// UnauthAttrs is nil when absent.
	UnauthAttrs []Attribute

	// authAttrsRaw is the content of the [1] element as read, which the AAD covers
	// byte for byte.
	authAttrsRaw []byte
}

// ParseAuthEnvelopedData reads the DER of an AuthEnvelopedData SEQUENCE (as
// ContentInfo.Content holds it).
func ParseAuthEnvelopedData(der []byte) (*AuthEnvelopedData, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("AuthEnvelopedData")
	}
	ad := &AuthEnvelopedData{}
	if !seq.ReadASN1Integer(&ad.Version) {
		return nil, malformed("AuthEnvelopedData.version")
	}
	if seq.PeekASN1Tag(envTagCtx0Cons) {
		var oi cryptobyte.String
		if !seq.ReadASN1Element(&oi, envTagCtx0Cons) {
			return nil, malformed("AuthEnvelopedData.originatorInfo")
		}
		ad.OriginatorInfo = oi
	}
	var set cryptobyte.String
	if !seq.ReadASN1(&set, cbasn1.SET) {
		return nil, malformed("AuthEnvelopedData.recipientInfos")
	}
	var err error
	if ad.RecipientInfos, err = readRecipientInfos(set); err != nil {
		return nil, err
	}
	if !readEncryptedContentInfo(&seq, &ad.AuthEncryptedContentInfo) {
		return nil, malformed("AuthEnvelopedData.authEncryptedContentInfo")
	}
	if seq.PeekASN1Tag(envTagCtx1Cons) {
		var attrs cryptobyte.String
		var ok bool
		if !seq.ReadASN1(&attrs, envTagCtx1Cons) {
			return nil, malformed("AuthEnvelopedData.authAttrs")
		}
		ad.authAttrsRaw = attrs
		if ad.AuthAttrs, ok = readAttributes(attrs); !ok || len(ad.AuthAttrs) == 0 {
			return nil, malformed("AuthEnvelopedData.authAttrs")
		}
	}
	var mac cryptobyte.String
	if !seq.ReadASN1(&mac, cbasn1.OCTET_STRING) {
		return nil, malformed("AuthEnvelopedData.mac")
	}
	ad.MAC = mac
	if seq.PeekASN1Tag(envTagCtx2Cons) {
		var attrs cryptobyte.String
		var ok bool
		if !seq.ReadASN1(&attrs, envTagCtx2Cons) {
			return nil, malformed("AuthEnvelopedData.unauthAttrs")
		}
		if ad.UnauthAttrs, ok = readAttributes(attrs); !ok || len(ad.UnauthAttrs) == 0 {
			return nil, malformed("AuthEnvelopedData.unauthAttrs")
		}
	}
	if !seq.Empty() {
		return nil, malformed("AuthEnvelopedData: trailing fields")
	}
	return ad, nil
}

// AAD returns the additional authenticated data for the content cipher: the DER SET OF
// the authenticated attributes, or nil when there are none. For a parsed message it
// is built from the bytes as received.
func (ad *AuthEnvelopedData) AAD() ([]byte, error) {
	raw := ad.authAttrsRaw
	if raw == nil {
		if ad.AuthAttrs == nil {
			return nil, nil
		}
		var err error
		if raw, err = MarshalAttributeSet(ad.AuthAttrs); err != nil {
			return nil, err
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(raw) })
	return b.Bytes()
}

// MarshalContentInfo returns the DER ContentInfo (id-ct-authEnvelopedData) holding ad.
func (ad *AuthEnvelopedData) MarshalContentInfo() ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, ad.sizeHint()))
	addContentInfo(b, OIDAuthEnvelopedData, ad.marshalInto)
	return b.Bytes()
}

func (ad *AuthEnvelopedData) sizeHint() int {
	return len(ad.AuthEncryptedContentInfo.EncryptedContent) + 512 + 512*len(ad.RecipientInfos)
}

func (ad *AuthEnvelopedData) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(ad.Version))
		b.AddBytes(ad.OriginatorInfo)
		addRecipientInfos(b, ad.RecipientInfos)
		ad.AuthEncryptedContentInfo.marshalInto(b)
		if ad.authAttrsRaw != nil {
			addTagged(b, envTagCtx1Cons, ad.authAttrsRaw)
		} else if ad.AuthAttrs != nil {
			addAttributes(b, envTagCtx1Cons, ad.AuthAttrs)
		}
		b.AddASN1OctetString(ad.MAC)
		if ad.UnauthAttrs != nil {
			addAttributes(b, envTagCtx2Cons, ad.UnauthAttrs)
		}
	})
}

// GCMParameters (RFC 5084): the nonce and the tag (ICV) length.
//
//	GCMParameters ::= SEQUENCE {
//	  aes-nonce OCTET STRING,  -- 12 octets recommended
//	  aes-ICVlen AES-GCM-ICVlen DEFAULT 12 }  -- 12..16
type GCMParameters struct {
	Nonce  []byte
	ICVLen int
}

// ParseGCMParameters reads GCMParameters from an AlgorithmIdentifier's parameters.
func ParseGCMParameters(der []byte) (GCMParameters, error) {
	p := GCMParameters{ICVLen: 12}
	s := cryptobyte.String(der)
	var seq, nonce cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !seq.ReadASN1(&nonce, cbasn1.OCTET_STRING) {
		return p, malformed("GCMParameters")
	}
	p.Nonce = nonce
	if !seq.Empty() {
		if !seq.ReadASN1Integer(&p.ICVLen) || !seq.Empty() {
			return p, malformed("GCMParameters.aes-ICVlen")
		}
	}
	if len(p.Nonce) == 0 || p.ICVLen < 12 || p.ICVLen > 16 {
		return p, malformed("GCMParameters out of range")
	}
	return p, nil
}

// Marshal returns the DER GCMParameters (the ICV length is omitted when it is the
// default 12, as DER requires).
func (p GCMParameters) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(p.Nonce)
		if p.ICVLen != 12 {
			b.AddASN1Int64(int64(p.ICVLen))
		}
	})
	return b.Bytes()
}

// ParseIVParameters reads the parameters of a CBC content-encryption algorithm (AES,
// SM4, 3DES): an OCTET STRING holding the IV.
func ParseIVParameters(der []byte) ([]byte, error) {
	s := cryptobyte.String(der)
	var iv cryptobyte.String
	if !s.ReadASN1(&iv, cbasn1.OCTET_STRING) || !s.Empty() {
		return nil, malformed("CBC parameters")
	}
	return iv, nil
}

// ContentTypeIsEnveloped reports whether oid names an EnvelopedData in either dialect.
func ContentTypeIsEnveloped(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(OIDEnvelopedData) || oid.Equal(OIDSM2EnvelopedData)
}

// ContentTypeIsSignedAndEnveloped reports whether oid names a SignedAndEnvelopedData
// in either dialect.
func ContentTypeIsSignedAndEnveloped(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(OIDSignedAndEnvelopedData) || oid.Equal(OIDSM2SignedAndEnvelopedData)
}
