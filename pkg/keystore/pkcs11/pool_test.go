package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"signsvr.dev/signsvr/pkg/algorithm"
	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
)

const fakePath = "/fake/libvendor.so"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeEnv struct {
	mod   *fakeModule
	tc    TokenConfig
	keys  []KeyConfig
	clock *fakeClock
	dir   string
}

// newFakeEnv makes a fake token labelled "fake" with the given SM2 configuration,
// provisions plans in it through Admin and returns everything New needs.
func newFakeEnv(t *testing.T, sm2cfg *SM2Config, plans []keyPlan) *fakeEnv {
	t.Helper()
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte("4321\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resolved, err := sm2cfg.resolved()
	if err != nil {
		t.Fatal(err)
	}
	mod := newFakeModule(t, resolved)
	mod.addToken(7, "fake", "4321")
	tc := TokenConfig{Module: fakePath, Label: "fake", PINFile: pinFile, PoolSize: 4, SM2: sm2cfg,
		WaitTimeout: 10 * time.Second, RetryInterval: time.Second}
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	keys := provisionKeys(t, t.Context(), mod.opener(fakePath), dir, tc, ca, plans)
	return &fakeEnv{mod: mod, tc: tc, keys: keys, clock: &fakeClock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, dir: dir}
}

func (e *fakeEnv) open(t *testing.T) *Store {
	t.Helper()
	s, err := newStore(Config{Tokens: []TokenConfig{e.tc}, Keys: e.keys}, Options{Now: e.clock.Now}, e.mod.opener(fakePath))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var fakePlans = []keyPlan{
	{"rsa", "RSA-2048", keystore.UsageSign | keystore.UsageDecrypt, false},
	{"p256", "ECDSA-P256", keystore.UsageSign | keystore.UsageDecrypt, true},
	{"sm2-sign", "SM2", keystore.UsageSign, false},
	{"sm2-enc", "SM2", keystore.UsageDecrypt, true},
}

// TestFakeConformanceSM2 runs the conformance suite over vendor SM2 mechanisms the way
// each preset (and a custom configuration) describes them: DER or raw signatures, Z
// computed by the HSM or here, ASN.1 or plain ciphertexts.
func TestFakeConformanceSM2(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *SM2Config
	}{
		{"tass-hsm-z", &SM2Config{Preset: "tass", HSMComputesZ: true}},
		{"sansec-raw", &SM2Config{Preset: "sansec"}},
		{"custom-asn1-c1c2c3", &SM2Config{KeyType: 0x80000ABC, KeyGen: 0x80000AB0, Sign: 0x80000AB1, SignatureFormat: "der", Decrypt: 0x80000AB2, CiphertextFormat: "c1c2c3"}},
		{"custom-asn1", &SM2Config{KeyType: 0x80000ABC, KeyGen: 0x80000AB0, Sign: 0x80000AB1, Decrypt: 0x80000AB2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newFakeEnv(t, tc.cfg, fakePlans)
			s := env.open(t)
			keystoretest.Run(t, s, keystoretest.Options{Require: []keystoretest.Want{
				{Algorithm: "SM2", Usage: keystore.UsageSign}, {Algorithm: "SM2", Usage: keystore.UsageDecrypt},
				{Algorithm: "RSA-2048", Usage: keystore.UsageSign | keystore.UsageDecrypt},
				{Algorithm: "ECDSA-P256", Usage: keystore.UsageSign | keystore.UsageDecrypt},
			}})
			if env.mod.concurrentUse.Load() != 0 {
				t.Fatal("a session was shared")
			}
		})
	}
}

// TestGenerateKeyAlgorithms: Admin.GenerateKey takes the names ListKeys shows, in any
// case, makes a key of that family on the right curve, and refuses any other name.
func TestGenerateKeyAlgorithms(t *testing.T) {
	env := newFakeEnv(t, &SM2Config{Preset: "tass"}, nil)
	adm, err := openAdmin(env.tc, env.mod.opener(fakePath), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	for _, c := range []struct {
		alg  string
		want algorithm.Family
	}{{"ECDSA-P256", algorithm.ECDSAP256}, {"ecdsa-p384", algorithm.ECDSAP384}, {"SM2", algorithm.SM2}, {"RSA-2048", algorithm.RSA}} {
		_, pub, err := adm.GenerateKey(t.Context(), KeySpec{Label: "gen-" + c.alg, Algorithm: c.alg})
		if err != nil {
			t.Fatalf("%s: %v", c.alg, err)
		}
		if got := algorithm.Of(pub); got != c.want {
			t.Errorf("%s: generated a %v key, want %v", c.alg, got, c.want)
		}
	}
	for _, alg := range []string{"ECDSA-P521", "RSA-1024", "RSA", "", "unsupported"} {
		_, _, err := adm.GenerateKey(t.Context(), KeySpec{Label: "bad-" + alg, Algorithm: alg})
		if err == nil || !strings.Contains(err.Error(), "unsupported algorithm") {
			t.Errorf("%q: err = %v, want unsupported algorithm", alg, err)
		}
	}

	plain := newFakeEnv(t, nil, nil)
	adm2, err := openAdmin(plain.tc, plain.mod.opener(fakePath), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer adm2.Close()
	if _, _, err := adm2.GenerateKey(t.Context(), KeySpec{Label: "sm2", Algorithm: "SM2"}); err == nil || !strings.Contains(err.Error(), "sm2 keygen_mechanism") {
		t.Errorf("SM2 without sm2 configuration: err = %v", err)
	}
}

func TestSM2SignerOptionsReflection(t *testing.T) {
	isMsg, uid, err := sm2SignerOptions(sm2.NewSM2SignerOption(true, []byte("alice")))
	if err != nil || !isMsg || string(uid) != "alice" {
		t.Fatalf("got %v %q %v", isMsg, uid, err)
	}
	isMsg, uid, err = sm2SignerOptions(sm2.DefaultSM2SignerOpts)
	if err != nil || !isMsg || string(uid) != "1234567812345678" {
		t.Fatalf("default: got %v %q %v", isMsg, uid, err)
	}
	if isMsg, _, err = sm2SignerOptions(sm2.NewSM2SignerOption(false, nil)); err != nil || isMsg {
		t.Fatalf("digest mode: got %v %v", isMsg, err)
	}
	if isMsg, _, err = sm2SignerOptions(crypto.Hash(0)); err != nil || isMsg {
		t.Fatalf("crypto.Hash(0): got %v %v", isMsg, err)
	}
}

func signOnce(ctx context.Context, s *Store, name string) error {
	k, err := s.Key(ctx, name)
	if err != nil {
		return err
	}
	d := sha256.Sum256([]byte("x"))
	_, err = k.Signer(ctx).Sign(rand.Reader, d[:], crypto.SHA256)
	return err
}

func failOnce(op string, rv ckError) func(string) error {
	var once sync.Once
	return func(o string) error {
		var err error
		if o == op {
			once.Do(func() { err = rv })
		}
		return err
	}
}

// TestRecoverOneShotFaults: a session-fatal error on one operation discards the
// session (and its generation), and the operation is retried on a fresh session,
// logging in again when the token lost the login. The caller sees no error.
func TestRecoverOneShotFaults(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:2])
	for _, tc := range []struct {
		name   string
		inject func(*fakeModule)
		relog  bool
	}{
		{"session handle invalid", func(m *fakeModule) { m.setFault(failOnce("Sign", ckrSessionHandleInvalid)) }, false},
		{"session closed", func(m *fakeModule) { m.setFault(failOnce("Sign", ckrSessionClosed)) }, false},
		{"device error", func(m *fakeModule) { m.setFault(failOnce("Sign", ckrDeviceError)) }, false},
		{"device removed and back", func(m *fakeModule) { m.setFault(failOnce("Sign", ckrDeviceRemoved)) }, false},
		{"token not present and back", func(m *fakeModule) { m.setFault(failOnce("Sign", ckrTokenNotPresent)) }, false},
		{"user not logged in", func(m *fakeModule) { m.logoutAll() }, true},
		{"all sessions closed", func(m *fakeModule) { m.closeAllSessions() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := env.open(t)
			ctx := t.Context()
			for i := 0; i < 4; i++ { // fill the pool
				if err := signOnce(ctx, s, "rsa"); err != nil {
					t.Fatal(err)
				}
			}
			before := s.Stats()[0]
			loginsBefore := env.mod.logins.Load()
			tc.inject(env.mod)
			if err := signOnce(ctx, s, "rsa"); err != nil {
				t.Fatalf("the retry on a fresh session should have hidden the fault: %v", err)
			}
			env.mod.setFault(nil)
			after := s.Stats()[0]
			if after.Discarded <= before.Discarded {
				t.Errorf("no session was discarded: %+v", after)
			}
			if after.Retries != before.Retries+1 {
				t.Errorf("retries %d -> %d, want one retry", before.Retries, after.Retries)
			}
			if tc.relog && env.mod.logins.Load() != loginsBefore+1 {
				t.Errorf("logins %d -> %d, want one new login", loginsBefore, env.mod.logins.Load())
			}
			if after.Down {
				t.Error("the token is marked down after a recovered fault")
			}
			// Every later request works, and no broken session came back.
			for i := 0; i < 20; i++ {
				if err := signOnce(ctx, s, "rsa"); err != nil {
					t.Fatalf("request %d after recovery: %v", i, err)
				}
			}
			if err := s.Health(ctx); err != nil {
				t.Fatalf("Health: %v", err)
			}
		})
	}
}

// TestCircuitBreaker: while the device stays removed requests fail fast with
// ErrUnavailable without touching the token, Health reports it, and after the device
// returns the next probe heals the store without a restart.
func TestCircuitBreaker(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:2])
	s := env.open(t)
	ctx := t.Context()
	if err := signOnce(ctx, s, "p256"); err != nil {
		t.Fatal(err)
	}
	env.mod.setRemoved(true)
	err := signOnce(ctx, s, "p256")
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("sign with the device removed: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "CKR_DEVICE_REMOVED") {
		t.Errorf("error %q does not give the cause", err)
	}
	calls := env.mod.calls.Load()
	for i := 0; i < 50; i++ {
		if err := signOnce(ctx, s, "p256"); !errors.Is(err, keystore.ErrUnavailable) {
			t.Fatalf("fail-fast request %d: %v", i, err)
		}
	}
	if got := env.mod.calls.Load(); got != calls {
		t.Errorf("the open breaker still called the token %d times", got-calls)
	}
	if err := s.Health(ctx); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Health = %v, want ErrUnavailable", err)
	}
	if st := s.Stats()[0]; !st.Down || st.Breaker != BreakerOpen || st.Breaker.String() != "open" {
		t.Errorf("stats with the breaker open: %+v", st)
	}
	// A due probe while still down fails and backs off (2s now).
	env.clock.Advance(1100 * time.Millisecond)
	if err := signOnce(ctx, s, "p256"); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("probe while down: %v", err)
	}
	env.clock.Advance(1100 * time.Millisecond)
	calls = env.mod.calls.Load()
	if err := signOnce(ctx, s, "p256"); !errors.Is(err, keystore.ErrUnavailable) || env.mod.calls.Load() != calls {
		t.Fatalf("the backoff did not double: err %v, calls +%d", err, env.mod.calls.Load()-calls)
	}
	// The device comes back; after the backoff a health check probes and heals.
	env.mod.setRemoved(false)
	env.clock.Advance(time.Second)
	if err := s.Health(ctx); err != nil {
		t.Fatalf("Health after the device came back: %v", err)
	}
	for i := 0; i < 10; i++ {
		if err := signOnce(ctx, s, "p256"); err != nil {
			t.Fatalf("request %d after healing: %v", i, err)
		}
	}
	if st := s.Stats()[0]; st.Down || st.BreakerTrips < 2 || st.Breaker != BreakerClosed || st.InUse != 0 {
		t.Errorf("stats after healing: %+v", st)
	}
}

