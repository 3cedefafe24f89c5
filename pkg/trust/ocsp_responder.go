package trust

// Checking who signed an OCSP response: the certificate's issuer, a delegated
// responder the issuer authorized, or a responder trusted locally.

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// checkSignedBy verifies the response signature with signer's key, for every
// signature algorithm smx509 knows. RevocationList/CertificateList carry the
// same TBS + AlgorithmIdentifier + BIT STRING shape, and CheckCRLSignature is
// smx509's exported path from an AlgorithmIdentifier (PSS parameters included)
// to a signature check.
func (r *ocspResponse) checkSignedBy(signer *smx509.Certificate) error {
	//lint:ignore SA1019 the deprecated CRL types are the shape smx509's AlgorithmIdentifier-driven check takes.
	tbs := pkix.TBSCertificateList{Raw: r.tbs}
	//lint:ignore SA1019 the deprecated helper is the exported AlgorithmIdentifier-driven check.
	return signer.CheckCRLSignature(&pkix.CertificateList{
		TBSCertList:        tbs,
		SignatureAlgorithm: r.sigAlg,
		SignatureValue:     asn1.BitString{Bytes: r.signature, BitLength: 8 * len(r.signature)},
	})
}

// responderIs reports whether c matches the response's ResponderID.
func (r *ocspResponse) responderIs(c *smx509.Certificate) bool {
	if r.byName != nil {
		return bytes.Equal(r.byName, c.RawSubject)
	}
	key, err := subjectPublicKeyBits(c.RawSubjectPublicKeyInfo)
	if err != nil {
		return false
	}
	h := sha1.Sum(key)
	return bytes.Equal(r.byKey, h[:])
}

// verify checks who signed the response: the issuer itself, a delegated responder
// certificate from the response (issued by the issuer, with id-kp-OCSPSigning,
// valid now), or a locally trusted responder. Delegated responders are not
// themselves checked for revocation (RFC 6960 4.2.2.2.1 leaves it to policy).
func (r *ocspResponse) verify(issuer *smx509.Certificate, trusted []*smx509.Certificate, now time.Time, skew time.Duration) error {
	if r.responderIs(issuer) {
		if err := r.checkSignedBy(issuer); err == nil {
			return nil
		}
	}
	var lastErr error
	for _, c := range r.certs {
		if !r.responderIs(c) {
			continue
		}
		if err := delegatedResponderOK(c, issuer, now, skew); err != nil {
			lastErr = err
			continue
		}
		if err := r.checkSignedBy(c); err != nil {
			lastErr = fmt.Errorf("OCSP response signature: %w", err)
			continue
		}
		return nil
	}
	for _, c := range trusted {
		if r.responderIs(c) && r.checkSignedBy(c) == nil {
			return nil
		}
	}
	if lastErr != nil {
		return lastErr
	}
	return errors.New("OCSP response not signed by the issuer or an authorized responder")
}

func delegatedResponderOK(c, issuer *smx509.Certificate, now time.Time, skew time.Duration) error {
	hasEKU := false
	for _, u := range c.ExtKeyUsage {
		if u == oidOCSPSigEKU {
			hasEKU = true
		}
	}
	if !hasEKU {
		return errors.New("OCSP responder certificate lacks id-kp-OCSPSigning")
	}
	if !bytes.Equal(c.RawIssuer, issuer.RawSubject) {
		return errors.New("OCSP responder certificate not issued by the certificate's issuer")
	}
	if err := c.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("OCSP responder certificate: %w", err)
	}
	if now.Add(skew).Before(c.NotBefore) || now.Add(-skew).After(c.NotAfter) {
		return errors.New("OCSP responder certificate outside its validity period")
	}
	return nil
}
