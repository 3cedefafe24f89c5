package cms

import (
	"bytes"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RSAESOAEPParams are the parameters of id-RSAES-OAEP (RFC 8017 appendix A.2.1):
//
//	RSAES-OAEP-params ::= SEQUENCE {
//	  hashAlgorithm [0] HashAlgorithm DEFAULT sha1,
//	  maskGenAlgorithm [1] MaskGenAlgorithm DEFAULT mgf1SHA1,
//	  pSourceAlgorithm [2] PSourceAlgorithm DEFAULT pSpecifiedEmpty }
//
// Parse fills in the defaults, so Hash and MGFHash are always set.
type RSAESOAEPParams struct {
	Hash AlgorithmIdentifier
	// MGFHash is the hash MGF1 uses (the parameter of id-mgf1).
	MGFHash AlgorithmIdentifier
	// Label is the pSpecified label; empty by default.
	Label []byte
}

// ParseRSAESOAEPParams reads RSAES-OAEP-params. Absent or empty parameters mean all
// defaults (SHA-1).
func ParseRSAESOAEPParams(der []byte) (RSAESOAEPParams, error) {
	p := RSAESOAEPParams{Hash: AlgorithmIdentifier{Algorithm: OIDSHA1}, MGFHash: AlgorithmIdentifier{Algorithm: OIDSHA1}}
	if len(der) == 0 || bytes.Equal(der, NullParameters) {
		return p, nil
	}
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return p, malformed("RSAES-OAEP-params")
	}
	if seq.PeekASN1Tag(envTagCtx0Cons) {
		var e cryptobyte.String
		if !seq.ReadASN1(&e, envTagCtx0Cons) || !readAlgorithmIdentifier(&e, &p.Hash) || !e.Empty() {
			return p, malformed("RSAES-OAEP-params.hashAlgorithm")
		}
	}
	if seq.PeekASN1Tag(envTagCtx1Cons) {
		var e cryptobyte.String
		var mgf AlgorithmIdentifier
		if !seq.ReadASN1(&e, envTagCtx1Cons) || !readAlgorithmIdentifier(&e, &mgf) || !e.Empty() ||
			!mgf.Algorithm.Equal(OIDMGF1) {
			return p, malformed("RSAES-OAEP-params.maskGenAlgorithm")
		}
		h, err := ParseAlgorithmIdentifier(mgf.Parameters)
		if err != nil {
			return p, malformed("RSAES-OAEP-params.maskGenAlgorithm")
		}
		p.MGFHash = h
	}
	if seq.PeekASN1Tag(envTagCtx2Cons) {
		var e, label cryptobyte.String
		var ps AlgorithmIdentifier
		if !seq.ReadASN1(&e, envTagCtx2Cons) || !readAlgorithmIdentifier(&e, &ps) || !e.Empty() ||
			!ps.Algorithm.Equal(OIDPSpecified) {
			return p, malformed("RSAES-OAEP-params.pSourceAlgorithm")
		}
		ls := cryptobyte.String(ps.Parameters)
		if !ls.ReadASN1(&label, cbasn1.OCTET_STRING) || !ls.Empty() {
			return p, malformed("RSAES-OAEP-params.pSourceAlgorithm")
		}
		p.Label = label
	}
	if !seq.Empty() {
		return p, malformed("RSAES-OAEP-params: trailing fields")
	}
	return p, nil
}

// Marshal writes the parameters in full: hashAlgorithm and maskGenAlgorithm are always
// written (they are never the SHA-1 defaults here), pSourceAlgorithm only for a
// non-empty label (DER omits a DEFAULT value). This is the form OpenSSL writes for
// `-keyopt rsa_oaep_md:sha256` and reads back.
func (p RSAESOAEPParams) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(envTagCtx0Cons, p.Hash.marshalInto)
		b.AddASN1(envTagCtx1Cons, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDMGF1)
				p.MGFHash.marshalInto(b)
			})
		})
		if len(p.Label) > 0 {
			b.AddASN1(envTagCtx2Cons, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(OIDPSpecified)
					b.AddASN1OctetString(p.Label)
				})
			})
		}
	})
	return b.Bytes()
}

// MarshalECCCMSSharedInfo returns the DER ECC-CMS-SharedInfo (RFC 5753 §7.2) that
// the X9.63 KDF of an ECDH KeyAgreeRecipientInfo takes as its shared info:
//
//	ECC-CMS-SharedInfo ::= SEQUENCE {
//	  keyInfo AlgorithmIdentifier,           -- the key-wrap algorithm, as written
//	  entityUInfo [0] EXPLICIT OCTET STRING OPTIONAL,  -- the ukm
//	  suppPubInfo [2] EXPLICIT OCTET STRING }  -- key-wrap key length in bits, 4 octets
//
// ukm is written when non-nil.
func MarshalECCCMSSharedInfo(keyInfo AlgorithmIdentifier, ukm []byte, kekBits int) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		keyInfo.marshalInto(b)
		if ukm != nil {
			b.AddASN1(envTagCtx0Cons, func(b *cryptobyte.Builder) { b.AddASN1OctetString(ukm) })
		}
		b.AddASN1(envTagCtx2Cons, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString([]byte{byte(kekBits >> 24), byte(kekBits >> 16), byte(kekBits >> 8), byte(kekBits)})
		})
	})
	return b.Bytes()
}
