package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/pkg/sign"
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
//
// It is bounded by entries and by bytes (each entry counted at about what it holds:
// the DER as key, the parsed certificate's copy of it, and the parsed structure), and
// a certificate larger than maxCert is refused before it is parsed: clients choose what
// they send, so without the byte bound a few large certificates would hold gigabytes.
// When either bound would be passed the cache starts over, as a cheap eviction that
// keeps the common case (the same few certificates again and again) fast.
type certCache struct {
	mu    sync.RWMutex
	certs map[string]*smx509.Certificate
	names map[*smx509.Certificate]certNames
	// bytes is the estimated size of certs; maxBytes and maxCert are the bounds (0:
	// the defaults).
	bytes    int64
	maxBytes int64
	maxCert  int
}

type certNames struct{ subject, issuer string }

const maxCertCache = 4096

// Defaults of VerifyLimits.CertCacheBytes and MaxCertificateBytes.
const (
	DefaultCertCacheBytes      = 64 << 20
	DefaultMaxCertificateBytes = 64 << 10
)

// certEntryOverhead is what a cached certificate holds besides copies of its DER: the
// parsed fields (key, extension slices), roughly.
const certEntryOverhead = 2 << 10

// certCost counts the DER three times: the key, the parsed certificate's copy, and the
// parsed fields and formatted names, which together are about the DER's size again.
func certCost(der []byte) int64 { return 3*int64(len(der)) + certEntryOverhead }

// VerifyLimits bound the work and memory a message to verify may cause. Zero fields
// take their defaults; they apply to Verify, VerifyBatch, DecryptAndVerify and CMS
// login answers alike.
type VerifyLimits struct {
	// MaxSigners bounds the SignerInfos of one message; 0 means
	// sign.DefaultMaxSigners.
	MaxSigners int
	// MaxCertificates bounds the certificates one message carries; 0 means
	// sign.DefaultMaxCertificates.
	MaxCertificates int
	// MaxCertificateBytes bounds the DER of one certificate, in a message or a
	// request field; 0 means DefaultMaxCertificateBytes.
	MaxCertificateBytes int
	// CertCacheBytes bounds the cache of parsed certificates; 0 means
	// DefaultCertCacheBytes.
	CertCacheBytes int64
}

// verifyOptions are the options every verification of a request starts from: its
// context, the limits, the certificate cache and the deployment's defaults
// (Options.AllowSM2WithoutZ).
func (s *Server) verifyOptions(ctx context.Context) *sign.VerifyOptions {
	return &sign.VerifyOptions{
		Context:          ctx,
		MaxSigners:       s.verifyLimits.MaxSigners,
		MaxCertificates:  s.verifyLimits.MaxCertificates,
		ParseCertificate: s.certs.parse,
		AllowSM2WithoutZ: s.allowSM2WithoutZ,
	}
}

// errCertTooLarge is returned for a certificate over the size bound, before parsing.
type errCertTooLarge struct{ size, max int }

func (e *errCertTooLarge) Error() string {
	return fmt.Sprintf("certificate of %d bytes; at most %d accepted", e.size, e.max)
}

func (c *certCache) limits() (maxBytes int64, maxCert int) {
	maxBytes, maxCert = c.maxBytes, c.maxCert
	if maxBytes <= 0 {
		maxBytes = DefaultCertCacheBytes
	}
	if maxCert <= 0 {
		maxCert = DefaultMaxCertificateBytes
	}
	return maxBytes, maxCert
}

// makeRoom empties the cache when adding cost would pass a bound. c.mu is held.
func (c *certCache) makeRoom(cost int64) {
	maxBytes, _ := c.limits()
	if c.certs == nil || len(c.certs) >= maxCertCache || c.bytes+cost > maxBytes {
		c.certs = make(map[string]*smx509.Certificate)
		c.names = nil
		c.bytes = 0
	}
}

// parse returns the parsed certificate for der.
func (c *certCache) parse(der []byte) (*smx509.Certificate, error) {
	if _, maxCert := c.limits(); len(der) > maxCert {
		return nil, &errCertTooLarge{size: len(der), max: maxCert}
	}
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
	if _, ok := c.certs[string(der)]; !ok {
		cost := certCost(der)
		c.makeRoom(cost)
		c.certs[string(der)] = cert
		c.bytes += cost
	}
	c.mu.Unlock()
	return cert, nil
}

// size is the cache's entries and estimated bytes (tests).
func (c *certCache) size() (entries int, bytes int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.certs), c.bytes
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
	canon, ok = c.certs[string(cert.Raw)]
	if !ok {
		if _, maxCert := c.limits(); len(cert.Raw) <= maxCert {
			cost := certCost(cert.Raw)
			c.makeRoom(cost)
			canon = cert
			c.certs[string(cert.Raw)] = cert
			c.bytes += cost
			ok = true
		}
	}
	if ok {
		if c.names == nil || len(c.names) >= maxCertCache {
			c.names = make(map[*smx509.Certificate]certNames)
		}
		c.names[canon] = n
	}
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
