//go:build cgo

package pkcs11

//lint:file-ignore SA1019 these tests exercise RSA PKCS#1 v1.5 key transport, which CMS peers write and the server reads with implicit rejection.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
	p11 "github.com/miekg/pkcs11"

	"signsvr.dev/signsvr/pkg/keystore"
	"signsvr.dev/signsvr/pkg/keystore/keystoretest"
)

// loadOp is one verified operation: a signature checked with the public key, or an
// ECDH secret compared with the one computed from the public key.
func loadOp(ctx context.Context, s *Store, i int) error {
	names := []string{"rsa-sign", "p256-sign", "p256-agree", "rsa-decrypt"}
	k, err := s.Key(ctx, names[i%len(names)])
	if err != nil {
		return err
	}
	d := sha256.Sum256([]byte(fmt.Sprint("load ", i)))
	switch k.Name() {
	case "rsa-sign":
		sig, err := k.Signer(ctx).Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if rsa.VerifyPKCS1v15(k.Public().(*rsa.PublicKey), crypto.SHA256, d[:], sig) != nil {
			return errors.New("bad RSA signature")
		}
	case "p256-sign":
		sig, err := k.Signer(ctx).Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
			return errors.New("bad ECDSA signature")
		}
	case "p256-agree":
		pub, _ := k.Public().(*ecdsa.PublicKey).ECDH()
		eph, _ := pub.Curve().GenerateKey(rand.Reader)
		want, _ := eph.ECDH(pub)
		got, err := k.KeyAgreer(ctx).ECDH(eph.PublicKey())
		if err != nil {
			return err
		}
		if string(got) != string(want) {
			return errors.New("bad ECDH secret")
		}
	case "rsa-decrypt":
		ct, _ := rsa.EncryptPKCS1v15(rand.Reader, k.Public().(*rsa.PublicKey), d[:])
		pt, err := k.Decrypter(ctx).Decrypt(rand.Reader, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 32})
		if err != nil {
			return err
		}
		if string(pt) != string(d[:]) {
			return errors.New("wrong plaintext")
		}
	}
	return nil
}

type softEnv struct {
	hsm     *softHSM
	tc      TokenConfig
	keys    []KeyConfig
	checked *checkedModule
	store   *Store
}

