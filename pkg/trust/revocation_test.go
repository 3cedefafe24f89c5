package trust

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"signsvr.dev/signsvr/internal/testca"
)

// pkiEnv is a PKI whose certificates point at a loopback CRL server and a real
// `openssl ocsp` responder.
type pkiEnv struct {
	p        *testca.PKI
	crlSrv   *httptest.Server
	crl      atomic.Pointer[[]byte] // served at /inter.crl
	rootCRL  atomic.Pointer[[]byte] // served at /root.crl
	crlHits  atomic.Int64
	crlDown  atomic.Bool   // /inter.crl answers 503
	hang     chan struct{} // closed at cleanup; /hang blocks on it
	ocspAddr string
	ocsp     *testca.Responder
}

func newPKIEnv(t *testing.T, algo testca.Algo, startOCSP bool) *pkiEnv {
	t.Helper()
	e := &pkiEnv{hang: make(chan struct{})}
	e.crlSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/inter.crl":
			e.crlHits.Add(1)
			if e.crlDown.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			w.Write(*e.crl.Load())
		case "/root.crl":
			w.Write(*e.rootCRL.Load())
		case "/hang":
			select {
			case <-e.hang:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(e.hang); e.crlSrv.Close() })
	e.ocspAddr = testca.FreePort(t)
	e.p = testca.New(t, testca.Options{
		Algo:       algo,
		CRLURL:     e.crlSrv.URL + "/inter.crl",
		RootCRLURL: e.crlSrv.URL + "/root.crl",
		OCSPURL:    "http://" + e.ocspAddr,
	})
	e.setCRL(e.p.CRL)
	e.rootCRL.Store(&e.p.RootCRL)
	if startOCSP {
		e.ocsp = e.p.StartOCSP(t, e.ocspAddr, testca.ResponderOptions{})
	}
	return e
}

func (e *pkiEnv) setCRL(b []byte) { e.crl.Store(&b) }

func (e *pkiEnv) inter() []*smx509.Certificate { return []*smx509.Certificate{e.p.Intermediate.Cert} }

// TestRevocation runs every verdict with revocation through OCSP and through CRLs,
// for RSA, ECDSA and SM2.
func TestRevocation(t *testing.T) {
	for _, algo := range testca.Algos {
		t.Run(string(algo), func(t *testing.T) {
			t.Parallel()
			e := newPKIEnv(t, algo, true)
			now := time.Now()
			for _, mode := range []struct {
				name      string
				preferCRL bool
				leafBy    RevocationMethod
			}{{"ocsp", false, RevocationOCSP}, {"crl", true, RevocationCRL}} {
				t.Run(mode.name, func(t *testing.T) {
					v := newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: RevocationConfig{PreferCRL: mode.preferCRL, HardFail: true}})
					tests := []struct {
						name    string
						c       *testca.Cert
						purpose Purpose
						status  Status
						reason  string
					}{
						{"good", e.p.Good, PurposeSign, StatusGood, ReasonOK},
						{"encrypt", e.p.Encrypt, PurposeEncrypt, StatusGood, ReasonOK},
						{"revoked", e.p.Revoked, PurposeSign, StatusRevoked, ReasonRevoked},
						{"expired", e.p.Expired, PurposeSign, StatusExpired, ReasonExpired},
						{"wrong usage", e.p.WrongUsage, PurposeSign, StatusWrongUsage, ReasonKeyUsage},
					}
					for _, tc := range tests {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						vd := v.Validate(ctx, tc.c.Cert, e.inter(), now, tc.purpose)
						cancel()
						if vd.Status != tc.status || vd.Reason != tc.reason {
							t.Fatalf("%s: got %v; checks %+v", tc.name, vd, vd.Checks)
						}
						switch tc.status {
						case StatusGood, StatusRevoked:
							if len(vd.Checks) != 2 {
								t.Fatalf("%s: %d revocation checks, want leaf and intermediate", tc.name, len(vd.Checks))
							}
							if vd.Checks[0].Method != mode.leafBy || vd.Revocation != mode.leafBy {
								t.Fatalf("%s: leaf checked by %v (summary %v), want %v: %+v", tc.name, vd.Checks[0].Method, vd.Revocation, mode.leafBy, vd.Checks)
							}
							if vd.Checks[1].Method != RevocationCRL { // the intermediate has only the root's CRL
								t.Fatalf("%s: intermediate checked by %v", tc.name, vd.Checks[1].Method)
							}
							if vd.Checks[0].NextUpdate.IsZero() {
								t.Fatalf("%s: no nextUpdate recorded", tc.name)
							}
						}
						if tc.status == StatusRevoked {
							if vd.RevocationReason != ReasonCodeKeyCompromise || vd.RevokedAt.IsZero() || vd.RevokedAt.After(time.Now()) {
								t.Fatalf("revoked: reason %v at %v", vd.RevocationReason, vd.RevokedAt)
							}
						}
					}
				})
			}
		})
	}
}

