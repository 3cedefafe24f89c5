package tsa

import (
	"bytes"
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"signsvr.dev/signsvr/pkg/cms"
)

// ESS signing certificate attributes (RFC 2634 §5.4, RFC 5035 §3): a timestamp token
// names the TSA certificate in a signed attribute, so the certificate cannot be
// swapped for another one with the same key.
//
//	SigningCertificateV2 ::= SEQUENCE {
//	    certs        SEQUENCE OF ESSCertIDv2,
//	    policies     SEQUENCE OF PolicyInformation OPTIONAL }
//	ESSCertIDv2 ::= SEQUENCE {
//	    hashAlgorithm  AlgorithmIdentifier DEFAULT {algorithm id-sha256},
//	    certHash       OCTET STRING,
//	    issuerSerial   IssuerSerial OPTIONAL }
//	SigningCertificate ::= SEQUENCE {           -- v1: SHA-1, as OpenSSL 3.0 writes by default
//	    certs        SEQUENCE OF ESSCertID,
//	    policies     SEQUENCE OF PolicyInformation OPTIONAL }
//	ESSCertID ::= SEQUENCE { certHash OCTET STRING (SHA-1), issuerSerial IssuerSerial OPTIONAL }
//	IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }

// OIDAttrSigningCertificate is the v1 (SHA-1) ESS signingCertificate attribute.
var OIDAttrSigningCertificate = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}

// signingCertificateV2 is the signed attribute naming cert with a SHA-256 hash and
// its issuer and serial number.
func signingCertificateV2(cert *smx509.Certificate) (cms.Attribute, error) {
	h, _ := Digest(oidSHA256, cert.Raw)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SigningCertificateV2
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2
				// hashAlgorithm is SHA-256, the DEFAULT: DER leaves it out.
				b.AddASN1OctetString(h)
				addIssuerSerial(b, cert)
			})
		})
	})
	v, err := b.Bytes()
	if err != nil {
		return cms.Attribute{}, err
	}
	return cms.Attribute{Type: cms.OIDAttrSigningCertificateV2, Values: [][]byte{v}}, nil
}

func addIssuerSerial(b *cryptobyte.Builder, cert *smx509.Certificate) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
			b.AddASN1(cbasn1.Tag(4).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // directoryName
				b.AddBytes(cert.RawIssuer)
			})
		})
		b.AddASN1BigInt(cert.SerialNumber)
	})
}

var (
	errNoSigningCert       = errors.New("the token has no ESS signingCertificate(V2) attribute")
	errSigningCertMismatch = errors.New("the ESS signingCertificate attribute does not name the signer's certificate")
)

// checkSigningCertificate finds the ESS attribute in the signed attributes and checks
// that its first certificate identifier names cert (RFC 3161 §2.4.2 / RFC 5816).
func checkSigningCertificate(attrs []cms.Attribute, cert *smx509.Certificate) error {
	v2, found2, single2 := cms.FindAttribute(attrs, cms.OIDAttrSigningCertificateV2)
	v1, found1, single1 := cms.FindAttribute(attrs, OIDAttrSigningCertificate)
	switch {
	case found2:
		if !single2 {
			return errors.New("signingCertificateV2 attribute repeated or multi-valued")
		}
		return checkESSCertID(v2.Values[0], true, cert)
	case found1:
		if !single1 {
			return errors.New("signingCertificate attribute repeated or multi-valued")
		}
		return checkESSCertID(v1.Values[0], false, cert)
	}
	return errNoSigningCert
}

func checkESSCertID(der []byte, v2 bool, cert *smx509.Certificate) error {
	bad := malformed("ESS signing certificate attribute")
	s := cryptobyte.String(der)
	var sc, certs, id cryptobyte.String
	if !s.ReadASN1(&sc, cbasn1.SEQUENCE) || !s.Empty() || !sc.ReadASN1(&certs, cbasn1.SEQUENCE) ||
		!certs.ReadASN1(&id, cbasn1.SEQUENCE) {
		return bad
	}
	alg := oidSHA1
	if v2 {
		alg = oidSHA256
		if id.PeekASN1Tag(cbasn1.SEQUENCE) {
			if !readAlgOID(&id, &alg) {
				return bad
			}
		}
	}
	var h cryptobyte.String
	if !id.ReadASN1(&h, cbasn1.OCTET_STRING) {
		return bad
	}
	if digestSize(alg) == 0 {
		return fmt.Errorf("ESS certificate hash algorithm %s not supported", alg)
	}
	want, _ := Digest(alg, cert.Raw)
	if subtle.ConstantTimeCompare(h, want) != 1 {
		return errSigningCertMismatch
	}
	if id.Empty() {
		return nil
	}
	var is, names cryptobyte.String
	serial := new(big.Int)
	if !id.ReadASN1(&is, cbasn1.SEQUENCE) || !id.Empty() || !is.ReadASN1(&names, cbasn1.SEQUENCE) ||
		!is.ReadASN1Integer(serial) || !is.Empty() {
		return bad
	}
	if serial.Cmp(cert.SerialNumber) != 0 {
		return errSigningCertMismatch
	}
	// The issuer must be among the GeneralNames as a directoryName.
	for !names.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&gn, &tag) {
			return bad
		}
		if tag == cbasn1.Tag(4).Constructed().ContextSpecific() && bytes.Equal(gn, cert.RawIssuer) {
			return nil
		}
	}
	return errSigningCertMismatch
}
