package cms

import (
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignedAndEnvelopedData (PKCS#7 v1.5 §11, RFC 2315; GM/T 0010 1.2.156.10197.6.1.4.2.4):
//
//	SignedAndEnvelopedData ::= SEQUENCE {
//	  version Version,  -- 1
//	  recipientInfos RecipientInfos,
//	  digestAlgorithms DigestAlgorithmIdentifiers,
//	  encryptedContentInfo EncryptedContentInfo,
//	  certificates [0] IMPLICIT ExtendedCertificatesAndCertificates OPTIONAL,
//	  crls [1] IMPLICIT CertificateRevocationLists OPTIONAL,
//	  signerInfos SignerInfos }
//
// RFC 2315 has the signer also encrypt its encryptedDigest with the content-encryption
// key. Neither OpenSSL, gmsm nor GmSSL do that: they write the plain signature over
// the plaintext content, exactly as in a SignedData. So do we, and so we read.
// A SignedAndEnvelopedData therefore carries the same signer parts as a detached
// SignedData over the plaintext, and DetachedSignedData rebuilds that SignedData so a
// SignedData verifier can check it.

// SignedParts are the fields a SignedData and a SignedAndEnvelopedData share. Each
// element is kept as its complete DER encoding.
type SignedParts struct {
	DigestAlgorithms []AlgorithmIdentifier
	// Certificates and CRLs are nil when the field is absent.
	Certificates [][]byte
	CRLs         [][]byte
	SignerInfos  [][]byte
}

// SignedAndEnvelopedData is a parsed or to-be-written SignedAndEnvelopedData.
type SignedAndEnvelopedData struct {
	Version              int
	RecipientInfos       []RecipientInfo
	EncryptedContentInfo EncryptedContentInfo
	SignedParts
}

// ParseSignedAndEnvelopedData reads the DER of a SignedAndEnvelopedData SEQUENCE (as
// ContentInfo.Content holds it).
func ParseSignedAndEnvelopedData(der []byte) (*SignedAndEnvelopedData, error) {
	s := cryptobyte.String(der)
	var seq, set cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, malformed("SignedAndEnvelopedData")
	}
	sed := &SignedAndEnvelopedData{}
	if !seq.ReadASN1Integer(&sed.Version) {
		return nil, malformed("SignedAndEnvelopedData.version")
	}
	if !seq.ReadASN1(&set, cbasn1.SET) {
		return nil, malformed("SignedAndEnvelopedData.recipientInfos")
	}
	var err error
	if sed.RecipientInfos, err = readRecipientInfos(set); err != nil {
		return nil, err
	}
	if !envReadDigestAlgorithms(&seq, &sed.DigestAlgorithms) {
		return nil, malformed("SignedAndEnvelopedData.digestAlgorithms")
	}
	if !readEncryptedContentInfo(&seq, &sed.EncryptedContentInfo) {
		return nil, malformed("SignedAndEnvelopedData.encryptedContentInfo")
	}
	if !envReadCertsCRLsSigners(&seq, &sed.SignedParts) || !seq.Empty() {
		return nil, malformed("SignedAndEnvelopedData")
	}
	return sed, nil
}

func envReadDigestAlgorithms(s *cryptobyte.String, out *[]AlgorithmIdentifier) bool {
	var set cryptobyte.String
	if !s.ReadASN1(&set, cbasn1.SET) {
		return false
	}
	for !set.Empty() {
		var a AlgorithmIdentifier
		if !readAlgorithmIdentifier(&set, &a) {
			return false
		}
		*out = append(*out, a)
	}
	return true
}

// envReadCertsCRLsSigners reads certificates [0], crls [1] and the signerInfos SET.
func envReadCertsCRLsSigners(s *cryptobyte.String, p *SignedParts) bool {
	readElems := func(tag cbasn1.Tag, out *[][]byte) bool {
		if !s.PeekASN1Tag(tag) {
			return true
		}
		var set cryptobyte.String
		if !s.ReadASN1(&set, tag) {
			return false
		}
		*out = [][]byte{}
		for !set.Empty() {
			var e cryptobyte.String
			var t cbasn1.Tag
			if !set.ReadAnyASN1Element(&e, &t) {
				return false
			}
			*out = append(*out, e)
		}
		return true
	}
	if !readElems(envTagCtx0Cons, &p.Certificates) || !readElems(envTagCtx1Cons, &p.CRLs) {
		return false
	}
	var set cryptobyte.String
	if !s.ReadASN1(&set, cbasn1.SET) {
		return false
	}
	for !set.Empty() {
		var si cryptobyte.String
		if !set.ReadASN1Element(&si, cbasn1.SEQUENCE) {
			return false
		}
		p.SignerInfos = append(p.SignerInfos, si)
	}
	return true
}

// ParseSignedParts reads the shared parts of the DER of a SignedData SEQUENCE (as
// ContentInfo.Content holds it), with its eContentType and eContent (nil when
// detached).
func ParseSignedParts(signedData []byte) (*SignedParts, asn1.ObjectIdentifier, []byte, error) {
	s := cryptobyte.String(signedData)
	var seq, eci cryptobyte.String
	var version int
	var eContentType asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !seq.ReadASN1Integer(&version) {
		return nil, nil, nil, malformed("SignedData")
	}
	p := &SignedParts{}
	if !envReadDigestAlgorithms(&seq, &p.DigestAlgorithms) {
		return nil, nil, nil, malformed("SignedData.digestAlgorithms")
	}
	if !seq.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&eContentType) {
		return nil, nil, nil, malformed("SignedData.encapContentInfo")
	}
	var content []byte
	if !eci.Empty() {
		var exp cryptobyte.String
		if !eci.ReadASN1(&exp, envTagCtx0Cons) || !eci.Empty() {
			return nil, nil, nil, malformed("SignedData.encapContentInfo")
		}
		if exp.PeekASN1Tag(cbasn1.OCTET_STRING) || exp.PeekASN1Tag(cbasn1.OCTET_STRING.Constructed()) {
			c, ok := readOctetsOrChunks(&exp, cbasn1.OCTET_STRING)
			if !ok {
				return nil, nil, nil, malformed("SignedData.eContent")
			}
			content = c
		} else {
			// PKCS#7 allows any type here for content that is not data.
			var e cryptobyte.String
			var t cbasn1.Tag
			if !exp.ReadAnyASN1Element(&e, &t) {
				return nil, nil, nil, malformed("SignedData.eContent")
			}
			content = e
		}
		if !exp.Empty() {
			return nil, nil, nil, malformed("SignedData.eContent")
		}
	}
	if !envReadCertsCRLsSigners(&seq, p) || !seq.Empty() {
		return nil, nil, nil, malformed("SignedData")
	}
	return p, eContentType, content, nil
}