func TestWaitBoundedByTimeoutAndContext(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:1])
	env.tc.PoolSize = 1
	env.tc.WaitTimeout = 200 * time.Millisecond
	s := env.open(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	env.mod.setFault(func(op string) error {
		if op == "Sign" {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	})
	go signOnce(context.Background(), s, "rsa")
	<-entered
	start := time.Now()
	err := signOnce(t.Context(), s, "rsa")
	if !errors.Is(err, keystore.ErrBusy) {
		t.Fatalf("with the only session busy: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("gave up after %v, before the 200ms wait_timeout", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := signOnce(ctx, s, "rsa"); !errors.Is(err, keystore.ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v", err)
	}
	// Busy is not down.
	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health while busy: %v", err)
	}
	// One wait that timed out; the cancelled call never waited; the health check's
	// wait is not counted.
	if st := s.Stats()[0]; st.InUse != 1 || st.Waits != 1 || st.WaitTimeouts != 1 || st.Breaker != BreakerClosed {
		t.Errorf("stats with the only session busy: %+v", st)
	}
	close(release)
	env.mod.setFault(nil)
	if err := signOnce(t.Context(), s, "rsa"); err != nil {
		t.Fatal(err)
	}
}

func TestStaleHandlesFoundAgain(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:2])
	s := env.open(t)
	if err := signOnce(t.Context(), s, "rsa"); err != nil {
		t.Fatal(err)
	}
	env.mod.reloadObjects()
	if err := signOnce(t.Context(), s, "rsa"); err != nil {
		t.Fatalf("after the token reloaded its objects: %v", err)
	}
	if err := signOnce(t.Context(), s, "p256"); err != nil {
		t.Fatal(err)
	}
}

