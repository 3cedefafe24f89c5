package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"signsvr.dev/signsvr/pkg/keystore"
)

const (
	defaultWaitTimeout   = 2 * time.Second
	defaultRetryInterval = time.Second
	maxBackoffFactor     = 16
	healthWait           = 50 * time.Millisecond
)

// errTokenNotFound means no slot holds the configured token (it was removed or the
// token directory was re-initialised). It takes the token down like CKR_TOKEN_NOT_PRESENT.
var errTokenNotFound = errors.New("token not found in any slot")

// token is one configured token and its session pool.
//
// A session is held by exactly one operation at a time: the semaphore sem bounds the
// sessions in use (the pool size), idle sessions wait in idle. A session that fails
// with an error meaning "this session (or the token) is gone" is closed, never
// returned; the generation counter then advances so that every idle session and every
// cached object handle of the old generation is dropped too, the slot is looked up
// again (a re-initialised token may come back in another slot) and the user is logged
// in again when a new session finds itself logged out. An operation that failed that
// way is retried once on a fresh session.
//
// When the retry fails too, the circuit breaker opens: requests fail fast with
// keystore.ErrUnavailable for RetryInterval, then one request (or a health check)
// probes the token; success closes the breaker, failure keeps it open for twice as long
// (up to 16x). Only a failed probe doubles the wait: requests that were already in
// flight when the token failed report the same failure and do not delay the first
// probe. A rejected PIN opens it for good, since retrying would lock the PIN.
//
// The library is re-initialised before a probe when the error says its view of the
// token is stale (needsReinit), and also after any failed probe: by then a fresh
// session, a new login and handles found again did not help, and a library may keep a
// stale view of a token behind an error code no list can foresee. Without that the
// breaker could stay open for good while the token itself is healthy again.
type token struct {
	cfg   TokenConfig
	sm2   *SM2Config
	mod   module
	pin   string
	now   func() time.Time
	size  int
	wait  time.Duration
	retry time.Duration
	// selfCheck is the self_check setting for the token's keys.
	selfCheck keystore.SelfCheckMode

	sem     chan struct{}
	loginMu sync.Mutex

	mu     sync.Mutex
	slot   uint
	slotOK bool
	idle   []pooled
	gen    uint64 // sessions of an older generation are closed, not pooled
	// epoch counts re-initialisations of the library. A session of an older epoch
	// died with the library's state and its handle may already name a new session
	// (SoftHSM2 numbers sessions from 1 again): it is forgotten, never closed.
	epoch     uint64
	handleGen uint64 // cached object handles of an older generation are found again
	down      bool
	downErr   error
	nextProbe time.Time
	backoff   time.Duration
	probing   bool
	pinErr    error
	closed    bool
	// needReinit asks the next probe to re-initialise the library first.
	needReinit bool
	// probeKey is the URI of a key of the token, which health looks for; set while
	// the store is built, read-only after.
	probeKey *URI

	// Counters for tests, benchmarks and metrics. waits counts operations that found
	// every session busy and waited; waitTimeouts those whose wait ended without one.
	opened, discarded, logins, retries, trips, reinits atomic.Int64
	waits, waitTimeouts                                atomic.Int64
}

type pooled struct {
	h     sessionHandle
	gen   uint64
	epoch uint64
}

func newToken(tc TokenConfig, mod module, now func() time.Time) (*token, error) {
	if tc.Label == "" {
		return nil, errors.New("no label given")
	}
	sm2cfg, err := tc.SM2.resolved()
	if err != nil {
		return nil, err
	}
	selfCheck, err := keystore.ParseSelfCheckMode(tc.SelfCheck)
	if err != nil {
		return nil, err
	}
	pin, err := tc.readPIN()
	if err != nil {
		return nil, err
	}
	t := &token{cfg: tc, sm2: sm2cfg, mod: mod, pin: pin, now: now, wait: tc.WaitTimeout, retry: tc.RetryInterval, selfCheck: selfCheck}
	if t.wait <= 0 {
		t.wait = defaultWaitTimeout
	}
	if t.retry <= 0 {
		t.retry = defaultRetryInterval
	}
	slot, info, err := t.findSlot()
	if err != nil {
		return nil, err
	}
	t.slot, t.slotOK = slot, true
	t.size = tc.PoolSize
	if t.size <= 0 {
		t.size = defaultPoolSize(info.MaxSessions, runtime.GOMAXPROCS(0))
	}
	if max := info.MaxSessions; max != ckEffectivelyInfinite && max != ckUnavailableInformation && uint(t.size) > max {
		return nil, fmt.Errorf("pool_size %d is more than the token's maximum of %d sessions", t.size, max)
	}
	t.sem = make(chan struct{}, t.size)
	return t, nil
}