// TestRevocationUnavailable: responder down and CRL unreachable, under both
// policies; a hanging source ends with the request's deadline.
func TestRevocationUnavailable(t *testing.T) {
	e := newPKIEnv(t, testca.ECDSA, false) // no responder on the OCSP port
	e.crlDown.Store(true)
	now := time.Now()
	for _, hard := range []bool{false, true} {
		v := newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: RevocationConfig{HardFail: hard}})
		start := time.Now()
		vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign)
		if hard {
			if vd.Status != StatusUnknown || vd.Reason != ReasonRevocationUnavailable || vd.Revocation != RevocationFailed {
				t.Fatalf("hard-fail: %v (%v)", vd, vd.Revocation)
			}
		} else {
			if vd.Status != StatusGood || vd.Reason != ReasonRevocationSoftFailed || vd.Revocation != RevocationSoftFailed {
				t.Fatalf("soft-fail: %v (%v)", vd, vd.Revocation)
			}
		}
		if vd.Checks[0].Error == "" {
			t.Fatal("no reason recorded for the failure")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("took %v with the sources refusing connections", d)
		}
		// A revoked certificate is still unknown / soft-failed: nothing says otherwise.
		vd = v.Validate(context.Background(), e.p.Revoked.Cert, e.inter(), now, PurposeSign)
		if hard && vd.Status != StatusUnknown || !hard && vd.Status != StatusGood {
			t.Fatalf("revoked with sources down (hard=%v): %v", hard, vd)
		}
	}

	// A source that never answers: the request's deadline bounds the wait.
	for _, hard := range []bool{false, true} {
		v := newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: RevocationConfig{
			HardFail: hard, OCSPResponder: e.crlSrv.URL + "/hang", FetchTimeout: time.Minute,
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		vd := v.Validate(ctx, e.p.Good.Cert, e.inter(), now, PurposeSign)
		d := time.Since(start)
		cancel()
		// The responder never answers and the fetch timeout is a minute: returning
		// well before that, however slow the machine, means the deadline ended it.
		if d > 30*time.Second {
			t.Fatalf("hard=%v: Validate took %v past a 300ms deadline", hard, d)
		}
		want := StatusGood
		if hard {
			want = StatusUnknown
		}
		if vd.Status != want {
			t.Fatalf("hard=%v: hanging responder gave %v", hard, vd)
		}
	}
}

// TestOCSPResponders: issuer-signed responses, delegated responders, a responder
// of another CA, nonces.
func TestOCSPResponders(t *testing.T) {
	e := newPKIEnv(t, testca.ECDSA, false) // RSA responses are covered by TestRevocation
	other := testca.New(t, testca.Options{Algo: testca.ECDSA, Name: "Other"})
	e.crlDown.Store(true) // OCSP only
	now := time.Now()
	only := func(t *testing.T, cfg RevocationConfig) *Validator {
		cfg.HardFail = true
		cfg.SkipIntermediates = true
		return newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: cfg, CacheSize: -1})
	}
	t.Run("issuer signs", func(t *testing.T) {
		addr := testca.FreePort(t)
		e.p.StartOCSP(t, addr, testca.ResponderOptions{Signer: e.p.Intermediate})
		v := only(t, RevocationConfig{OCSPResponder: "http://" + addr, RequireOCSPNonce: true})
		if vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign); vd.Status != StatusGood || vd.Revocation != RevocationOCSP {
			t.Fatalf("good: %v %+v", vd, vd.Checks)
		}
		if vd := v.Validate(context.Background(), e.p.Revoked.Cert, e.inter(), now, PurposeSign); vd.Status != StatusRevoked || vd.Revocation != RevocationOCSP {
			t.Fatalf("revoked: %v %+v", vd, vd.Checks)
		}
	})
	t.Run("delegated responder without OCSPSigning", func(t *testing.T) {
		addr := testca.FreePort(t)
		e.p.StartOCSP(t, addr, testca.ResponderOptions{Signer: e.p.Good}) // a plain end-entity certificate
		v := only(t, RevocationConfig{OCSPResponder: "http://" + addr})
		vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign)
		if vd.Status != StatusUnknown || !strings.Contains(vd.Checks[0].Error, "OCSPSigning") {
			t.Fatalf("unauthorized responder accepted: %v %+v", vd, vd.Checks)
		}
	})
	t.Run("responder of another CA", func(t *testing.T) {
		addr := testca.FreePort(t)
		other.StartOCSP(t, addr, testca.ResponderOptions{})
		v := only(t, RevocationConfig{OCSPResponder: "http://" + addr})
		vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign)
		if vd.Status != StatusUnknown {
			t.Fatalf("foreign responder accepted: %v %+v", vd, vd.Checks)
		}
		// Trusted explicitly, its signature is fine, but it does not know the certificate.
		v = only(t, RevocationConfig{OCSPResponder: "http://" + addr, OCSPResponderCerts: []*smx509.Certificate{other.OCSPSigner.Cert}})
		vd = v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign)
		if vd.Status != StatusUnknown || !strings.Contains(vd.Checks[0].Error, "does not know the certificate") {
			t.Fatalf("foreign responder answered: %v %+v", vd, vd.Checks)
		}
	})
}