// TestWrongPINAtRuntime: if the token starts rejecting the PIN, the store stops
// logging in (which would lock the PIN) and stays unavailable.
func TestWrongPINAtRuntime(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:1])
	s := env.open(t)
	if err := signOnce(t.Context(), s, "rsa"); err != nil {
		t.Fatal(err)
	}
	env.mod.mu.Lock()
	env.mod.tokens[7].pin = "changed"
	env.mod.mu.Unlock()
	env.mod.closeAllSessions()
	if err := signOnce(t.Context(), s, "rsa"); !errors.Is(err, keystore.ErrUnavailable) || !strings.Contains(err.Error(), "PIN") {
		t.Fatalf("err = %v", err)
	}
	calls := env.mod.calls.Load()
	env.clock.Advance(time.Hour)
	for i := 0; i < 5; i++ {
		if err := signOnce(t.Context(), s, "rsa"); !errors.Is(err, keystore.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if env.mod.calls.Load() != calls {
		t.Error("the store kept trying the rejected PIN")
	}
}

func TestBadConfigFake(t *testing.T) {
	env := newFakeEnv(t, &SM2Config{Preset: "tass"}, fakePlans)
	other := newFakeEnv(t, nil, []keyPlan{{"rsa", "RSA-2048", keystore.UsageSign, true}})
	wrongPIN := filepath.Join(env.dir, "wrong-pin")
	os.WriteFile(wrongPIN, []byte("0000"), 0o600)

	key := func(name string) KeyConfig {
		for _, k := range env.keys {
			if k.Name == name {
				return k
			}
		}
		t.Fatalf("no key %s", name)
		return KeyConfig{}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		open   opener
		want   []string
	}{
		{"wrong module path", func(c *Config) { c.Tokens[0].Module = "/no/such/lib.so" }, nil, []string{`token "fake"`, "/no/such/lib.so"}},
		{"wrong PIN", func(c *Config) { c.Tokens[0].PINFile = wrongPIN }, nil, []string{`key "rsa"`, "CKR_PIN_INCORRECT"}},
		{"missing PIN file", func(c *Config) { c.Tokens[0].PINFile = "/no/pin" }, nil, []string{`token "fake"`, "pin_file"}},
		{"no PIN source", func(c *Config) { c.Tokens[0].PINFile = "" }, nil, []string{`token "fake"`, "pin"}},
		{"unknown token", func(c *Config) { c.Tokens[0].Label = "nope" }, nil, []string{`token "nope"`, "not found"}},
		{"missing object", func(c *Config) { c.Keys[0].URI = "pkcs11:token=fake;object=ghost" }, nil, []string{`key "rsa"`, "no private key"}},
		{"cert does not match key (RSA)", func(c *Config) {
			c.Keys[0] = key("rsa")
			c.Keys[0].CertFile = other.keys[0].CertFile
		}, nil, []string{`key "rsa"`, "does not match"}},
		{"cert does not match key (SM2)", func(c *Config) {
			k := key("sm2-enc")
			sk := key("sm2-sign")
			k.URI = sk.URI
			k.Usages = []string{"sign"}
			c.Keys = []KeyConfig{k}
		}, nil, []string{`key "sm2-enc"`, "does not match"}},
		{"key names another token", func(c *Config) { c.Keys[0].URI = "pkcs11:token=other;object=rsa" }, nil, []string{`key "rsa"`, `"other"`}},
		{"pin-value in URI", func(c *Config) { c.Keys[0].URI += "?pin-value=4321" }, nil, []string{`key "rsa"`, "pin-value"}},
		{"bad URI", func(c *Config) { c.Keys[0].URI = "pkcs11:token=fake;object=a b" }, nil, []string{`key "rsa"`, "percent-encoded"}},
		{"no usages", func(c *Config) { c.Keys[0].Usages = nil }, nil, []string{`key "rsa"`, "usage"}},
		{"duplicate key", func(c *Config) { c.Keys = append(c.Keys, c.Keys[0]) }, nil, []string{`key "rsa"`, "twice"}},
		{"SM2 key without sm2 config", func(c *Config) { c.Tokens[0].SM2 = nil }, nil, []string{`key "sm2-`, "unsupported key type"}},
		{"unknown preset", func(c *Config) { c.Tokens[0].SM2 = &SM2Config{Preset: "acme"} }, nil, []string{`token "fake"`, "acme"}},
		{"pool larger than token allows", func(c *Config) { c.Tokens[0].PoolSize = 50 }, func(p string) (module, error) {
			env.mod.mu.Lock()
			env.mod.tokens[7].maxSessions = 10
			env.mod.mu.Unlock()
			return env.mod, nil
		}, []string{`token "fake"`, "maximum of 10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Tokens: []TokenConfig{env.tc}, Keys: append([]KeyConfig(nil), env.keys...)}
			tc.mutate(&cfg)
			open := tc.open
			if open == nil {
				open = env.mod.opener(fakePath)
			}
			s, err := newStore(cfg, Options{}, open)
			env.mod.mu.Lock()
			env.mod.tokens[7].maxSessions = 0
			env.mod.mu.Unlock()
			if err == nil {
				s.Close()
				t.Fatal("newStore accepted the configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "4321") {
				t.Errorf("error %q leaks the PIN", err)
			}
		})
	}
}

func TestDefaultPoolSize(t *testing.T) {
	for _, tc := range []struct {
		max   uint
		procs int
		want  int
	}{
		{ckEffectivelyInfinite, 2, 4},
		{ckUnavailableInformation, 4, 8},
		{3, 8, 3},
		{100, 1, 2},
	} {
		if got := defaultPoolSize(tc.max, tc.procs); got != tc.want {
			t.Errorf("defaultPoolSize(%d, %d) = %d, want %d", tc.max, tc.procs, got, tc.want)
		}
	}
}

func TestNoCgoMessage(t *testing.T) {
	if !strings.Contains(ErrNoCgo.Error(), "PKCS#11 support needs a cgo build") {
		t.Fatal(ErrNoCgo)
	}
}

// TestTokenVanishesAndComesBack: the token disappears from the slot list (its directory
// re-initialised, an HSM restarted); requests fail with ErrUnavailable; once it is back,
// the probe re-initialises the library, finds the slot and the handles again, and the
// store serves without a restart.
func TestTokenVanishesAndComesBack(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:2])
	s := env.open(t)
	ctx := t.Context()
	if err := signOnce(ctx, s, "rsa"); err != nil {
		t.Fatal(err)
	}
	env.mod.hideToken(7)
	if err := signOnce(ctx, s, "rsa"); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("with the token gone: %v", err)
	}
	env.clock.Advance(2 * time.Second)
	if err := s.Health(ctx); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Health with the token gone: %v", err)
	}
	env.mod.comeBack(7)
	env.clock.Advance(time.Minute)
	if err := signOnce(ctx, s, "rsa"); err != nil {
		t.Fatalf("after the token came back: %v", err)
	}
	if err := signOnce(ctx, s, "p256"); err != nil {
		t.Fatal(err)
	}
	if env.mod.reinits.Load() == 0 || s.Stats()[0].Reinits == 0 {
		t.Error("the library was not re-initialised")
	}
	if err := s.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTokenCaughtHalfInitialised is the sequence SoftHSM2 produced under load: the