func newSoftEnv(t *testing.T, label string, pool int) *softEnv {
	hsm := newSoftHSM(t)
	hsm.initToken(label)
	tc := hsm.tokenConfig(label)
	tc.PoolSize = pool
	tc.RetryInterval = 50 * time.Millisecond
	tc.WaitTimeout = 5 * time.Second
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	keys := hsm.provision(t.Context(), tc, ca, softPlans)
	e := &softEnv{hsm: hsm, tc: tc, keys: keys}
	s, err := newStore(Config{Tokens: []TokenConfig{tc}, Keys: keys}, Options{}, func(p string) (module, error) {
		m, err := openModule(p)
		if err != nil {
			return nil, err
		}
		e.checked = newChecked(t, m)
		return e.checked, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.store = s
	return e
}

// TestSoftHSMConcurrentLoadNeverSharesSession: many more goroutines than sessions,
// every result verified; the instrumented seam asserts no session is ever in two
// calls at once and no more sessions than the pool size are ever in use.
func TestSoftHSMConcurrentLoadNeverSharesSession(t *testing.T) {
	e := newSoftEnv(t, "load", 3)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if err := loadOp(t.Context(), e.store, g*40+i); err != nil {
					failed.Add(1)
					t.Errorf("goroutine %d op %d: %v", g, i, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if e.checked.violations.Load() != 0 || failed.Load() != 0 {
		t.Fatal("failures under load")
	}
	if m := e.checked.maxInUse(); m > 3 {
		t.Fatalf("%d sessions in use at once with a pool of 3", m)
	}
	st := e.store.Stats()[0]
	if st.Logins != 1 || st.Opened > 3 {
		t.Errorf("stats %+v: want 1 login and at most 3 sessions opened", st)
	}
}

// closeAllSessions calls C_CloseAllSessions on the token's slot through a second handle
// of the library, as another part of the process could. It holds the library's
// exclusive lock for that instant: libsofthsm2 2.6.1 segfaults when C_CloseAllSessions
// frees a session another thread is inside C_Sign with (seen in this test), a race in
// the library that no pool can prevent. The sessions are still closed under the pool,
// between its calls, which is what the pool must survive.
func closeAllSessions(t *testing.T, label string) {
	t.Helper()
	libraries.Lock()
	lib := libraries.m[softhsmModule]
	libraries.Unlock()
	if lib == nil {
		t.Fatal("SoftHSM2 is not loaded")
	}
	lib.rw.Lock()
	defer lib.rw.Unlock()
	ctx := p11.New(softhsmModule)
	if ctx == nil {
		t.Fatal("cannot load SoftHSM2 a second time")
	}
	defer ctx.Destroy()
	if err := ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && strings.TrimRight(ti.Label, " ") == label {
			if err := ctx.CloseAllSessions(s); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("token %q not found", label)
}

// eventually polls cond on a ticker until it holds. The overall deadline is there to
// end a test whose store never recovers, not to time the recovery.
func eventually(t *testing.T, what string, s *Store, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s (stats %+v)", what, s.Stats()[0])
		case <-tick.C:
		}
	}
}

// TestSoftHSMFaultsUnderLoad produces real faults in SoftHSM2 under load: every session
// closed under the pool, then the token directory re-initialised (a fresh, empty token
// of the same label) and later restored. Requests in flight may fail with
// ErrUnavailable; afterwards the store serves again without a restart and no later
// request fails.
func TestSoftHSMFaultsUnderLoad(t *testing.T) {
	e := newSoftEnv(t, "faults", 3)
	ctx := t.Context()
	stop := make(chan struct{})
	var (
		wg                    sync.WaitGroup
		ok, unavailable, busy atomic.Int64
		otherErr              atomic.Value
	)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// While the store is unavailable a worker retries on each tick instead of
			// spinning on fail-fast answers; how often does not matter to the test.
			retry := time.NewTicker(5 * time.Millisecond)
			defer retry.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := loadOp(ctx, e.store, g*100000+i)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, keystore.ErrUnavailable):
					unavailable.Add(1)
					select {
					case <-stop:
						return
					case <-retry.C:
					}
				case errors.Is(err, keystore.ErrBusy):
					busy.Add(1)
				default:
					otherErr.Store(fmt.Errorf("goroutine %d: %w", g, err))
				}
			}
		}(g)
	}
	waitOK := func(what string) {
		t.Helper()
		n := ok.Load()
		eventually(t, what+": the store did not serve again", e.store, func() bool { return ok.Load() >= n+50 })
	}

	waitOK("warm-up")
	for i := 0; i < 3; i++ {
		closeAllSessions(t, "faults")
		waitOK("after C_CloseAllSessions")
	}
	afterClose := e.store.Stats()[0]
	if afterClose.Discarded == 0 || afterClose.Logins < 2 {
		t.Errorf("C_CloseAllSessions did not make the pool discard sessions and log in again: %+v", afterClose)
	}

	// Re-initialise the token directory: the real token disappears and a new, empty
	// token with the same label takes its place. The new token is made in a directory
	// of its own and then swapped in: softhsm2-util writing a token that the library
	// under load reads and writes at the same time can leave it unusable for both (the
	// pool's side of a library catching a half-made token is TestTokenCaughtHalfInitialised).
	fresh := filepath.Join(e.hsm.dir, "tokens.fresh")
	e.hsm.initTokenIn(fresh, "faults")
	saved := filepath.Join(e.hsm.dir, "tokens.saved")
	if err := os.Rename(e.hsm.tokenDir, saved); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fresh, e.hsm.tokenDir); err != nil {
		t.Fatal(err)
	}
	un := unavailable.Load()
	eventually(t, "the re-initialised token was not noticed", e.store, func() bool {
		return unavailable.Load() >= un+5 && e.store.Health(ctx) != nil
	})
	if err := e.store.Health(ctx); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Health while the keys are gone: %v", err)
	}
	// Restore the token with its keys. The new token's directory is moved aside, not
	// removed: the library may still be writing into it (its lock and generation files),
	// and removing files under a writer can fail.
	if err := os.Rename(e.hsm.tokenDir, filepath.Join(e.hsm.dir, "tokens.reinitialised")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(saved, e.hsm.tokenDir); err != nil {
		t.Fatal(err)
	}
	waitOK("after the token directory was restored")
	close(stop)
	wg.Wait()
	if v := otherErr.Load(); v != nil {
		t.Fatalf("a request failed with something other than Unavailable/Busy: %v", v)
	}
	if err := e.store.Health(ctx); err != nil {
		t.Fatalf("Health after healing: %v", err)
	}
	for i := 0; i < 200; i++ {
		if err := loadOp(ctx, e.store, i); err != nil {
			t.Fatalf("request %d after healing: %v", i, err)
		}
	}
	if e.checked.violations.Load() != 0 {
		t.Fatal("a session was shared")
	}
	st := e.store.Stats()[0]
	if st.Reinits == 0 {
		t.Errorf("the library was never re-initialised: %+v", st)
	}
	t.Logf("ok %d, unavailable %d, busy %d; stats %+v", ok.Load(), unavailable.Load(), busy.Load(), st)
}