// TestCRLSources: a CRL of another CA at the distribution point, a configured
// static CRL, a configured CRL URL.
func TestCRLSources(t *testing.T) {
	e := newPKIEnv(t, testca.SM2, false)
	other := testca.New(t, testca.Options{Algo: testca.SM2, Name: "Other"})
	now := time.Now()
	crlOnly := RevocationConfig{HardFail: true, PreferCRL: true, OCSPResponder: "http://" + testca.FreePort(t)}

	e.setCRL(other.CRL)
	v := newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: crlOnly})
	if vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign); vd.Status != StatusUnknown {
		t.Fatalf("CRL of another CA accepted: %v", vd)
	}
	e.setCRL(e.p.CRL)

	static := crlOnly
	static.CRLs = [][]byte{other.CRL, e.p.CRL}
	static.SkipIntermediates = true
	v = newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: static})
	hits := e.crlHits.Load()
	if vd := v.Validate(context.Background(), e.p.Revoked.Cert, e.inter(), now, PurposeSign); vd.Status != StatusRevoked || vd.Checks[0].Source != "config" {
		t.Fatalf("static CRL: %v %+v", vd, vd.Checks)
	}
	if vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), now, PurposeSign); vd.Status != StatusGood {
		t.Fatalf("static CRL: %v %+v", vd, vd.Checks)
	}
	if e.crlHits.Load() != hits {
		t.Fatal("static CRL configured, but the distribution point was fetched")
	}
	if _, err := New(Config{Anchors: e.p.Anchors(), Revocation: RevocationConfig{CRLs: [][]byte{[]byte("junk")}}}); err == nil {
		t.Fatal("junk CRL accepted in config")
	}

	// A certificate without a distribution point, with a CRL URL from config.
	bare := e.p.Issue("bare", testca.Profile{KeyUsage: "digitalSignature", NoRevocationInfo: true})
	cfgURL := RevocationConfig{HardFail: true, SkipIntermediates: true, CRLURLs: []string{e.crlSrv.URL + "/inter.crl"}}
	v = newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: cfgURL})
	if vd := v.Validate(context.Background(), bare.Cert, e.inter(), now, PurposeSign); vd.Status != StatusGood || vd.Revocation != RevocationCRL {
		t.Fatalf("configured CRL URL: %v %+v", vd, vd.Checks)
	}
	// No source at all: not checked, or unavailable when a source is required.
	v = newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: RevocationConfig{HardFail: true, SkipIntermediates: true}})
	if vd := v.Validate(context.Background(), bare.Cert, e.inter(), now, PurposeSign); vd.Status != StatusGood || vd.Revocation != RevocationNotChecked {
		t.Fatalf("no source: %v", vd)
	}
	v = newValidator(t, Config{Anchors: e.p.Anchors(), Revocation: RevocationConfig{HardFail: true, SkipIntermediates: true, RequireSource: true}})
	if vd := v.Validate(context.Background(), bare.Cert, e.inter(), now, PurposeSign); vd.Status != StatusUnknown {
		t.Fatalf("no source, source required: %v", vd)
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ t atomic.Pointer[time.Time] }