// token is re-initialised under the store (it vanishes, then a new one is made: first the
// token, then its user PIN), and the probe re-initialises the library in between. The
// library keeps that half-made view, so every login fails with
// CKR_USER_PIN_NOT_INITIALIZED, even after the token is whole again, until the library is
// re-initialised once more. The store must do that and serve again.
func TestTokenCaughtHalfInitialised(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:2])
	s := env.open(t)
	ctx := t.Context()
	if err := signOnce(ctx, s, "rsa"); err != nil {
		t.Fatal(err)
	}
	env.mod.hideToken(7)
	env.mod.atNextReinit(func(tokens map[uint]*fakeToken) { tokens[7].hidden, tokens[7].pinUnset = false, true })
	if err := signOnce(ctx, s, "rsa"); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("with the token gone: %v", err)
	}
	env.clock.Advance(time.Minute)
	err := signOnce(ctx, s, "rsa")
	if !errors.Is(err, keystore.ErrUnavailable) || !strings.Contains(err.Error(), "CKR_USER_PIN_NOT_INITIALIZED") {
		t.Fatalf("with the library holding the half-made token: %v", err)
	}
	if st := s.Stats()[0]; st.Reinits != 1 || !st.Down {
		t.Fatalf("stats after the first probe: %+v", st)
	}
	// The token is whole again (its PIN set, its keys restored); the library shows it
	// from its next re-initialisation on.
	env.mod.atNextReinit(func(tokens map[uint]*fakeToken) { tokens[7].pinUnset = false })
	env.clock.Advance(time.Minute)
	if err := signOnce(ctx, s, "rsa"); err != nil {
		t.Fatalf("after the token was whole again: %v (stats %+v)", err, s.Stats()[0])
	}
	if err := signOnce(ctx, s, "p256"); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats()[0]; st.Reinits != 2 || st.Down {
		t.Errorf("stats after healing: %+v", st)
	}
	if err := s.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFailedProbeReinitialises: a library that keeps failing with an error of no known
