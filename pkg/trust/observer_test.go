package trust

import (
	"context"
	"sync"
	"testing"
	"time"

	"signsvr.dev/signsvr/internal/testca"
)

// recordingObserver counts what a Validator reports.
type recordingObserver struct {
	mu               sync.Mutex
	fetches, failed  map[string]int
	hits, misses     int
	negativeDuration bool
}

func (o *recordingObserver) Fetched(source string, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fetches[source]++
	if err != nil {
		o.failed[source]++
	}
	o.negativeDuration = o.negativeDuration || took < 0
}

func (o *recordingObserver) CacheLookup(hit bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if hit {
		o.hits++
	} else {
		o.misses++
	}
}

// TestObserver: the observer hears of each OCSP and CRL fetch, good or failed, and
// of each verdict-cache lookup.
func TestObserver(t *testing.T) {
	e := newPKIEnv(t, testca.ECDSA, true)
	o := &recordingObserver{fetches: map[string]int{}, failed: map[string]int{}}
	v := newValidator(t, Config{Anchors: e.p.Anchors(), Observer: o,
		Revocation: RevocationConfig{HardFail: true, RefreshInterval: -1}})
	now := time.Now()
	for i := 0; i < 3; i++ {
		if vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign); vd.Status != StatusGood {
			t.Fatal(vd)
		}
	}
	o.mu.Lock()
	if o.fetches["ocsp"] != 1 || o.fetches["crl"] != 1 || o.failed["ocsp"]+o.failed["crl"] != 0 {
		t.Errorf("fetches %v, failed %v: want one OCSP (leaf) and one CRL (intermediate), none failed", o.fetches, o.failed)
	}
	if o.hits != 2 || o.misses != 1 || o.negativeDuration {
		t.Errorf("cache hits %d, misses %d (negative duration %v), want 2 and 1", o.hits, o.misses, o.negativeDuration)
	}
	o.mu.Unlock()

	// A CRL source that is down is a failed fetch.
	e.crlDown.Store(true)
	v2 := newValidator(t, Config{Anchors: e.p.Anchors(), Observer: o,
		Revocation: RevocationConfig{PreferCRL: true, SkipIntermediates: true, RefreshInterval: -1}})
	v2.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed["crl"] != 1 {
		t.Errorf("failed CRL fetches %d, want 1", o.failed["crl"])
	}
}