// defaultPoolSize: more sessions than cores add no throughput on a local token, only
// latency (the token's work runs on the same cores); twice the cores leaves room for a network HSM's latency.
func defaultPoolSize(tokenMax uint, procs int) int {
	n := 2 * procs
	if n < 2 {
		n = 2
	}
	if tokenMax != ckEffectivelyInfinite && tokenMax != ckUnavailableInformation && uint(n) > tokenMax {
		n = int(tokenMax)
	}
	return n
}

func (t *token) String() string { return fmt.Sprintf("token %q", t.cfg.Label) }

func (t *token) findSlot() (uint, tokenInfo, error) {
	slots, err := t.mod.SlotList()
	if err != nil {
		return 0, tokenInfo{}, err
	}
	var seen []string
	for _, s := range slots {
		info, err := t.mod.TokenInfo(s)
		if err != nil {
			continue // a slot whose token went away while listing
		}
		if info.Label == t.cfg.Label && (t.cfg.Serial == "" || info.Serial == t.cfg.Serial) {
			return s, info, nil
		}
		seen = append(seen, fmt.Sprintf("%q", info.Label))
	}
	return 0, tokenInfo{}, fmt.Errorf("%w (tokens present: %s)", errTokenNotFound, strings.Join(seen, ", "))
}

func (t *token) unavailable(err error) error {
	return fmt.Errorf("%w: %s: %w", keystore.ErrUnavailable, t, err)
}

// do runs fn on a pooled session with the current handle generation. It bounds the
// wait for a session by ctx and the configured timeout, discards sessions that died,
// retries fn once on a fresh session, and keeps the circuit breaker up to date.
func (t *token) do(ctx context.Context, fn func(h sessionHandle, handleGen uint64) error) error {
	return t.doWait(ctx, t.wait, true, fn)
}

// doWait is do with a wait of its own; counted says whether its wait for a session
// counts in Stats (a health check's short wait does not).
func (t *token) doWait(ctx context.Context, wait time.Duration, counted bool, fn func(sessionHandle, uint64) error) error {
	probe, err := t.admit()
	if err != nil {
		return err
	}
	if probe {
		defer t.endProbe()
		t.maybeReinit()
	}
	if err := t.acquire(ctx, wait, counted); err != nil {
		return err
	}
	defer func() { <-t.sem }()

	var last error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			t.retries.Add(1)
		}
		s, err := t.get()
		if err != nil {
			if sessionFatal(err) && attempt == 0 {
				// The library lost the session state under us (e.g. it was
				// re-initialised): drop this generation and try once more.
				t.reset(pooled{gen: t.currentGen()}, false)
				last = err
				continue
			}
			if pinFatal(err) {
				t.mu.Lock()
				t.pinErr = err
				t.mu.Unlock()
			}
			t.trip(err, probe)
			return t.unavailable(err)
		}
		t.mu.Lock()
		hg := t.handleGen
		t.mu.Unlock()
		err = fn(s.h, hg)
		switch {
		case err == nil:
			t.put(s)
			t.up()
			return nil
		case sessionFatal(err):
			t.reset(s, true)
			last = err
		case handleStale(err):
			t.put(s)
			t.mu.Lock()
			if t.handleGen == hg {
				t.handleGen++
			}
			t.mu.Unlock()
			last = err
		case errors.Is(err, errKeyMissing):
			// A configured key is not in the token (it was reloaded or re-initialised
			// without it): the token is down for this store until a probe finds it.
			t.put(s)
			t.trip(err, probe)
			return t.unavailable(err)
		default:
			// The operation failed but the session and the token are fine (bad input,
			// a mechanism not allowed for this key...).
			t.put(s)
			t.up()
			return err
		}
	}
	if sessionFatal(last) || handleStale(last) {
		t.trip(last, probe)
		return t.unavailable(last)
	}
	return last
}

