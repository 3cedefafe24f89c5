package trust

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// lifecycle is shared by the checker's background work: fetches run under ctx,
// and Close waits for them through wg. Goroutines are only started while not
// closed (checked under mu), so wg.Add never races with wg.Wait.
type lifecycle struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// goIfOpen runs f in a tracked goroutine unless closed.
func (l *lifecycle) goIfOpen(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

func (l *lifecycle) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

var errClosed = errors.New("validator closed")

// flight caches one value per key (a CRL per URL, an OCSP answer per responder and
// certificate), fetches it at most once at a time however many requests want it,
// remembers a failure for retryAfter so that requests fail fast while a source is
// down, and lets each waiter give up when its own context ends. The fetch itself
// is bounded by timeout and by the lifecycle, not by any one request.
type flight[T any] struct {
	life       *lifecycle
	now        func() time.Time
	timeout    time.Duration
	retryAfter time.Duration
	max        int
	onReplace  func(old, new T) // called under mu when a value replaces another

	mu    sync.Mutex
	slots map[string]*slot[T]
}

type slot[T any] struct {
	val       T
	has       bool
	failErr   error
	failUntil time.Time
	call      *call[T]
	lastUsed  time.Time
}

type call[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func newFlight[T any](life *lifecycle, now func() time.Time, timeout, retryAfter time.Duration, max int) *flight[T] {
	return &flight[T]{life: life, now: now, timeout: timeout, retryAfter: retryAfter, max: max, slots: map[string]*slot[T]{}}
}

// get returns the cached value for key when fresh, else waits for a fetch (a
// running one, or one it starts) until ctx ends.
func (f *flight[T]) get(ctx context.Context, key string, now time.Time, fresh func(T, time.Time) bool, fetch func(context.Context) (T, error)) (T, error) {
	var zero T
	f.mu.Lock()
	s := f.slot(key)
	s.lastUsed = now
	if s.has && fresh(s.val, now) {
		v := s.val
		f.mu.Unlock()
		return v, nil
	}
	if s.call == nil {
		if now.Before(s.failUntil) {
			err := s.failErr
			f.mu.Unlock()
			return zero, fmt.Errorf("%w (not retried before %s)", err, s.failUntil.UTC().Format(time.RFC3339))
		}
		if !f.start(s, fetch) {
			f.mu.Unlock()
			return zero, errClosed
		}
	}
	c := s.call
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return zero, fmt.Errorf("gave up waiting: %w", ctx.Err())
	}
}

// refresh fetches key again even when fresh, and waits for the result.
func (f *flight[T]) refresh(ctx context.Context, key string, fetch func(context.Context) (T, error)) error {
	f.mu.Lock()
	s, ok := f.slots[key]
	if !ok {
		f.mu.Unlock()
		return nil
	}
	if s.call == nil && !f.start(s, fetch) {
		f.mu.Unlock()
		return errClosed
	}
	c := s.call
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// due lists keys whose value near(…) says should be refetched and that were used
// within idle; it forgets keys unused for longer than idle.
func (f *flight[T]) due(now time.Time, near func(T, time.Time) bool, idle time.Duration) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k, s := range f.slots {
		if now.Sub(s.lastUsed) > idle {
			if s.call == nil {
				delete(f.slots, k)
			}
			continue
		}
		if s.has && s.call == nil && near(s.val, now) {
			keys = append(keys, k)
		}
	}
	return keys
}

// slot finds or makes the slot for key; mu is held. When full, the least
// recently used idle slot goes.
func (f *flight[T]) slot(key string) *slot[T] {
	if s, ok := f.slots[key]; ok {
		return s
	}
	if len(f.slots) >= f.max {
		var oldK string
		var old *slot[T]
		for k, s := range f.slots {
			if s.call == nil && (old == nil || s.lastUsed.Before(old.lastUsed)) {
				oldK, old = k, s
			}
		}
		if old != nil {
			delete(f.slots, oldK)
		}
	}
	s := &slot[T]{}
	f.slots[key] = s
	return s
}

// start launches a fetch for s; mu is held.
func (f *flight[T]) start(s *slot[T], fetch func(context.Context) (T, error)) bool {
	c := &call[T]{done: make(chan struct{})}
	ok := f.life.goIfOpen(func() {
		fctx, cancel := context.WithTimeout(f.life.ctx, f.timeout)
		v, err := fetch(fctx)
		cancel()
		f.mu.Lock()
		if err != nil {
			s.failErr, s.failUntil = err, f.now().Add(f.retryAfter)
		} else {
			if s.has && f.onReplace != nil {
				f.onReplace(s.val, v)
			}
			s.val, s.has, s.failErr, s.failUntil = v, true, nil, time.Time{}
		}
		s.call = nil
		c.val, c.err = v, err
		f.mu.Unlock()
		close(c.done)
	})
	if ok {
		s.call = c
	}
	return ok
}
