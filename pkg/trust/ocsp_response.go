package trust

// Parsing an OCSP response (its signature and signer are checked in
// ocsp_responder.go).
//
//	OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
//	ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
//	BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
//	                                 signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//	ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
//	                            producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
//	                            responseExtensions [1] EXPLICIT Extensions OPTIONAL }
//	ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
//	SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
//	                              nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL,
//	                              singleExtensions [1] EXPLICIT Extensions OPTIONAL }
//	CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
//	RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ocspResponse is a parsed (not yet verified) OCSP response.
type ocspResponse struct {
	status     int // responseStatus; 0 is successful
	tbs        []byte
	sigAlg     pkix.AlgorithmIdentifier
	signature  []byte
	certs      []*smx509.Certificate
	byName     []byte // responderID byName: the DER Name
	byKey      []byte // responderID byKey: SHA-1 of the responder's public key
	producedAt time.Time
	responses  []singleResponse
	nonce      []byte // the nonce extension's extnValue, nil when absent
}

type singleResponse struct {
	id                     certID
	status                 ocspStatus
	revokedAt              time.Time
	reason                 CRLReason
	thisUpdate, nextUpdate time.Time
}

var errMalformedOCSP = errors.New("malformed OCSP response")

func malformed(what string) error { return fmt.Errorf("%w: %s", errMalformedOCSP, what) }

// responseStatusText names OCSPResponseStatus values.
func responseStatusText(s int) string {
	switch s {
	case 0:
		return "successful"
	case 1:
		return "malformedRequest"
	case 2:
		return "internalError"
	case 3:
		return "tryLater"
	case 5:
		return "sigRequired"
	case 6:
		return "unauthorized"
	}
	return fmt.Sprintf("status %d", s)
}