func (c *fakeClock) Now() time.Time      { return *c.t.Load() }
func (c *fakeClock) Set(t time.Time)     { c.t.Store(&t) }
func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// TestCaching: verdicts and CRLs are reused until nextUpdate, then fetched again.
func TestCaching(t *testing.T) {
	e := newPKIEnv(t, testca.SM2, false)
	clk := &fakeClock{}
	clk.Set(time.Now())
	v := newValidator(t, Config{
		Anchors: e.p.Anchors(), Now: clk.Now,
		Revocation: RevocationConfig{HardFail: true, PreferCRL: true, SkipIntermediates: true, ClockSkew: time.Second, RefreshInterval: -1},
	})
	at := clk.Now().Add(-time.Minute) // before the revocation below (OpenSSL records whole seconds)
	for i := 0; i < 5; i++ {
		if vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), at, PurposeSign); vd.Status != StatusGood {
			t.Fatal(vd)
		}
	}
	if n := e.crlHits.Load(); n != 1 {
		t.Fatalf("%d CRL fetches for 5 validations", n)
	}
	// Another certificate of the same issuer uses the cached CRL.
	if vd := v.Validate(context.Background(), e.p.Revoked.Cert, e.inter(), at, PurposeSign); vd.Status != StatusRevoked {
		t.Fatal(vd)
	}
	if n := e.crlHits.Load(); n != 1 {
		t.Fatalf("%d CRL fetches", n)
	}
	// Past nextUpdate (24h): the verdict and the CRL are stale; a new CRL is fetched.
	e.p.Revoke(e.p.Good, "superseded")
	e.setCRL(e.p.RegenerateCRL(48 * time.Hour))
	clk.Add(25 * time.Hour)
	vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), clk.Now(), PurposeSign)
	if vd.Status != StatusRevoked || vd.RevocationReason != ReasonCodeSuperseded {
		t.Fatalf("after nextUpdate: %v", vd)
	}
	if n := e.crlHits.Load(); n != 2 {
		t.Fatalf("%d CRL fetches after nextUpdate", n)
	}
	// Superseded is not a compromise: at a time before the revocation it was good.
	vd = v.Validate(context.Background(), e.p.Good.Cert, e.inter(), at, PurposeSign)
	if vd.Status != StatusGood || vd.RevokedAt.IsZero() {
		t.Fatalf("before a superseded revocation: %v (revoked at %v)", vd, vd.RevokedAt)
	}
}

// TestBackgroundRefresh: a CRL near nextUpdate is refetched in the background, a
// changed CRL drops cached verdicts, and Close stops the refresher. The test's clock
// and the refresher's ticks are its own: each tick is one pass of the refresher, and
// a tick is taken only when the pass before it has finished.
func TestBackgroundRefresh(t *testing.T) {
	e := newPKIEnv(t, testca.ECDSA, false)
	e.setCRL(e.p.RegenerateCRL(time.Hour))
	clk := &fakeClock{}
	clk.Set(time.Now())
	ticks := make(chan time.Time)
	v, err := New(Config{
		// Verdicts outlive the clock's jumps: only the changed CRL can drop them.
		Anchors: e.p.Anchors(), Now: clk.Now, CacheTTL: 2 * time.Hour,
		Revocation: RevocationConfig{HardFail: true, PreferCRL: true, SkipIntermediates: true, ClockSkew: time.Second,
			RefreshInterval: time.Minute, refreshTicks: ticks},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	at := clk.Now()
	if vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), at, PurposeSign); vd.Status != StatusGood {
		t.Fatal(vd)
	}
	pass := func() {
		t.Helper()
		select {
		case ticks <- clk.Now():
		case <-time.After(time.Minute):
			t.Fatal("the refresher did not take a tick")
		}
	}
	// Far from nextUpdate, a pass fetches nothing.
	pass()
	pass()
	if n := e.crlHits.Load(); n != 1 {
		t.Fatalf("%d CRL fetches before the CRL neared its nextUpdate", n)
	}
	e.p.Revoke(e.p.Good, "keyCompromise")
	e.setCRL(e.p.RegenerateCRL(2 * time.Hour))
	// Five minutes before nextUpdate (the margin is a tenth of the CRL's lifetime):
	// the next pass refetches, and the one after it starts only once that is stored.
	clk.Add(55 * time.Minute)
	pass()
	pass()
	if n := e.crlHits.Load(); n != 2 {
		t.Fatalf("%d CRL fetches after a pass near nextUpdate, want 2", n)
	}
	if vd := v.Validate(context.Background(), e.p.Good.Cert, e.inter(), at, PurposeSign); vd.Status != StatusRevoked {
		t.Fatalf("after refresh: %v", vd)
	}
	if n := e.crlHits.Load(); n != 2 {
		t.Fatal("the request fetched the CRL itself")
	}
	v.Close()
	select {
	case ticks <- clk.Now():
		t.Fatal("refresher still running after Close")
	default:
	}
}