// class (here CKR_FUNCTION_FAILED on every C_OpenSession until it is re-initialised) is
// re-initialised after a failed probe, so the breaker cannot stay open for good while
// the token is healthy.
func TestFailedProbeReinitialises(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:1])
	s := env.open(t)
	ctx := t.Context()
	if err := signOnce(ctx, s, "rsa"); err != nil {
		t.Fatal(err)
	}
	var healed atomic.Bool
	env.mod.setFault(func(op string) error {
		if op == "OpenSession" && !healed.Load() {
			return ckrFunctionFailed
		}
		return nil
	})
	env.mod.atNextReinit(func(map[uint]*fakeToken) { healed.Store(true) })
	env.mod.closeAllSessions()
	if err := signOnce(ctx, s, "rsa"); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("with C_OpenSession failing: %v", err)
	}
	env.clock.Advance(time.Minute)
	if err := signOnce(ctx, s, "rsa"); !errors.Is(err, keystore.ErrUnavailable) || s.Stats()[0].Reinits != 0 {
		t.Fatalf("first probe: %v (stats %+v), want ErrUnavailable and no re-initialisation yet", err, s.Stats()[0])
	}
	env.clock.Advance(time.Minute)
	if err := signOnce(ctx, s, "rsa"); err != nil {
		t.Fatalf("second probe: %v (stats %+v)", err, s.Stats()[0])
	}
	if st := s.Stats()[0]; st.Reinits != 1 || st.Down {
		t.Errorf("stats after healing: %+v", st)
	}
}

