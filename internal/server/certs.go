package server

import (
	"context"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/trust"
)

// CertValidator gives the trust verdict on a certificate: chain to an anchor,
// validity at a time, key usage for the purpose, revocation. *trust.Validator is the
// implementation; the interface is the seam tests and later policies plug into.
// It must never return nil.
type CertValidator interface {
	Validate(ctx context.Context, leaf *smx509.Certificate, intermediates []*smx509.Certificate,
		at time.Time, purpose trust.Purpose) *trust.Verdict
}

var _ CertValidator = (*trust.Validator)(nil)

// certCache keeps certificates parsed from requests (recipients, extra certificates,
// VerifyRaw signers) by their DER, so a client that sends the same certificate again
// costs a map lookup instead of a parse. It also keeps the display names the API
// returns, formatted once per certificate.
type certCache struct {
	mu    sync.RWMutex
	certs map[string]*smx509.Certificate
	names map[*smx509.Certificate]certNames
}

type certNames struct{ subject, issuer string }

const maxCertCache = 4096

// parse returns the parsed certificate for der.
func (c *certCache) parse(der []byte) (*smx509.Certificate, error) {
	c.mu.RLock()
	cert, ok := c.certs[string(der)]
	c.mu.RUnlock()
	if ok {
		return cert, nil
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.certs == nil || len(c.certs) >= maxCertCache {
		c.certs = make(map[string]*smx509.Certificate)
	}
	c.certs[string(der)] = cert
	c.mu.Unlock()
	return cert, nil
}

// names returns the subject and issuer strings of cert, formatted once per certificate
// value seen (certificates parsed per message by the engine are distinct pointers, so
// this is keyed by DER too).
func (c *certCache) namesOf(cert *smx509.Certificate) certNames {
	c.mu.RLock()
	canon, ok := c.certs[string(cert.Raw)]
	var n certNames
	if ok {
		n, ok = c.names[canon]
	}
	c.mu.RUnlock()
	if ok {
		return n
	}
	n = certNames{subject: cert.Subject.String(), issuer: cert.Issuer.String()}
	c.mu.Lock()
	if c.certs == nil || len(c.certs) >= maxCertCache {
		c.certs = make(map[string]*smx509.Certificate)
	}
	if c.names == nil || len(c.names) >= maxCertCache {
		c.names = make(map[*smx509.Certificate]certNames)
	}
	canon, ok = c.certs[string(cert.Raw)]
	if !ok {
		canon = cert
		c.certs[string(cert.Raw)] = cert
	}
	c.names[canon] = n
	c.mu.Unlock()
	return n
}

// parseCerts parses DER certificates from a request, through the cache.
func (s *Server) parseCerts(ders [][]byte, field string) ([]*smx509.Certificate, error) {
	if len(ders) == 0 {
		return nil, nil
	}
	out := make([]*smx509.Certificate, len(ders))
	for i, d := range ders {
		c, err := s.certs.parse(d)
		if err != nil {
			return nil, malformed(field, err)
		}
		out[i] = c
	}
	return out, nil
}
