package keystore

import "time"

// DefaultExpiryThreshold is how close to its notAfter a key's certificate may come before
// ListKeys and the health report flag it: 30 days, the usual lead time to get a
// certificate re-issued by a CA.
const DefaultExpiryThreshold = 30 * 24 * time.Hour

// NotAfter is the end of the validity of k's leaf certificate, or the zero time when k
// has no certificate.
func NotAfter(k Key) time.Time {
	chain := k.Chain()
	if len(chain) == 0 || chain[0] == nil {
		return time.Time{}
	}
	return chain[0].NotAfter
}

// ExpiresSoon reports whether k's leaf certificate expires within threshold of now (or
// has already expired). A threshold of zero or less means DefaultExpiryThreshold. A key
// without a certificate never "expires soon": it has no certificate to renew.
func ExpiresSoon(k Key, now time.Time, threshold time.Duration) bool {
	if threshold <= 0 {
		threshold = DefaultExpiryThreshold
	}
	na := NotAfter(k)
	if na.IsZero() {
		return false
	}
	return !now.Add(threshold).Before(na)
}
