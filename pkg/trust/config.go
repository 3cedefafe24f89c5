package trust

import (
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// Config is what a Validator trusts and how it checks revocation.
type Config struct {
	// Anchors are the trust anchors (root CAs, or any certificate trusted as
	// such). At least one is required.
	Anchors []*smx509.Certificate
	// Intermediates may be used to build paths, in addition to those a caller
	// passes to Validate. They are not trusted by themselves.
	Intermediates []*smx509.Certificate

	Revocation RevocationConfig

	// CacheSize bounds the number of cached verdicts (default 10000). Negative
	// switches the verdict cache off.
	CacheSize int
	// CacheTTL bounds how long a verdict is reused when no CRL or OCSP answer
	// sets a shorter lifetime (default 5 minutes).
	CacheTTL time.Duration

	// Now is the clock (default time.Now). Revocation freshness and cache expiry
	// use it; validity uses the time given to Validate.
	Now func() time.Time
	// HTTPClient fetches CRLs and OCSP responses (default: a client with no
	// proxy from the environment and the fetch timeout).
	HTTPClient *http.Client
	// Observer, when set, learns of every revocation fetch and verdict-cache
	// lookup (metrics).
	Observer Observer
}

// Observer learns what a Validator does, for metrics. Its methods are called on the
// validation path and must be quick and safe for concurrent use.
type Observer interface {
	// Fetched follows each CRL or OCSP fetch: source is "crl" or "ocsp", took the
	// time from request to a checked answer, err nil when the answer is usable
	// (fetched, parsed, signature and freshness checked).
	Fetched(source string, took time.Duration, err error)
	// CacheLookup follows each lookup in the verdict cache.
	CacheLookup(hit bool)
}

// RevocationConfig chooses how revocation is checked.
type RevocationConfig struct {
	// Disabled switches revocation checking off (the development setup).
	Disabled bool
	// HardFail makes a certificate whose revocation status cannot be learned
	// StatusUnknown. Without it (soft-fail) such a certificate is good and the
	// verdict says RevocationSoftFailed.
	HardFail bool
	// PreferCRL asks CRLs first and OCSP second; the default is OCSP first.
	PreferCRL bool
	// RequireSource makes a certificate that names no CRL or OCSP source (and
	// gets none from this config) count as unavailable rather than not checked.
	RequireSource bool
	// SkipIntermediates checks only the leaf, not the intermediate CAs.
	SkipIntermediates bool

	// OCSPResponder, when set, is asked instead of the certificate's AIA
	// responder, for every certificate.
	OCSPResponder string
	// OCSPResponderCerts are responder certificates trusted directly to sign
	// OCSP responses for any issuer (a locally trusted responder), in addition to
	// the issuer and its delegated responders.
	OCSPResponderCerts []*smx509.Certificate
	// RequireOCSPNonce refuses OCSP responses that do not echo the request's
	// nonce. Without it a response without a nonce is accepted when fresh, and a
	// response with a different nonce is always refused.
	RequireOCSPNonce bool
	// CRLURLs are CRLs fetched for every certificate in addition to its
	// distribution points; a CRL is used only for certificates of its issuer.
	CRLURLs []string
	// CRLs are static CRLs (DER or PEM), e.g. loaded from files; they are used
	// until their nextUpdate (forever if they have none) and are never fetched.
	CRLs [][]byte

	// FetchTimeout bounds one CRL or OCSP fetch (default 5s). A request's own
	// context deadline also ends its wait, whichever comes first.
	FetchTimeout time.Duration
	// ClockSkew is allowed on thisUpdate / nextUpdate (default 5 minutes).
	ClockSkew time.Duration
	// RetryAfter is how long a failed fetch is not retried; requests in that
	// time fail fast with the remembered error (default 10s).
	RetryAfter time.Duration
	// MaxCRLSize bounds a fetched CRL (default 32 MiB); MaxOCSPSize an OCSP
	// response (default 1 MiB).
	MaxCRLSize, MaxOCSPSize int64
	// RefreshInterval is how often the background refresher looks for CRLs
	// nearing nextUpdate (default 1 minute; negative: no background refresh).
	RefreshInterval time.Duration
	// refreshTicks, when set, drives the background refresher instead of a ticker
	// of RefreshInterval, so tests decide when it looks.
	refreshTicks <-chan time.Time
	// DefaultTTL is how long a CRL or OCSP answer without nextUpdate is reused
	// (default 1 hour for CRLs; OCSP answers without nextUpdate are reused for
	// at most 1 minute).
	DefaultTTL time.Duration
}

func (c *Config) withDefaults() Config {
	cfg := *c
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &cfg.Revocation
	if r.FetchTimeout <= 0 {
		r.FetchTimeout = 5 * time.Second
	}
	if r.ClockSkew <= 0 {
		r.ClockSkew = 5 * time.Minute
	}
	if r.RetryAfter <= 0 {
		r.RetryAfter = 10 * time.Second
	}
	if r.MaxCRLSize <= 0 {
		r.MaxCRLSize = 32 << 20
	}
	if r.MaxOCSPSize <= 0 {
		r.MaxOCSPSize = 1 << 20
	}
	if r.RefreshInterval == 0 {
		r.RefreshInterval = time.Minute
	}
	if r.DefaultTTL <= 0 {
		r.DefaultTTL = time.Hour
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
			Timeout:   r.FetchTimeout,
			// CRL and OCSP URLs come from CA-signed certificates; redirects are
			// followed only a few times.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				return nil
			},
		}
	}
	return cfg
}

