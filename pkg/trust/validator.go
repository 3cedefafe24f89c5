package trust

import (
	"bytes"
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// Validator validates certificates against the configured anchors. It is safe for
// concurrent use. Close stops its background work.
type Validator struct {
	cfg     Config
	roots   *smx509.CertPool
	inters  *smx509.CertPool
	anchors []*smx509.Certificate
	extra   []*smx509.Certificate // config intermediates, for diagnosis
	cache   *verdictCache
	rev     *revocationChecker // nil when revocation is disabled
}

// New makes a Validator. It starts a background CRL refresher unless revocation
// checking is disabled or Revocation.RefreshInterval is negative; Close stops it.
func New(cfg Config) (*Validator, error) {
	c := cfg.withDefaults()
	if len(c.Anchors) == 0 {
		return nil, errors.New("trust: no trust anchors configured")
	}
	v := &Validator{cfg: c, roots: smx509.NewCertPool(), inters: smx509.NewCertPool()}
	for _, a := range c.Anchors {
		if a == nil || len(a.Raw) == 0 {
			return nil, errors.New("trust: nil or unparsed anchor")
		}
		v.roots.AddCert(a)
		v.anchors = append(v.anchors, a)
	}
	for _, i := range c.Intermediates {
		if i == nil || len(i.Raw) == 0 {
			return nil, errors.New("trust: nil or unparsed intermediate")
		}
		v.inters.AddCert(i)
		v.extra = append(v.extra, i)
	}
	if c.CacheSize > 0 {
		v.cache = newVerdictCache(c.CacheSize)
	}
	if !c.Revocation.Disabled {
		rc, err := newRevocationChecker(&v.cfg)
		if err != nil {
			return nil, err
		}
		v.rev = rc
	}
	return v, nil
}

// Close stops the background CRL refresher and waits for it. Validate keeps
// working after Close, without background refresh.
func (v *Validator) Close() error {
	if v.rev != nil {
		v.rev.close()
	}
	return nil
}

// Anchors returns the configured trust anchors.
func (v *Validator) Anchors() []*smx509.Certificate { return v.anchors }

// Validate checks leaf for purpose at time at: a path to a trust anchor (using
// the configured intermediates and those given), the validity period of every
// certificate in the path at at, key usage, and revocation of every certificate
// except the anchor. It never returns nil. Waiting for revocation information
// ends with ctx; what happens then follows the hard-fail / soft-fail policy.
//
// Identical (leaf, intermediates, purpose) are answered from a cache while at
// lies in the same validity window and the revocation answers are fresh.
func (v *Validator) Validate(ctx context.Context, leaf *smx509.Certificate, intermediates []*smx509.Certificate, at time.Time, purpose Purpose) *Verdict {
	if leaf == nil || len(leaf.Raw) == 0 {
		return &Verdict{Status: StatusUntrusted, Reason: ReasonNoCertificate, Detail: "no certificate", At: at, Purpose: purpose}
	}
	var key cacheKey
	now := v.cfg.Now()
	gen := v.generation()
	if v.cache != nil {
		key = makeCacheKey(leaf, intermediates, purpose)
		vd := v.cache.get(key, at, now, gen)
		if o := v.cfg.Observer; o != nil {
			o.CacheLookup(vd != nil)
		}
		if vd != nil {
			return vd
		}
	}
	vd, window := v.validate(ctx, leaf, intermediates, at, purpose, now)
	window.gen = gen
	if v.cache != nil && window.cacheable {
		v.cache.put(key, vd, window)
	}
	return vd
}

// cacheWindow says for which times at, and until which wall-clock time, a verdict
// may be reused.
type cacheWindow struct {
	cacheable bool
	from, to  time.Time // at must be in [from, to]
	expires   time.Time // wall clock
	gen       uint64    // revocation generation the verdict was made in
}

// generation changes when a refreshed CRL differs from the previous one.
func (v *Validator) generation() uint64 {
	if v.rev == nil {
		return 0
	}
	return v.rev.gen.Load()
}

func (v *Validator) validate(ctx context.Context, leaf *smx509.Certificate, intermediates []*smx509.Certificate, at time.Time, purpose Purpose, now time.Time) (*Verdict, cacheWindow) {
	vd := &Verdict{At: at, Purpose: purpose}
	var win cacheWindow

	chain, status, reason, detail := v.buildChain(leaf, intermediates, at)
	vd.Chain = chain
	if status != StatusGood {
		vd.Status, vd.Reason, vd.Detail = status, reason, detail
		return vd, win
	}
	win.from, win.to = chainWindow(chain)
	win.expires = now.Add(v.cfg.CacheTTL)

	if reason, detail := checkUsage(chain, purpose); reason != "" {
		vd.Status, vd.Reason, vd.Detail = StatusWrongUsage, reason, detail
		win.cacheable = true
		return vd, win
	}

	vd.Status, vd.Reason = StatusGood, ReasonOK
	vd.Revocation = RevocationNotChecked
	if v.rev == nil || len(chain) < 2 {
		win.cacheable = true
		return vd, win
	}
	v.checkRevocation(ctx, vd, chain, at, now, &win)
	return vd, win
}

// checkRevocation asks the revocation checker about every certificate of chain
// except the anchor and folds the answers into vd and win.
func (v *Validator) checkRevocation(ctx context.Context, vd *Verdict, chain []*smx509.Certificate, at, now time.Time, win *cacheWindow) {
	rcfg := &v.cfg.Revocation
	var revoked, unavailable bool
	var unavailableDetail string
	for i := 0; i+1 < len(chain); i++ {
		if i > 0 && rcfg.SkipIntermediates {
			break
		}
		a := v.rev.check(ctx, chain[i], chain[i+1], now)
		chk := a.check
		chk.Subject = chain[i].Subject.String()
		switch a.status {
		case revUnavailable:
			if rcfg.HardFail {
				chk.Method = RevocationFailed
				unavailable = true
				if unavailableDetail == "" {
					unavailableDetail = fmt.Sprintf("revocation status of %q unavailable: %s", chk.Subject, chk.Error)
				}
			} else {
				chk.Method = RevocationSoftFailed
			}
			// Retry soon: a soft-failed answer is reused only briefly.
			if e := now.Add(rcfg.RetryAfter); e.Before(win.expires) {
				win.expires = e
			}
		case revRevoked:
			if !a.revokedAt.After(at) || a.reason.compromise() {
				if !revoked {
					revoked = true
					vd.RevokedAt, vd.RevocationReason = a.revokedAt, a.reason
					vd.Detail = fmt.Sprintf("%q revoked at %s (%s)", chk.Subject, a.revokedAt.UTC().Format(time.RFC3339), a.reason)
					// Revoked stays revoked for any later at.
					if a.revokedAt.After(win.from) && !a.reason.compromise() {
						win.from = a.revokedAt
					}
				}
			} else {
				// Revoked after at, not for a compromise: good for at.
				vd.RevokedAt, vd.RevocationReason = a.revokedAt, a.reason
				if vd.Detail == "" {
					vd.Detail = fmt.Sprintf("%q revoked later, at %s (%s)", chk.Subject, a.revokedAt.UTC().Format(time.RFC3339), a.reason)
				}
				if a.revokedAt.Before(win.to) {
					win.to = a.revokedAt.Add(-time.Nanosecond)
				}
			}
		}
		if !a.expires.IsZero() && a.expires.Before(win.expires) {
			win.expires = a.expires
		}
		vd.Checks = append(vd.Checks, chk)
	}
	vd.Revocation = summarize(vd.Checks)
	switch {
	case revoked:
		vd.Status, vd.Reason = StatusRevoked, ReasonRevoked
		win.cacheable = true
	case unavailable:
		vd.Status, vd.Reason, vd.Detail = StatusUnknown, ReasonRevocationUnavailable, unavailableDetail
		vd.RevokedAt, vd.RevocationReason = time.Time{}, 0
	default:
		for _, c := range vd.Checks {
			if c.Method == RevocationSoftFailed {
				vd.Reason = ReasonRevocationSoftFailed
				if vd.Detail == "" {
					vd.Detail = fmt.Sprintf("revocation status of %q unavailable (soft-fail): %s", c.Subject, c.Error)
				}
				break
			}
		}
		win.cacheable = true
	}
}

// summarize: failed if any check failed, soft-failed if any soft-failed, else the
// leaf's method.
func summarize(checks []RevocationCheck) RevocationMethod {
	if len(checks) == 0 {
		return RevocationNotChecked
	}
	m := checks[0].Method
	for _, c := range checks {
		if c.Method == RevocationFailed {
			return RevocationFailed
		}
		if c.Method == RevocationSoftFailed {
			m = RevocationSoftFailed
		}
	}
	return m
}

// buildChain finds a path from leaf to an anchor valid at at. On failure it tells
// an expired path apart from no path at all.
func (v *Validator) buildChain(leaf *smx509.Certificate, intermediates []*smx509.Certificate, at time.Time) ([]*smx509.Certificate, Status, string, string) {
	pool := v.inters
	if len(intermediates) > 0 {
		pool = v.inters.Clone()
		for _, c := range intermediates {
			if c != nil && len(c.Raw) > 0 {
				pool.AddCert(c)
			}
		}
	}
	chains, err := leaf.Verify(smx509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: pool,
		CurrentTime:   at,
		KeyUsages:     []smx509.ExtKeyUsage{smx509.ExtKeyUsageAny}, // usage is checked per purpose below
	})
	if err == nil && len(chains) > 0 {
		best := chains[0]
		for _, c := range chains[1:] {
			if len(c) < len(best) {
				best = c
			}
		}
		for i := 1; i < len(best)-1; i++ {
			ca := best[i]
			// RFC 5280 6.1.4 (n): a CA key used for certificates must allow it.
			if ca.KeyUsage != 0 && ca.KeyUsage&smx509.KeyUsageCertSign == 0 {
				return best, StatusUntrusted, ReasonInvalidChain, fmt.Sprintf("CA %q key usage does not allow certificate signing", ca.Subject.String())
			}
		}
		return best, StatusGood, "", ""
	}
	// Diagnose: is there a path when time is ignored?
	path := v.pathIgnoringTime(leaf, intermediates)
	if path == nil {
		return nil, StatusUntrusted, ReasonUnknownAuthority, errDetail(err)
	}
	for _, c := range path {
		if at.Before(c.NotBefore) {
			return path, StatusExpired, ReasonNotYetValid, fmt.Sprintf("%q is not valid before %s", c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339))
		}
		if at.After(c.NotAfter) {
			return path, StatusExpired, ReasonExpired, fmt.Sprintf("%q expired at %s", c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return nil, StatusUntrusted, ReasonInvalidChain, errDetail(err)
}

func errDetail(err error) string {
	if err == nil {
		return "no chain"
	}
	return err.Error()
}

// maxPathLen bounds the diagnostic path search.
const maxPathLen = 8

// pathIgnoringTime is a plain depth-first search by name and signature, used only
// to explain why Verify found nothing. Signature checks are bounded.
func (v *Validator) pathIgnoringTime(leaf *smx509.Certificate, given []*smx509.Certificate) []*smx509.Certificate {
	cands := make([]*smx509.Certificate, 0, len(v.extra)+len(given))
	cands = append(cands, v.extra...)
	for _, c := range given {
		if c != nil && len(c.Raw) > 0 {
			cands = append(cands, c)
		}
	}
	budget := 64
	var walk func(path []*smx509.Certificate) []*smx509.Certificate
	walk = func(path []*smx509.Certificate) []*smx509.Certificate {
		cur := path[len(path)-1]
		for _, a := range v.anchors {
			if bytes.Equal(a.Raw, cur.Raw) {
				return path
			}
		}
		if len(path) > maxPathLen {
			return nil
		}
		for _, a := range v.anchors {
			if budget <= 0 {
				return nil
			}
			if bytes.Equal(cur.RawIssuer, a.RawSubject) {
				budget--
				if cur.CheckSignatureFrom(a) == nil {
					return append(path[:len(path):len(path)], a)
				}
			}
		}
		for _, c := range cands {
			if budget <= 0 {
				return nil
			}
			if !bytes.Equal(cur.RawIssuer, c.RawSubject) || inPath(path, c) {
				continue
			}
			budget--
			if cur.CheckSignatureFrom(c) != nil {
				continue
			}
			if p := walk(append(path[:len(path):len(path)], c)); p != nil {
				return p
			}
		}
		return nil
	}
	return walk([]*smx509.Certificate{leaf})
}

func inPath(path []*smx509.Certificate, c *smx509.Certificate) bool {
	for _, p := range path {
		if bytes.Equal(p.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// chainWindow is the intersection of the validity periods of chain.
func chainWindow(chain []*smx509.Certificate) (from, to time.Time) {
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(to) {
			to = c.NotAfter
		}
	}
	return from, to
}

// oidDocumentSigning is id-kp-documentSigning (RFC 9336).
var oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

// checkUsage applies the key usage rule to the leaf and the extended key usage
// rule to every certificate of the chain. It returns "" when usage fits.
func checkUsage(chain []*smx509.Certificate, p Purpose) (reason, detail string) {
	if p == PurposeAny {
		return "", ""
	}
	leaf := chain[0]
	if ku := leaf.KeyUsage; ku != 0 {
		var need smx509.KeyUsage
		var names string
		switch p {
		case PurposeSign:
			need, names = smx509.KeyUsageDigitalSignature|smx509.KeyUsageContentCommitment, "digitalSignature or nonRepudiation"
		case PurposeEncrypt:
			need, names = smx509.KeyUsageKeyEncipherment|smx509.KeyUsageKeyAgreement, "keyEncipherment or keyAgreement"
		case PurposeClientAuth:
			need, names = smx509.KeyUsageDigitalSignature, "digitalSignature"
		}
		if ku&need == 0 {
			return ReasonKeyUsage, fmt.Sprintf("%q key usage lacks %s (needed to %s)", leaf.Subject.String(), names, p)
		}
	}
	for _, c := range chain {
		if !ekuAllows(c, p) {
			return ReasonExtKeyUsage, fmt.Sprintf("%q extended key usage does not allow %s", c.Subject.String(), p)
		}
	}
	return "", ""
}

// ekuAllows: a certificate without the extension allows everything; with it, it
// must name anyExtendedKeyUsage or a usage fitting the purpose.
func ekuAllows(c *smx509.Certificate, p Purpose) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		switch u {
		case smx509.ExtKeyUsageAny:
			return true
		case smx509.ExtKeyUsageClientAuth:
			return true // fits sign, encrypt and client auth (national PKIs mark enterprise certificates so)
		case smx509.ExtKeyUsageEmailProtection:
			if p == PurposeSign || p == PurposeEncrypt {
				return true
			}
		case smx509.ExtKeyUsageCodeSigning:
			if p == PurposeSign {
				return true
			}
		}
	}
	if p == PurposeSign {
		for _, o := range c.UnknownExtKeyUsage {
			if o.Equal(oidDocumentSigning) {
				return true
			}
		}
	}
	return false
}
