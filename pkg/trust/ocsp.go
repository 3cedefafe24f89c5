package trust

// OCSP (RFC 6960) is spoken here directly with cryptobyte rather than through
// golang.org/x/crypto/ocsp, because that package cannot do what is needed:
// CreateRequest writes no request extensions (so no nonce), it takes
// crypto/x509 certificates (which cannot hold an SM2 public key), and its
// signature check does not know SM2-with-SM3. Signatures here are checked with
// smx509, which knows RSA (PKCS#1 v1.5 and PSS), ECDSA and SM2.
//
// This file asks a responder and judges its answer; the request is built in
// ocsp_request.go, the response parsed in ocsp_response.go, and who may sign a
// response is decided in ocsp_responder.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/smx509"
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

// fetchOCSP asks url about c and returns the verified answer.
func (r *revocationChecker) fetchOCSP(ctx context.Context, url string, c, issuer *smx509.Certificate, id certID) (_ *ocspAnswer, err error) {
	if o := r.cfg.Observer; o != nil {
		start := time.Now()
		defer func() { o.Fetched("ocsp", time.Since(start), err) }()
	}
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