// maybeReinit re-initialises the library before a probe when the token went down in a
// way only that repairs.
func (t *token) maybeReinit() {
	t.mu.Lock()
	need := t.needReinit
	t.mu.Unlock()
	if !need {
		return
	}
	t.reinits.Add(1)
	if err := t.mod.Reinitialize(); err != nil {
		return // the probe fails on its own and the breaker backs off
	}
	t.mu.Lock()
	t.needReinit = false
	t.epoch++
	t.gen++
	t.handleGen++
	t.slotOK = false
	t.idle = nil // their handles died with the library's state
	t.mu.Unlock()
}

// admit applies the circuit breaker. It returns probe=true when this caller is the one
// allowed through to test a token that is down.
func (t *token) admit() (probe bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return false, t.unavailable(errors.New("store closed"))
	case t.pinErr != nil:
		return false, t.unavailable(fmt.Errorf("the token rejected the PIN; fix it and restart (%w)", t.pinErr))
	case !t.down:
		return false, nil
	case t.probing || t.now().Before(t.nextProbe):
		return false, t.unavailable(fmt.Errorf("down since an error (%w); next probe at %s", t.downErr, t.nextProbe.Format(time.RFC3339Nano)))
	}
	t.probing = true
	return true, nil
}

func (t *token) endProbe() {
	t.mu.Lock()
	t.probing = false
	t.mu.Unlock()
}

func (t *token) up() {
	t.mu.Lock()
	if t.down {
		t.down, t.downErr, t.backoff = false, nil, 0
	}
	t.mu.Unlock()
}

// trip records a failure that makes the token unavailable. probe says whether the
// failing call was the breaker's probe.
func (t *token) trip(err error, probe bool) {
	t.trips.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if needsReinit(err) || (probe && t.down) {
		t.needReinit = true
	}
	switch {
	case !t.down:
		t.backoff = t.retry
	case probe:
		t.backoff *= 2
		if t.backoff > maxBackoffFactor*t.retry {
			t.backoff = maxBackoffFactor * t.retry
		}
	default:
		// A request admitted before the breaker opened, failing the same way: the
		// breaker already knows, and the first probe stays due when it was.
		return
	}
	t.down, t.downErr = true, err
	t.nextProbe = t.now().Add(t.backoff)
}

func (t *token) acquire(ctx context.Context, wait time.Duration, counted bool) error {
	select {
	case t.sem <- struct{}{}:
		return nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", keystore.ErrBusy, t, err)
	}
	if counted {
		t.waits.Add(1)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s: %w", keystore.ErrBusy, t, context.Cause(ctx))
	case <-timer.C:
		if counted {
			t.waitTimeouts.Add(1)
		}
		return fmt.Errorf("%w: %s: all %d sessions busy for %s", keystore.ErrBusy, t, t.size, wait)
	}
}

// get takes an idle session or opens (and if needed logs in) a new one.
func (t *token) get() (pooled, error) {
	t.mu.Lock()
	if n := len(t.idle); n > 0 {
		s := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		return s, nil
	}
	slot, slotOK, gen, epoch := t.slot, t.slotOK, t.gen, t.epoch
	t.mu.Unlock()

	if !slotOK {
		s, _, err := t.findSlot()
		if err != nil {
			return pooled{}, err
		}
		t.mu.Lock()
		if t.gen == gen {
			t.slot, t.slotOK = s, true
		}
		t.mu.Unlock()
		slot = s
	}
	h, err := t.mod.OpenSession(slot)
	if err != nil {
		if rvOf(err) == ckrSlotIDInvalid || rvOf(err) == ckrTokenNotPresent {
			t.mu.Lock()
			t.slotOK = false
			t.mu.Unlock()
		}
		return pooled{}, fmt.Errorf("open session: %w", err)
	}
	t.opened.Add(1)
	if err := t.ensureLogin(h); err != nil {
		_ = t.mod.CloseSession(h)
		return pooled{}, err
	}
	return pooled{h: h, gen: gen, epoch: epoch}, nil
}

// ensureLogin logs the user in unless the token already has (PKCS#11 login state is
// per token and application, shared by all its sessions): one login per token, and
// again only after the token lost the login state.
func (t *token) ensureLogin(h sessionHandle) error {
	t.loginMu.Lock()
	defer t.loginMu.Unlock()
	state, err := t.mod.SessionState(h)
	if err != nil {
		return fmt.Errorf("session info: %w", err)
	}
	if state == cksRWUserFunctions || state == cksROUserFunctions {
		return nil
	}
	if err := t.mod.Login(h, t.pin); err != nil && rvOf(err) != ckrUserAlreadyLoggedIn {
		return fmt.Errorf("login: %w", err)
	}
	t.logins.Add(1)
	return nil
}