// addDigestAlgorithms appends the digestAlgorithms SET in the order given: a
// SignedAndEnvelopedData or detached SignedData rebuilt from parts keeps the order
// it was read in.
func (p *SignedParts) addDigestAlgorithms(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range p.DigestAlgorithms {
			a.marshalInto(b)
		}
	})
}

// addCertsCRLsSigners appends certificates [0] and crls [1] when present, and the
// signerInfos SET.
func (p *SignedParts) addCertsCRLsSigners(b *cryptobyte.Builder) {
	elems := func(tag cbasn1.Tag, list [][]byte) {
		b.AddASN1(tag, func(b *cryptobyte.Builder) {
			for _, e := range list {
				b.AddBytes(e)
			}
		})
	}
	if p.Certificates != nil {
		elems(envTagCtx0Cons, p.Certificates)
	}
	if p.CRLs != nil {
		elems(envTagCtx1Cons, p.CRLs)
	}
	elems(cbasn1.SET, p.SignerInfos)
}

func (p *SignedParts) sizeHint() int {
	n := 512
	for _, l := range [][][]byte{p.Certificates, p.CRLs, p.SignerInfos} {
		for _, e := range l {
			n += len(e)
		}
	}
	return n
}

// DetachedSignedData returns the DER ContentInfo of type contentType (OIDSignedData or
// OIDSM2SignedData) holding a SignedData with these parts and a detached content of
// type eContentType. Its version follows RFC 5652 §5.1 as far as the parts tell.
func (p *SignedParts) DetachedSignedData(contentType, eContentType asn1.ObjectIdentifier) ([]byte, error) {
	version := int64(1)
	if !eContentType.Equal(OIDData) && !eContentType.Equal(OIDSM2Data) {
		version = 3
	}
	for _, si := range p.SignerInfos {
		s := cryptobyte.String(si)
		var seq cryptobyte.String
		var v int64
		if s.ReadASN1(&seq, cbasn1.SEQUENCE) && seq.ReadASN1Integer(&v) && v == 3 {
			version = 3
		}
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, p.sizeHint()))
	addContentInfo(b, contentType, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(version)
			p.addDigestAlgorithms(b)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(eContentType) })
			p.addCertsCRLsSigners(b)
		})
	})
	return b.Bytes()
}

// MarshalContentInfo returns the DER ContentInfo of the given type
// (OIDSignedAndEnvelopedData or OIDSM2SignedAndEnvelopedData) holding sed.
func (sed *SignedAndEnvelopedData) MarshalContentInfo(contentType asn1.ObjectIdentifier) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, sed.sizeHint()))
	addContentInfo(b, contentType, sed.marshalInto)
	return b.Bytes()
}

func (sed *SignedAndEnvelopedData) sizeHint() int {
	return len(sed.EncryptedContentInfo.EncryptedContent) + 512*len(sed.RecipientInfos) + sed.SignedParts.sizeHint()
}

func (sed *SignedAndEnvelopedData) marshalInto(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(sed.Version))
		addRecipientInfos(b, sed.RecipientInfos)
		sed.addDigestAlgorithms(b)
		sed.EncryptedContentInfo.marshalInto(b)
		sed.addCertsCRLsSigners(b)
	})
}
