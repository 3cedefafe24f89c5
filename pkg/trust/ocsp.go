package trust

// OCSP (RFC 6960) is spoken here directly with cryptobyte rather than through
// golang.org/x/crypto/ocsp, because that package cannot do what is needed:
// CreateRequest writes no request extensions (so no nonce), it takes
// crypto/x509 certificates (which cannot hold an SM2 public key), and its
// signature check does not know SM2-with-SM3. Signatures here are checked with
// smx509, which knows RSA (PKCS#1 v1.5 and PSS), ECDSA and SM2.
//
//	OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
//	TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
//	                           requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
//	Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//	CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
//	                           issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
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
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidOCSPBasic  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidOCSPNonce  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidSHA1       = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSM3        = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401}
	oidOCSPSigEKU = smx509.ExtKeyUsageOCSPSigning
)

type ocspStatus uint8

const (
	ocspGood ocspStatus = iota
	ocspRevoked
	ocspUnknown
)

// ocspAnswer is a verified answer about one certificate.
type ocspAnswer struct {
	status                 ocspStatus
	revokedAt              time.Time
	reason                 CRLReason
	thisUpdate, nextUpdate time.Time
	expires                time.Time
}

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

// checkSignedBy verifies the response signature with signer's key, for every
// signature algorithm smx509 knows. RevocationList/CertificateList carry the
// same TBS + AlgorithmIdentifier + BIT STRING shape, and CheckCRLSignature is
// smx509's exported path from an AlgorithmIdentifier (PSS parameters included)
// to a signature check.
func (r *ocspResponse) checkSignedBy(signer *smx509.Certificate) error {
	//lint:ignore SA1019 the deprecated helper is the exported AlgorithmIdentifier-driven check.
	return signer.CheckCRLSignature(&pkix.CertificateList{
		TBSCertList:        pkix.TBSCertificateList{Raw: r.tbs},
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

// fetchOCSP asks url about c and returns the verified answer.
func (r *revocationChecker) fetchOCSP(ctx context.Context, url string, c, issuer *smx509.Certificate, id certID) (*ocspAnswer, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	req, err := marshalOCSPRequest(id, nonce)
	if err != nil {
		return nil, err
	}
	body, err := r.fetch(ctx, url, req, "application/ocsp-request", r.rc.MaxOCSPSize)
	if err != nil {
		return nil, err
	}
	return r.checkOCSPResponse(body, c, issuer, nonce)
}

func (r *revocationChecker) checkOCSPResponse(body []byte, c, issuer *smx509.Certificate, nonce []byte) (*ocspAnswer, error) {
	resp, err := parseOCSPResponse(body)
	if err != nil {
		return nil, err
	}
	if resp.status != 0 {
		return nil, fmt.Errorf("responder answered %s", responseStatusText(resp.status))
	}
	now, skew := r.cfg.Now(), r.rc.ClockSkew
	if err := resp.verify(issuer, r.rc.OCSPResponderCerts, now, skew); err != nil {
		return nil, err
	}
	switch {
	case resp.nonce != nil && !bytes.Equal(resp.nonce, nonceExtValue(nonce)):
		return nil, errors.New("OCSP response nonce does not match the request (replayed response?)")
	case resp.nonce == nil && r.rc.RequireOCSPNonce:
		return nil, errors.New("OCSP response has no nonce")
	}
	sr, err := resp.find(c, issuer)
	if err != nil {
		return nil, err
	}
	if sr.thisUpdate.After(now.Add(skew)) {
		return nil, errors.New("OCSP response thisUpdate is in the future")
	}
	a := &ocspAnswer{status: sr.status, revokedAt: sr.revokedAt, reason: sr.reason, thisUpdate: sr.thisUpdate, nextUpdate: sr.nextUpdate}
	if !sr.nextUpdate.IsZero() {
		if now.After(sr.nextUpdate.Add(skew)) {
			return nil, errors.New("OCSP response is past its nextUpdate")
		}
		a.expires = sr.nextUpdate
	} else {
		// No nextUpdate: newer information is always available; accept only a
		// freshly produced answer, and reuse it briefly.
		if now.Sub(sr.thisUpdate) > skew {
			return nil, errors.New("OCSP response without nextUpdate is not fresh")
		}
		a.expires = now.Add(time.Minute)
	}
	return a, nil
}