// gatedModule holds every C_Sign at a gate until the test opens it, so that several
// requests are in flight when a fault hits.
type gatedModule struct {
	*fakeModule
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedModule) Sign(h sessionHandle, m mechanism, o objectHandle, d []byte) ([]byte, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.fakeModule.Sign(h, m, o, d)
}

// TestInFlightFailuresDoNotDelayTheProbe: requests in flight when the device fails all
// fail, but only the first opens the breaker; the others must not push the first probe
// further out, so the store heals after one RetryInterval.
func TestInFlightFailuresDoNotDelayTheProbe(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:1])
	g := &gatedModule{fakeModule: env.mod, entered: make(chan struct{}, 4), gate: make(chan struct{})}
	close(g.gate) // open while the store loads
	s, err := newStore(Config{Tokens: []TokenConfig{env.tc}, Keys: env.keys}, Options{Now: env.clock.Now},
		func(string) (module, error) { return g, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for len(g.entered) > 0 {
		<-g.entered
	}
	g.gate = make(chan struct{})
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() { errs <- signOnce(context.Background(), s, "rsa") }()
	}
	for i := 0; i < 4; i++ {
		<-g.entered
	}
	env.mod.setRemoved(true)
	close(g.gate)
	for i := 0; i < 4; i++ {
		if err := <-errs; !errors.Is(err, keystore.ErrUnavailable) {
			t.Fatalf("request in flight: %v, want ErrUnavailable", err)
		}
	}
	if st := s.Stats()[0]; st.BreakerTrips != 4 {
		t.Fatalf("stats: %+v, want 4 trips", st)
	}
	env.mod.setRemoved(false)
	env.clock.Advance(env.tc.RetryInterval + time.Millisecond)
	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health one retry interval after the failures: %v", err)
	}
	if err := signOnce(t.Context(), s, "rsa"); err != nil {
		t.Fatal(err)
	}
}