// FileConfig is the configuration file form of Config: certificates and CRLs are
// PEM (or DER) files.
//
//	trust:
//	  anchors: [/etc/signsvr/roots.pem]
//	  intermediates: [/etc/signsvr/cas.pem]
//	  revocation:
//	    hard_fail: true
//	    ocsp_responder: http://ocsp.example/
//	    fetch_timeout: 3s
type FileConfig struct {
	Anchors       []string `yaml:"anchors"`
	Intermediates []string `yaml:"intermediates"`
	Revocation    struct {
		Disabled           bool          `yaml:"disabled"`
		HardFail           bool          `yaml:"hard_fail"`
		PreferCRL          bool          `yaml:"prefer_crl"`
		RequireSource      bool          `yaml:"require_source"`
		SkipIntermediates  bool          `yaml:"skip_intermediates"`
		OCSPResponder      string        `yaml:"ocsp_responder"`
		OCSPResponderCerts []string      `yaml:"ocsp_responder_certs"`
		RequireOCSPNonce   bool          `yaml:"require_ocsp_nonce"`
		CRLURLs            []string      `yaml:"crl_urls"`
		CRLFiles           []string      `yaml:"crl_files"`
		FetchTimeout       time.Duration `yaml:"fetch_timeout"`
		ClockSkew          time.Duration `yaml:"clock_skew"`
		RetryAfter         time.Duration `yaml:"retry_after"`
		RefreshInterval    time.Duration `yaml:"refresh_interval"`
	} `yaml:"revocation"`
	CacheSize int           `yaml:"cache_size"`
	CacheTTL  time.Duration `yaml:"cache_ttl"`
}

// Config loads the files named in fc.
func (fc *FileConfig) Config() (Config, error) {
	var cfg Config
	var err error
	if cfg.Anchors, err = LoadCertificates(fc.Anchors...); err != nil {
		return cfg, err
	}
	if cfg.Intermediates, err = LoadCertificates(fc.Intermediates...); err != nil {
		return cfg, err
	}
	r := fc.Revocation
	cfg.Revocation = RevocationConfig{
		Disabled: r.Disabled, HardFail: r.HardFail, PreferCRL: r.PreferCRL, RequireSource: r.RequireSource,
		SkipIntermediates: r.SkipIntermediates, OCSPResponder: r.OCSPResponder, RequireOCSPNonce: r.RequireOCSPNonce,
		CRLURLs: r.CRLURLs, FetchTimeout: r.FetchTimeout, ClockSkew: r.ClockSkew, RetryAfter: r.RetryAfter,
		RefreshInterval: r.RefreshInterval,
	}
	if cfg.Revocation.OCSPResponderCerts, err = LoadCertificates(r.OCSPResponderCerts...); err != nil {
		return cfg, err
	}
	for _, f := range r.CRLFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, fmt.Errorf("trust: read CRL: %w", err)
		}
		cfg.Revocation.CRLs = append(cfg.Revocation.CRLs, b)
	}
	cfg.CacheSize, cfg.CacheTTL = fc.CacheSize, fc.CacheTTL
	return cfg, nil
}

// LoadCertificates reads every certificate in the given PEM files (a file with no
// PEM block is read as one DER certificate).
func LoadCertificates(files ...string) ([]*smx509.Certificate, error) {
	var out []*smx509.Certificate
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("trust: read certificates: %w", err)
		}
		certs, err := ParseCertificates(b)
		if err != nil {
			return nil, fmt.Errorf("trust: %s: %w", f, err)
		}
		out = append(out, certs...)
	}
	return out, nil
}

// ParseCertificates parses PEM "CERTIFICATE" blocks, or DER when b holds no PEM.
func ParseCertificates(b []byte) ([]*smx509.Certificate, error) {
	var out []*smx509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := smx509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		certs, err := smx509.ParseCertificates(b)
		if err != nil {
			return nil, errors.New("no PEM certificate and not DER: " + err.Error())
		}
		out = certs
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate")
	}
	return out, nil
}
