package trust

import (
	"fmt"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// Purpose is what a certificate is about to be used for. It selects the key usage
// and extended key usage rules (see the package documentation).
type Purpose uint8

const (
	// PurposeAny checks the chain, validity and revocation, but no usage.
	PurposeAny Purpose = iota
	// PurposeSign is signing data (CMS SignedData, raw signatures): keyUsage
	// digitalSignature or nonRepudiation.
	PurposeSign
	// PurposeEncrypt is being the recipient of an envelope: keyUsage
	// keyEncipherment or keyAgreement.
	PurposeEncrypt
	// PurposeClientAuth is a TLS client or a login: keyUsage digitalSignature,
	// extKeyUsage clientAuth when present.
	PurposeClientAuth
)

func (p Purpose) String() string {
	switch p {
	case PurposeAny:
		return "any"
	case PurposeSign:
		return "sign"
	case PurposeEncrypt:
		return "encrypt"
	case PurposeClientAuth:
		return "client_auth"
	}
	return fmt.Sprintf("purpose(%d)", uint8(p))
}

// Status is the outcome of a validation.
type Status uint8

const (
	// StatusUnknown means the answer could not be had: revocation information was
	// unavailable under a hard-fail policy, or the OCSP responder answered
	// "unknown". It is the zero value so that a forgotten Verdict is never good.
	StatusUnknown Status = iota
	// StatusGood means the chain reaches a trust anchor, every certificate is
	// valid at the time asked, usage fits, and no certificate is revoked (or
	// revocation could not be checked under a soft-fail policy; see Revocation).
	StatusGood
	// StatusRevoked means a certificate of the chain is revoked.
	StatusRevoked
	// StatusExpired means a certificate of the chain is outside its validity
	// period at the time asked (expired or not yet valid; Reason says which).
	StatusExpired
	// StatusUntrusted means no chain to a trust anchor could be built.
	StatusUntrusted
	// StatusWrongUsage means the leaf's key usage or extended key usage (or a CA's
	// extended key usage) does not allow the purpose.
	StatusWrongUsage
)

func (s Status) String() string {
	switch s {
	case StatusUnknown:
		return "unknown"
	case StatusGood:
		return "good"
	case StatusRevoked:
		return "revoked"
	case StatusExpired:
		return "expired"
	case StatusUntrusted:
		return "untrusted"
	case StatusWrongUsage:
		return "wrong_usage"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Stable reasons, machine-readable. They go into gRPC error details and audit
// records, so they never change meaning.
const (
	ReasonOK                    = "ok"                     // good, revocation checked or not needed
	ReasonRevocationSoftFailed  = "revocation_soft_failed" // good, but revocation could not be checked (soft-fail policy)
	ReasonRevoked               = "revoked"                // a certificate of the chain is revoked
	ReasonExpired               = "expired"                // a certificate of the chain is past notAfter
	ReasonNotYetValid           = "not_yet_valid"          // a certificate of the chain is before notBefore
	ReasonUnknownAuthority      = "unknown_authority"      // no path to a trust anchor (or a bad signature on the path)
	ReasonInvalidChain          = "invalid_chain"          // a path exists but breaks a rule (CA flag, path length, critical extension, names, policies)
	ReasonNoCertificate         = "no_certificate"         // nothing to validate
	ReasonKeyUsage              = "key_usage"              // the leaf's keyUsage does not allow the purpose
	ReasonExtKeyUsage           = "ext_key_usage"          // an extKeyUsage in the chain does not allow the purpose
	ReasonRevocationUnavailable = "revocation_unavailable" // hard-fail policy and no revocation answer
)

// RevocationMethod says how the revocation status of one certificate was learned.
type RevocationMethod uint8

const (
	// RevocationNotChecked: revocation checking is off, or the certificate names no
	// CRL or OCSP source and the configuration adds none, or it is a trust anchor.
	RevocationNotChecked RevocationMethod = iota
	// RevocationCRL: a CRL signed by the issuer answered.
	RevocationCRL
	// RevocationOCSP: an OCSP response signed by the issuer or its delegated
	// responder answered.
	RevocationOCSP
	// RevocationSoftFailed: sources exist but none answered; the soft-fail policy
	// let the certificate pass. RevocationCheck.Error says why.
	RevocationSoftFailed
	// RevocationFailed: sources exist but none answered, under the hard-fail
	// policy (the verdict is StatusUnknown).
	RevocationFailed
)

func (m RevocationMethod) String() string {
	switch m {
	case RevocationNotChecked:
		return "not_checked"
	case RevocationCRL:
		return "crl"
	case RevocationOCSP:
		return "ocsp"
	case RevocationSoftFailed:
		return "soft_failed"
	case RevocationFailed:
		return "failed"
	}
	return fmt.Sprintf("revocation_method(%d)", uint8(m))
}

// RevocationCheck is how one certificate of the chain was checked for revocation.
type RevocationCheck struct {
	// Subject of the checked certificate, for logs.
	Subject string
	Method  RevocationMethod
	// Source is the URL that answered (or the last one tried).
	Source string
	// ThisUpdate and NextUpdate of the CRL or OCSP response that answered.
	ThisUpdate, NextUpdate time.Time
	// Error says why no answer could be had (soft-failed or failed). It may name
	// URLs and network errors: it is for logs and operators.
	Error string
}

// CRLReason is an RFC 5280 section 5.3.1 revocation reason code.
type CRLReason int

// RFC 5280 reason codes.
const (
	ReasonCodeUnspecified          CRLReason = 0
	ReasonCodeKeyCompromise        CRLReason = 1
	ReasonCodeCACompromise         CRLReason = 2
	ReasonCodeAffiliationChanged   CRLReason = 3
	ReasonCodeSuperseded           CRLReason = 4
	ReasonCodeCessationOfOperation CRLReason = 5
	ReasonCodeCertificateHold      CRLReason = 6
	ReasonCodeRemoveFromCRL        CRLReason = 8
	ReasonCodePrivilegeWithdrawn   CRLReason = 9
	ReasonCodeAACompromise         CRLReason = 10
)

func (r CRLReason) String() string {
	switch r {
	case ReasonCodeUnspecified:
		return "unspecified"
	case ReasonCodeKeyCompromise:
		return "keyCompromise"
	case ReasonCodeCACompromise:
		return "cACompromise"
	case ReasonCodeAffiliationChanged:
		return "affiliationChanged"
	case ReasonCodeSuperseded:
		return "superseded"
	case ReasonCodeCessationOfOperation:
		return "cessationOfOperation"
	case ReasonCodeCertificateHold:
		return "certificateHold"
	case ReasonCodeRemoveFromCRL:
		return "removeFromCRL"
	case ReasonCodePrivilegeWithdrawn:
		return "privilegeWithdrawn"
	case ReasonCodeAACompromise:
		return "aACompromise"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// compromise reports whether the reason means the key may have been misused before
// the revocation time, so the certificate counts as revoked at any time.
func (r CRLReason) compromise() bool {
	return r == ReasonCodeKeyCompromise || r == ReasonCodeCACompromise || r == ReasonCodeAACompromise
}

// Verdict is the result of validating one certificate for one purpose at one time.
// A Verdict may be shared through the cache: treat it and its Chain as read-only.
type Verdict struct {
	Status Status
	// Reason is one of the Reason* constants.
	Reason string
	// Detail explains the reason for people (subjects, times, the underlying
	// error). It names no key material; it may name certificate subjects and URLs.
	Detail string

	// At is the time the certificate was validated for; Purpose what for.
	At      time.Time
	Purpose Purpose

	// Chain is the path used, leaf first, trust anchor last. It is set when a path
	// to an anchor was found (also for StatusExpired when the path is otherwise
	// sound, and for StatusRevoked / StatusWrongUsage).
	Chain []*smx509.Certificate

	// RevokedAt and RevocationReason are set when Status is StatusRevoked, and
	// also when a certificate was revoked after At for a reason that is not a
	// compromise (the verdict is then good for At; see the package doc).
	RevokedAt        time.Time
	RevocationReason CRLReason

	// Revocation sums up Checks: RevocationFailed if any certificate failed,
	// RevocationSoftFailed if any soft-failed, else the leaf's method. Checks has
	// one entry per certificate checked, leaf first (the anchor is never checked).
	Revocation RevocationMethod
	Checks     []RevocationCheck
}

// OK reports whether the certificate may be used: Status is StatusGood.
func (v *Verdict) OK() bool { return v != nil && v.Status == StatusGood }

// Leaf returns the validated leaf, or nil.
func (v *Verdict) Leaf() *smx509.Certificate {
	if v == nil || len(v.Chain) == 0 {
		return nil
	}
	return v.Chain[0]
}

func (v *Verdict) String() string {
	if v == nil {
		return "<nil verdict>"
	}
	s := v.Status.String() + " (" + v.Reason + ")"
	if v.Detail != "" {
		s += ": " + v.Detail
	}
	return s
}