// put returns a healthy session to the pool, or closes it if the pool moved on.
func (t *token) put(s pooled) {
	t.mu.Lock()
	if s.gen == t.gen && !t.closed {
		t.idle = append(t.idle, s)
		t.mu.Unlock()
		return
	}
	stale := s.epoch != t.epoch
	t.mu.Unlock()
	if !stale {
		_ = t.mod.CloseSession(s.h)
	}
}

func (t *token) currentGen() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gen
}

// reset discards s (when it is a real session) and everything of its generation after
// a session-fatal error.
func (t *token) reset(s pooled, real bool) {
	if real {
		t.mu.Lock()
		stale := s.epoch != t.epoch
		t.mu.Unlock()
		if !stale {
			_ = t.mod.CloseSession(s.h)
		}
		t.discarded.Add(1)
	}
	t.mu.Lock()
	if s.gen != t.gen {
		// Another operation already reset the pool for the same failure.
		t.mu.Unlock()
		return
	}
	t.gen++
	t.handleGen++
	t.slotOK = false
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, i := range idle {
		_ = t.mod.CloseSession(i.h)
		t.discarded.Add(1)
	}
}

// health reports whether the token serves: the breaker's state, and a cheap call on
// a pooled session (which also probes a token that is down when a probe is due). The
// call looks for one of the token's keys: a library may go on answering for an open
// session whose token is gone (SoftHSM2 does, after its token directory went away),
// whereas a search for an object reads the token. A missing key takes the token down
// as it does for an operation.
func (t *token) health(ctx context.Context) error {
	err := t.doWait(ctx, healthWait, false, func(h sessionHandle, _ uint64) error {
		if t.probeKey != nil {
			_, err := findPrivateKey(t.mod, h, t.probeKey)
			return err
		}
		_, err := t.mod.SessionState(h)
		return err
	})
	if errors.Is(err, keystore.ErrBusy) && ctx.Err() == nil {
		return nil // every session is busy serving: that is healthy
	}
	return err
}

func (t *token) close() {
	t.mu.Lock()
	t.closed = true
	idle := t.idle
	t.idle = nil
	t.gen++
	t.mu.Unlock()
	for _, i := range idle {
		_ = t.mod.CloseSession(i.h)
	}
}

// Stats are counters of one token's pool, for metrics and tests. InUse is the
// sessions held by operations now; Waits counts operations that found every session
// busy, WaitTimeouts those that gave up waiting (ErrBusy after the wait timeout).
type Stats struct {
	Token                              string
	PoolSize                           int
	Idle                               int
	InUse                              int
	Down                               bool
	Breaker                            BreakerState
	Opened, Discarded, Logins, Retries int64
	BreakerTrips, Reinits              int64
	Waits, WaitTimeouts                int64
}

// BreakerState is the state of a token's circuit breaker.
type BreakerState int

const (
	// BreakerClosed: the token serves; operations go through.
	BreakerClosed BreakerState = iota
	// BreakerOpen: the token failed; operations fail fast until the next probe (for
	// good after a rejected PIN).
	BreakerOpen
	// BreakerHalfOpen: one operation or health check is probing the token.
	BreakerHalfOpen
)

func (b BreakerState) String() string {
	switch b {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

func (t *token) stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	br := BreakerClosed
	switch {
	case t.pinErr != nil:
		br = BreakerOpen
	case t.down && t.probing:
		br = BreakerHalfOpen
	case t.down:
		br = BreakerOpen
	}
	return Stats{Token: t.cfg.Label, PoolSize: t.size, Idle: len(t.idle), InUse: len(t.sem),
		Down: t.down || t.pinErr != nil, Breaker: br,
		Opened: t.opened.Load(), Discarded: t.discarded.Load(), Logins: t.logins.Load(),
		Retries: t.retries.Load(), BreakerTrips: t.trips.Load(), Reinits: t.reinits.Load(),
		Waits: t.waits.Load(), WaitTimeouts: t.waitTimeouts.Load()}
}
