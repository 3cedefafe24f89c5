package trust

// Building an OCSP request: the CertID that names the certificate, and the
// unsigned request around it with a nonce.
//
//	OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
//	TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
//	                           requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
//	Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//	CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
//	                           issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// certID names a certificate to a responder.
type certID struct {
	hashAlg  asn1.ObjectIdentifier
	nameHash []byte
	keyHash  []byte
	serial   *big.Int
}

func (id certID) key() string {
	return string(id.nameHash) + string(id.keyHash) + serialKey(id.serial)
}

func hashFor(oid asn1.ObjectIdentifier) func() hash.Hash {
	switch {
	case oid.Equal(oidSHA1):
		return sha1.New
	case oid.Equal(oidSHA256):
		return sha256.New
	case oid.Equal(oidSHA384):
		return sha512.New384
	case oid.Equal(oidSHA512):
		return sha512.New
	case oid.Equal(oidSM3):
		return sm3.New
	}
	return nil
}

// subjectPublicKeyBits returns the contents of the subjectPublicKey BIT STRING.
func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	s := cryptobyte.String(spki)
	var inner, alg cryptobyte.String
	var bits asn1.BitString
	if !s.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1(&alg, cbasn1.SEQUENCE) || !inner.ReadASN1BitString(&bits) {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	return bits.Bytes, nil
}

func makeCertID(hashAlg asn1.ObjectIdentifier, serial *big.Int, issuer *smx509.Certificate) (certID, error) {
	h := hashFor(hashAlg)
	if h == nil {
		return certID{}, fmt.Errorf("unsupported CertID hash %v", hashAlg)
	}
	key, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return certID{}, err
	}
	nh, kh := h(), h()
	nh.Write(issuer.RawSubject)
	kh.Write(key)
	return certID{hashAlg: hashAlg, nameHash: nh.Sum(nil), keyHash: kh.Sum(nil), serial: serial}, nil
}

// newCertID makes the SHA-1 CertID (as RFC 5019 asks, and every responder reads).
func newCertID(c, issuer *smx509.Certificate) (certID, error) {
	if c.SerialNumber == nil {
		return certID{}, errors.New("certificate has no serial number")
	}
	return makeCertID(oidSHA1, c.SerialNumber, issuer)
}

func (id certID) marshal(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(id.hashAlg)
			b.AddASN1NULL()
		})
		b.AddASN1OctetString(id.nameHash)
		b.AddASN1OctetString(id.keyHash)
		b.AddASN1BigInt(id.serial)
	})
}

// nonceExtValue is the extnValue of a nonce extension: the nonce as an OCTET
// STRING (RFC 8954), as OpenSSL writes and echoes it.
func nonceExtValue(nonce []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1OctetString(nonce)
	return b.BytesOrPanic()
}

// marshalOCSPRequest writes an unsigned request for id with a nonce extension.
func marshalOCSPRequest(id certID, nonce []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Request
					id.marshal(b)
				})
			})
			if nonce != nil {
				b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extensions
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extension
							b.AddASN1ObjectIdentifier(oidOCSPNonce)
							b.AddASN1OctetString(nonceExtValue(nonce))
						})
					})
				})
			}
		})
	})
	return b.Bytes()
}
