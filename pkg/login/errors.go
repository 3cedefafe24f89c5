package login

import (
	"errors"

	"signsvr.dev/signsvr/pkg/trust"
)

// Stable reasons a login is refused. They go into google.rpc.ErrorInfo.
const (
	ReasonMalformed         = "malformed_answer"        // not a challenge of ours, no signature, no certificate
	ReasonChallengeTampered = "challenge_tampered"      // MAC does not verify (changed, another deployment's key, another audience)
	ReasonChallengeExpired  = "challenge_expired"       // answered after the challenge's expiry
	ReasonChallengeReplayed = "challenge_replayed"      // already used (only with a ReplayGuard)
	ReasonBadSignature      = "bad_signature"           // not signed with the certificate's key (wrong key, other content)
	ReasonCertRevoked       = "certificate_revoked"     // the certificate or a CA of its chain is revoked
	ReasonCertExpired       = "certificate_expired"     // outside its validity period
	ReasonCertUntrusted     = "certificate_untrusted"   // no chain to a trust anchor
	ReasonCertWrongUsage    = "certificate_wrong_usage" // key usage does not allow logging in
	ReasonCertUnknown       = "certificate_unknown"     // revocation status unavailable (hard-fail)
)

// Error is a refused login. Reason is safe to show a client; Error() also holds
// the internal cause (for logs).
type Error struct {
	Reason string
	// Verdict is the certificate verdict when the certificate was the problem.
	Verdict *trust.Verdict
	cause   error
}

func refuse(reason string, cause error, vd *trust.Verdict) *Error {
	return &Error{Reason: reason, Verdict: vd, cause: cause}
}

func (e *Error) Error() string {
	if e.cause == nil {
		return "login refused: " + e.Reason
	}
	return "login refused: " + e.Reason + ": " + e.cause.Error()
}

func (e *Error) Unwrap() error { return e.cause }

// ClientMessage is a message for the client: what went wrong, without internals.
func (e *Error) ClientMessage() string {
	switch e.Reason {
	case ReasonMalformed:
		return "the login answer is malformed"
	case ReasonChallengeTampered:
		return "the challenge was not issued by this service or was altered"
	case ReasonChallengeExpired:
		return "the challenge has expired; request a new one"
	case ReasonChallengeReplayed:
		return "the challenge was already used; request a new one"
	case ReasonBadSignature:
		return "the signature does not match the certificate"
	case ReasonCertRevoked:
		return "the certificate is revoked"
	case ReasonCertExpired:
		return "the certificate is expired or not yet valid"
	case ReasonCertUntrusted:
		return "the certificate is not issued by a trusted authority"
	case ReasonCertWrongUsage:
		return "the certificate may not be used to log in"
	case ReasonCertUnknown:
		return "the certificate's revocation status cannot be checked now"
	}
	return "login refused"
}

// ReasonOf returns the Reason of an *Error in err's chain, or "".
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func certReason(s trust.Status) string {
	switch s {
	case trust.StatusRevoked:
		return ReasonCertRevoked
	case trust.StatusExpired:
		return ReasonCertExpired
	case trust.StatusUntrusted:
		return ReasonCertUntrusted
	case trust.StatusWrongUsage:
		return ReasonCertWrongUsage
	}
	return ReasonCertUnknown
}
