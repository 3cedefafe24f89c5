package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

type revStatus uint8

const (
	revNotChecked revStatus = iota
	revGood
	revRevoked
	revUnavailable
)

// revAnswer is what one source (or the checker as a whole) says about one
// certificate.
type revAnswer struct {
	status    revStatus
	revokedAt time.Time
	reason    CRLReason
	check     RevocationCheck
	expires   time.Time // wall clock: reuse until then
}

// revocationChecker asks OCSP responders and CRL distribution points, caches the
// answers, and refreshes CRLs in the background.
type revocationChecker struct {
	cfg    *Config
	rc     *RevocationConfig
	client *http.Client

	crls   *flight[*crlEntry]
	ocsp   *flight[*ocspAnswer]
	static []*crlEntry

	// gen changes whenever a refreshed CRL differs from the one it replaces, so
	// that verdicts cached from the old one are dropped.
	gen atomic.Uint64

	life *lifecycle
}

func newRevocationChecker(cfg *Config) (*revocationChecker, error) {
	rc := &cfg.Revocation
	r := &revocationChecker{cfg: cfg, rc: rc, client: cfg.HTTPClient}
	for i, b := range rc.CRLs {
		e, err := parseCRL(b, "config", cfg.Now(), rc.DefaultTTL)
		if err != nil {
			return nil, fmt.Errorf("trust: configured CRL %d: %w", i, err)
		}
		e.static = true
		r.static = append(r.static, e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.life = &lifecycle{ctx: ctx, cancel: cancel}
	r.crls = newFlight[*crlEntry](r.life, cfg.Now, rc.FetchTimeout, rc.RetryAfter, 1024)
	r.crls.onReplace = func(old, new *crlEntry) {
		if !bytes.Equal(old.raw, new.raw) {
			r.gen.Add(1)
		}
	}
	r.ocsp = newFlight[*ocspAnswer](r.life, cfg.Now, rc.FetchTimeout, rc.RetryAfter, 100000)
	if rc.RefreshInterval > 0 {
		r.life.goIfOpen(r.refreshLoop)
	}
	return r, nil
}

func (r *revocationChecker) close() { r.life.close() }

// check answers for cert c issued by issuer.
func (r *revocationChecker) check(ctx context.Context, c, issuer *smx509.Certificate, now time.Time) revAnswer {
	ocspURLs := httpURLs(c.OCSPServer)
	if r.rc.OCSPResponder != "" {
		ocspURLs = []string{r.rc.OCSPResponder}
	}
	crlURLs := httpURLs(c.CRLDistributionPoints)
	for _, u := range r.rc.CRLURLs {
		if !slices.Contains(crlURLs, u) {
			crlURLs = append(crlURLs, u)
		}
	}
	var static []*crlEntry
	for _, e := range r.static {
		if e.issuedBy(issuer) == nil {
			static = append(static, e)
		}
	}
	if len(ocspURLs)+len(crlURLs)+len(static) == 0 {
		if r.rc.RequireSource {
			return revAnswer{status: revUnavailable, check: RevocationCheck{Error: "no CRL or OCSP source for the certificate"}}
		}
		return revAnswer{status: revNotChecked}
	}

	var errs []string
	var lastSource string
	steps := []func() (revAnswer, bool){
		func() (revAnswer, bool) { return r.checkOCSP(ctx, c, issuer, ocspURLs, now, &errs, &lastSource) },
		func() (revAnswer, bool) { return r.checkCRL(ctx, c, issuer, static, crlURLs, now, &errs, &lastSource) },
	}
	if r.rc.PreferCRL {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for _, step := range steps {
		if a, ok := step(); ok {
			return a
		}
	}
	return revAnswer{status: revUnavailable, check: RevocationCheck{Source: lastSource, Error: strings.Join(errs, "; ")}}
}

func (r *revocationChecker) checkCRL(ctx context.Context, c, issuer *smx509.Certificate, static []*crlEntry, urls []string, now time.Time, errs *[]string, last *string) (revAnswer, bool) {
	skew := r.rc.ClockSkew
	for _, e := range static {
		if !e.fresh(now, skew) {
			*errs = append(*errs, "configured CRL is past its nextUpdate")
			continue
		}
		return e.answer(c, now), true
	}
	for _, u := range urls {
		*last = u
		e, err := r.crls.get(ctx, u, now, func(e *crlEntry, now time.Time) bool { return e.fresh(now, skew) },
			func(fctx context.Context) (*crlEntry, error) { return r.fetchCRL(fctx, u) })
		if err != nil {
			*errs = append(*errs, "CRL "+u+": "+err.Error())
			continue
		}
		if err := e.issuedBy(issuer); err != nil {
			if slices.Contains(r.rc.CRLURLs, u) && !slices.Contains(c.CRLDistributionPoints, u) {
				continue // a configured CRL of another issuer
			}
			*errs = append(*errs, "CRL "+u+": "+err.Error())
			continue
		}
		return e.answer(c, now), true
	}
	return revAnswer{}, false
}

func (r *revocationChecker) checkOCSP(ctx context.Context, c, issuer *smx509.Certificate, urls []string, now time.Time, errs *[]string, last *string) (revAnswer, bool) {
	for _, u := range urls {
		*last = u
		id, err := newCertID(c, issuer)
		if err != nil {
			*errs = append(*errs, "OCSP: "+err.Error())
			return revAnswer{}, false
		}
		key := u + "\x00" + id.key()
		a, err := r.ocsp.get(ctx, key, now, func(a *ocspAnswer, now time.Time) bool { return now.Before(a.expires) },
			func(fctx context.Context) (*ocspAnswer, error) { return r.fetchOCSP(fctx, u, c, issuer, id) })
		if err != nil {
			*errs = append(*errs, "OCSP "+u+": "+err.Error())
			continue
		}
		if a.status == ocspUnknown {
			*errs = append(*errs, "OCSP "+u+": responder does not know the certificate")
			continue
		}
		ans := revAnswer{
			status:  revGood,
			check:   RevocationCheck{Method: RevocationOCSP, Source: u, ThisUpdate: a.thisUpdate, NextUpdate: a.nextUpdate},
			expires: a.expires,
		}
		if a.status == ocspRevoked {
			ans.status, ans.revokedAt, ans.reason = revRevoked, a.revokedAt, a.reason
		}
		return ans, true
	}
	return revAnswer{}, false
}

// fetch GETs (body == nil) or POSTs url, reading at most max bytes.
func (r *revocationChecker) fetch(ctx context.Context, url string, body []byte, contentType string, max int64) ([]byte, error) {
	var req *http.Request
	var err error
	if body == nil {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
		if err == nil {
			req.Header.Set("Content-Type", contentType)
		}
	}
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("response larger than %d bytes", max)
	}
	return b, nil
}

// refreshLoop refetches, one at a time, cached CRLs that near their nextUpdate
// and were used recently, and forgets CRLs nobody used for a day.
func (r *revocationChecker) refreshLoop() {
	ticks := r.rc.refreshTicks
	if ticks == nil {
		t := time.NewTicker(r.rc.RefreshInterval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-r.life.ctx.Done():
			return
		case <-ticks:
		}
		now := r.cfg.Now()
		near := func(e *crlEntry, now time.Time) bool { return e.nearExpiry(now, r.rc.RefreshInterval) }
		for _, url := range r.crls.due(now, near, 24*time.Hour) {
			if r.life.ctx.Err() != nil {
				return
			}
			r.crls.refresh(r.life.ctx, url, func(fctx context.Context) (*crlEntry, error) { return r.fetchCRL(fctx, url) })
		}
	}
}

func (r *revocationChecker) fetchCRL(ctx context.Context, url string) (e *crlEntry, err error) {
	if o := r.cfg.Observer; o != nil {
		start := time.Now()
		defer func() { o.Fetched("crl", time.Since(start), err) }()
	}
	b, err := r.fetch(ctx, url, nil, "", r.rc.MaxCRLSize)
	if err != nil {
		return nil, err
	}
	e, err = parseCRL(b, url, r.cfg.Now(), r.rc.DefaultTTL)
	if err != nil {
		return nil, err
	}
	if !e.fresh(r.cfg.Now(), r.rc.ClockSkew) {
		return nil, errors.New("CRL is past its nextUpdate")
	}
	return e, nil
}

func httpURLs(in []string) []string {
	var out []string
	for _, u := range in {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			out = append(out, u)
		}
	}
	return out
}