// parseOCSPResponse parses DER. A response whose status is not successful
// parses without error and with no body.
func parseOCSPResponse(der []byte) (*ocspResponse, error) {
	in := cryptobyte.String(der)
	var resp cryptobyte.String
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, malformed("OCSPResponse")
	}
	r := &ocspResponse{}
	if !resp.ReadASN1Enum(&r.status) {
		return nil, malformed("responseStatus")
	}
	var rb cryptobyte.String
	var hasRB bool
	if !resp.ReadOptionalASN1(&rb, &hasRB, cbasn1.Tag(0).ContextSpecific().Constructed()) || !resp.Empty() {
		return nil, malformed("responseBytes")
	}
	if r.status != 0 {
		return r, nil
	}
	if !hasRB {
		return nil, malformed("successful response without responseBytes")
	}
	var rbSeq, basicDER cryptobyte.String
	var typ asn1.ObjectIdentifier
	if !rb.ReadASN1(&rbSeq, cbasn1.SEQUENCE) || !rb.Empty() ||
		!rbSeq.ReadASN1ObjectIdentifier(&typ) || !rbSeq.ReadASN1(&basicDER, cbasn1.OCTET_STRING) || !rbSeq.Empty() {
		return nil, malformed("ResponseBytes")
	}
	if !typ.Equal(oidOCSPBasic) {
		return nil, fmt.Errorf("unsupported OCSP response type %v", typ)
	}
	var basic cryptobyte.String
	if !basicDER.ReadASN1(&basic, cbasn1.SEQUENCE) || !basicDER.Empty() {
		return nil, malformed("BasicOCSPResponse")
	}
	var tbs, algDER cryptobyte.String
	if !basic.ReadASN1Element(&tbs, cbasn1.SEQUENCE) || !basic.ReadASN1Element(&algDER, cbasn1.SEQUENCE) {
		return nil, malformed("tbsResponseData")
	}
	r.tbs = tbs
	if rest, err := asn1.Unmarshal(algDER, &r.sigAlg); err != nil || len(rest) != 0 {
		return nil, malformed("signatureAlgorithm")
	}
	var sig asn1.BitString
	if !basic.ReadASN1BitString(&sig) || sig.BitLength%8 != 0 {
		return nil, malformed("signature")
	}
	r.signature = sig.Bytes
	var certsWrap cryptobyte.String
	var hasCerts bool
	if !basic.ReadOptionalASN1(&certsWrap, &hasCerts, cbasn1.Tag(0).ContextSpecific().Constructed()) || !basic.Empty() {
		return nil, malformed("certs")
	}
	if hasCerts {
		var certs cryptobyte.String
		if !certsWrap.ReadASN1(&certs, cbasn1.SEQUENCE) || !certsWrap.Empty() {
			return nil, malformed("certs")
		}
		for !certs.Empty() {
			var c cryptobyte.String
			if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
				return nil, malformed("certificate")
			}
			if len(r.certs) >= 8 {
				return nil, malformed("too many certificates")
			}
			cert, err := smx509.ParseCertificate(c)
			if err != nil {
				return nil, fmt.Errorf("OCSP responder certificate: %w", err)
			}
			r.certs = append(r.certs, cert)
		}
	}
	if err := r.parseTBS(tbs); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ocspResponse) parseTBS(der cryptobyte.String) error {
	var tbs cryptobyte.String
	if !der.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return malformed("ResponseData")
	}
	var ver cryptobyte.String
	var hasVer bool
	if !tbs.ReadOptionalASN1(&ver, &hasVer, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return malformed("version")
	}
	if hasVer {
		var v int
		if !ver.ReadASN1Integer(&v) || !ver.Empty() || v != 0 {
			return malformed("version")
		}
	}
	var rid cryptobyte.String
	var tag cbasn1.Tag
	if !tbs.ReadAnyASN1(&rid, &tag) {
		return malformed("responderID")
	}
	switch tag {
	case cbasn1.Tag(1).ContextSpecific().Constructed():
		var name cryptobyte.String
		if !rid.ReadASN1Element(&name, cbasn1.SEQUENCE) || !rid.Empty() {
			return malformed("responderID byName")
		}
		r.byName = name
	case cbasn1.Tag(2).ContextSpecific().Constructed():
		var kh cryptobyte.String
		if !rid.ReadASN1(&kh, cbasn1.OCTET_STRING) || !rid.Empty() {
			return malformed("responderID byKey")
		}
		r.byKey = kh
	default:
		return malformed("responderID")
	}
	if !tbs.ReadASN1GeneralizedTime(&r.producedAt) {
		return malformed("producedAt")
	}
	var responses cryptobyte.String
	if !tbs.ReadASN1(&responses, cbasn1.SEQUENCE) {
		return malformed("responses")
	}
	for !responses.Empty() {
		if len(r.responses) >= 64 {
			return malformed("too many responses")
		}
		sr, err := parseSingleResponse(&responses)
		if err != nil {
			return err
		}
		r.responses = append(r.responses, sr)
	}
	var extsWrap cryptobyte.String
	var hasExts bool
	if !tbs.ReadOptionalASN1(&extsWrap, &hasExts, cbasn1.Tag(1).ContextSpecific().Constructed()) || !tbs.Empty() {
		return malformed("responseExtensions")
	}
	if hasExts {
		err := readExtensions(extsWrap, func(id asn1.ObjectIdentifier, critical bool, value []byte) error {
			switch {
			case id.Equal(oidOCSPNonce):
				r.nonce = value
			case critical:
				return fmt.Errorf("unsupported critical OCSP response extension %v", id)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func parseCertID(s *cryptobyte.String) (certID, error) {
	var id certID
	var seq, alg cryptobyte.String
	var nh, kh cryptobyte.String
	id.serial = new(big.Int)
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&id.hashAlg) ||
		!seq.ReadASN1(&nh, cbasn1.OCTET_STRING) || !seq.ReadASN1(&kh, cbasn1.OCTET_STRING) || !seq.ReadASN1Integer(id.serial) || !seq.Empty() {
		return id, malformed("CertID")
	}
	id.nameHash, id.keyHash = nh, kh
	return id, nil
}

func parseSingleResponse(s *cryptobyte.String) (singleResponse, error) {
	var sr singleResponse
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return sr, malformed("SingleResponse")
	}
	var err error
	if sr.id, err = parseCertID(&seq); err != nil {
		return sr, err
	}
	var st cryptobyte.String
	var tag cbasn1.Tag
	if !seq.ReadAnyASN1(&st, &tag) {
		return sr, malformed("certStatus")
	}
	switch tag {
	case cbasn1.Tag(0).ContextSpecific():
		sr.status = ocspGood
	case cbasn1.Tag(1).ContextSpecific().Constructed():
		sr.status = ocspRevoked
		if !st.ReadASN1GeneralizedTime(&sr.revokedAt) {
			return sr, malformed("revocationTime")
		}
		var rw cryptobyte.String
		var hasReason bool
		if !st.ReadOptionalASN1(&rw, &hasReason, cbasn1.Tag(0).ContextSpecific().Constructed()) || !st.Empty() {
			return sr, malformed("revocationReason")
		}
		if hasReason {
			var reason int
			if !rw.ReadASN1Enum(&reason) || !rw.Empty() {
				return sr, malformed("revocationReason")
			}
			sr.reason = CRLReason(reason)
		}
	case cbasn1.Tag(2).ContextSpecific():
		sr.status = ocspUnknown
	default:
		return sr, malformed("certStatus")
	}
	if !seq.ReadASN1GeneralizedTime(&sr.thisUpdate) {
		return sr, malformed("thisUpdate")
	}
	var nu cryptobyte.String
	var hasNU bool
	if !seq.ReadOptionalASN1(&nu, &hasNU, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return sr, malformed("nextUpdate")
	}
	if hasNU && (!nu.ReadASN1GeneralizedTime(&sr.nextUpdate) || !nu.Empty()) {
		return sr, malformed("nextUpdate")
	}
	var extsWrap cryptobyte.String
	var hasExts bool
	if !seq.ReadOptionalASN1(&extsWrap, &hasExts, cbasn1.Tag(1).ContextSpecific().Constructed()) || !seq.Empty() {
		return sr, malformed("singleExtensions")
	}
	if hasExts {
		err := readExtensions(extsWrap, func(id asn1.ObjectIdentifier, critical bool, _ []byte) error {
			if critical {
				return fmt.Errorf("unsupported critical OCSP single response extension %v", id)
			}
			return nil
		})
		if err != nil {
			return sr, err
		}
	}
	return sr, nil
}

// readExtensions reads the SEQUENCE OF Extension inside an explicit tag.
func readExtensions(wrap cryptobyte.String, f func(id asn1.ObjectIdentifier, critical bool, value []byte) error) error {
	var exts cryptobyte.String
	if !wrap.ReadASN1(&exts, cbasn1.SEQUENCE) || !wrap.Empty() {
		return malformed("extensions")
	}
	for !exts.Empty() {
		var ext, val cryptobyte.String
		var id asn1.ObjectIdentifier
		critical := false
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&id) ||
			!ext.ReadOptionalASN1Boolean(&critical, cbasn1.BOOLEAN, false) ||
			!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return malformed("extension")
		}
		if err := f(id, critical, val); err != nil {
			return err
		}
	}
	return nil
}

// find returns the single response about c, matching the CertID with whatever
// hash the responder used.
func (r *ocspResponse) find(c, issuer *smx509.Certificate) (*singleResponse, error) {
	for i := range r.responses {
		sr := &r.responses[i]
		if sr.id.serial.Cmp(c.SerialNumber) != 0 {
			continue
		}
		want, err := makeCertID(sr.id.hashAlg, c.SerialNumber, issuer)
		if err != nil {
			continue
		}
		if bytes.Equal(want.nameHash, sr.id.nameHash) && bytes.Equal(want.keyHash, sr.id.keyHash) {
			return sr, nil
		}
	}
	return nil, errors.New("OCSP response has no answer for the certificate")
}
