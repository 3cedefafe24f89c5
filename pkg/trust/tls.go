package trust

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// VerdictError is a refused certificate as an error, for places that need one
// (a TLS handshake). Verdict says why.
type VerdictError struct{ Verdict *Verdict }

func (e *VerdictError) Error() string { return "trust: certificate refused: " + e.Verdict.String() }

// ErrNoClientCertificate is returned by the VerifyConnection function when the
// client sent no certificate.
var ErrNoClientCertificate = errors.New("trust: no client certificate")

// VerifyClientConnection returns a function for tls.Config.VerifyConnection that
// requires a client certificate and validates it, with the certificates the
// client sent as intermediates, for PurposeClientAuth at the current time. Use it
// with ClientAuth: tls.RequireAnyClientCert: crypto/tls's own verification knows
// neither revocation nor this package's usage rules. timeout bounds revocation
// fetches during the handshake (VerifyConnection has no context).
func (v *Validator) VerifyClientConnection(timeout time.Duration) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		vd, err := v.ValidatePeer(context.Background(), cs, timeout)
		if err != nil {
			return err
		}
		if !vd.OK() {
			return &VerdictError{Verdict: vd}
		}
		return nil
	}
}

// ValidatePeer validates the peer certificate of a TLS connection for
// PurposeClientAuth now (an interceptor can call it again: the verdict is cached).
func (v *Validator) ValidatePeer(ctx context.Context, cs tls.ConnectionState, timeout time.Duration) (*Verdict, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, ErrNoClientCertificate
	}
	certs := make([]*smx509.Certificate, 0, len(cs.PeerCertificates))
	for _, c := range cs.PeerCertificates {
		sc, err := smx509.ParseCertificate(c.Raw)
		if err != nil {
			return nil, errors.New("trust: unparsable client certificate")
		}
		certs = append(certs, sc)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return v.Validate(ctx, certs[0], certs[1:], v.cfg.Now(), PurposeClientAuth), nil
}