func TestSM2Presets(t *testing.T) {
	for _, name := range []string{"tass", "SANSEC", "luna"} {
		p, ok := SM2Preset(name)
		if !ok || p.KeyType == 0 || p.Sign == 0 {
			t.Errorf("preset %s: %+v", name, p)
		}
		if _, err := (&SM2Config{Preset: name}).resolved(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if p, _ := SM2Preset("luna"); p.KeyType != 0x80000016 {
		t.Error("luna key type")
	}
	if p, _ := SM2Preset("tass"); p.KeyType != 0x80000004 {
		t.Error("tass key type")
	}
	for _, bad := range []*SM2Config{
		{Preset: "acme"}, {KeyType: 1}, {Sign: 1, SignatureFormat: "pem"}, {Sign: 1, CiphertextFormat: "xml"}, {Sign: 1, HSMComputesZ: true},
	} {
		if _, err := bad.resolved(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestSessionBorrowedBeforeReinitIsForgotten: a session taken from the pool before the
// library was re-initialised died with the library's state, and its handle may already
// name a new session (SoftHSM2 numbers sessions from 1 again). Given back, it is
// forgotten: closing it would close the new session under whoever holds it.
func TestSessionBorrowedBeforeReinitIsForgotten(t *testing.T) {
	env := newFakeEnv(t, nil, fakePlans[:1])
	s := env.open(t)
	tok := s.tokens[0]
	old, err := tok.get()
	if err != nil {
		t.Fatal(err)
	}
	tok.mu.Lock()
	tok.needReinit = true
	tok.mu.Unlock()
	tok.maybeReinit()
	env.mod.mu.Lock()
	env.mod.nextH = uint(old.h) - 1 // the library hands out the same number again
	env.mod.mu.Unlock()
	fresh, err := tok.get()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.h != old.h {
		t.Fatalf("the new session is %d, want the old number %d", fresh.h, old.h)
	}
	tok.put(fresh)
	tok.put(old)
	env.mod.mu.Lock()
	_, open := env.mod.sessions[fresh.h]
	env.mod.mu.Unlock()
	if !open {
		t.Fatal("giving back the session of before the re-initialisation closed the new session of the same number")
	}
	if err := signOnce(t.Context(), s, "rsa"); err != nil {
		t.Fatalf("sign on the pooled session: %v (stats %+v)", err, s.Stats()[0])
	}
	if st := s.Stats()[0]; st.Discarded != 0 {
		t.Errorf("stats %+v: a session was discarded", st)
	}
}