func TestSoftHSMBadConfig(t *testing.T) {
	hsm := newSoftHSM(t)
	hsm.initToken("bad")
	tc := hsm.tokenConfig("bad")
	ca := keystoretest.NewCA(t, "ECDSA-P256")
	keys := hsm.provision(t.Context(), tc, ca, []keyPlan{{"rsa-sign", "RSA-2048", keystore.UsageSign, true}, {"p256-sign", "ECDSA-P256", keystore.UsageSign, true}})
	wrongPIN := filepath.Join(hsm.dir, "wrong-pin")
	os.WriteFile(wrongPIN, []byte("999999"), 0o600)
	for _, tc2 := range []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"wrong module path", func(c *Config) { c.Tokens[0].Module = "/usr/lib/softhsm/libnothere.so" }, []string{`token "bad"`, "libnothere.so"}},
		{"wrong PIN", func(c *Config) { c.Tokens[0].PINFile = wrongPIN }, []string{`key "rsa-sign"`, "CKR_PIN_INCORRECT"}},
		{"missing object", func(c *Config) { c.Keys[1].URI = "pkcs11:token=bad;object=nothing-here" }, []string{`key "p256-sign"`, "no private key"}},
		{"cert does not match key", func(c *Config) { c.Keys[1].CertFile = c.Keys[0].CertFile }, []string{`key "p256-sign"`, "certificate"}},
		{"EC cert for another EC key", func(c *Config) {
			other := keystoretest.GenerateKey(t, "ECDSA-P256")
			cert := ca.Issue(t, "other", other.Public(), true, false, 0)
			p := filepath.Join(hsm.dir, "other.crt")
			os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
			c.Keys[1].CertFile = p
		}, []string{`key "p256-sign"`, "does not match"}},
	} {
		t.Run(tc2.name, func(t *testing.T) {
			cfg := Config{Tokens: []TokenConfig{tc}, Keys: append([]KeyConfig(nil), keys...)}
			tc2.mutate(&cfg)
			s, err := New(cfg, Options{})
			if err == nil {
				s.Close()
				t.Fatal("New accepted the configuration")
			}
			for _, w := range tc2.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The PIN was never locked by the attempts above: the good configuration loads.
	s, err := New(Config{Tokens: []TokenConfig{tc}, Keys: keys}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestOpenSSLVerifiesTokenSignatures: OpenSSL, an independent implementation, verifies
// signatures the token made, and the token decrypts what OpenSSL encrypted.
func TestOpenSSLVerifiesTokenSignatures(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed: `make test` installs it")
	}
	e := newSoftEnv(t, "openssl", 2)
	ctx := t.Context()
	dir := t.TempDir()
	data := []byte("signed inside SoftHSM2, verified by OpenSSL")
	d := sha256.Sum256(data)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubPEM := func(k keystore.Key) string {
		der, err := smx509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		return write(k.Name()+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	openssl := func(args ...string) string {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	dataFile := write("data", data)
	for _, c := range []struct {
		key  string
		opts crypto.SignerOpts
		args []string
	}{
		{"rsa-sign", crypto.SHA256, nil},
		{"rsa-sign", &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}, []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"}},
		{"p256-sign", crypto.SHA256, nil},
		{"p384-both", crypto.SHA256, nil},
	} {
		k, err := e.store.Key(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := k.Signer(ctx).Sign(rand.Reader, d[:], c.opts)
		if err != nil {
			t.Fatal(err)
		}
		sigFile := write(fmt.Sprintf("%s-%T.sig", c.key, c.opts), sig)
		args := append([]string{"dgst", "-sha256"}, c.args...)
		args = append(args, "-verify", pubPEM(k), "-signature", sigFile, dataFile)
		if out := openssl(args...); !strings.Contains(out, "Verified OK") {
			t.Fatalf("%s %T: openssl says %s", c.key, c.opts, out)
		}
	}
	k, err := e.store.Key(ctx, "rsa-decrypt")
	if err != nil {
		t.Fatal(err)
	}
	secret := write("secret", []byte("a content-encryption key 32bytes"))
	for _, c := range []struct {
		args []string
		opts crypto.DecrypterOpts
	}{
		{[]string{"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"}, &rsa.OAEPOptions{Hash: crypto.SHA256}},
		{[]string{"-pkeyopt", "rsa_padding_mode:pkcs1"}, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 32}},
	} {
		ctFile := filepath.Join(dir, "ct")
		openssl(append([]string{"pkeyutl", "-encrypt", "-pubin", "-inkey", pubPEM(k), "-in", secret, "-out", ctFile}, c.args...)...)
		ct, _ := os.ReadFile(ctFile)
		pt, err := k.Decrypter(ctx).Decrypt(rand.Reader, ct, c.opts)
		if err != nil || string(pt) != "a content-encryption key 32bytes" {
			t.Fatalf("decrypting OpenSSL's %v ciphertext: %q %v", c.args, pt, err)
		}
	}
}
