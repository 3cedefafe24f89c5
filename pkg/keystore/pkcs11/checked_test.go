package pkcs11

import (
	"sync"
	"sync/atomic"
	"testing"
)

// checkedModule wraps any module (the real SoftHSM2 one included) and fails the test
// if a session is ever in two calls at once; it also records how many sessions were
// in use at the same time.
type checkedModule struct {
	module
	t          testing.TB
	mu         sync.Mutex
	busy       map[sessionHandle]bool
	inUse, max int
	violations atomic.Int64
}

func newChecked(t testing.TB, m module) *checkedModule {
	return &checkedModule{module: m, t: t, busy: map[sessionHandle]bool{}}
}

func (c *checkedModule) enter(h sessionHandle) func() {
	c.mu.Lock()
	if c.busy[h] {
		c.mu.Unlock()
		c.violations.Add(1)
		c.t.Errorf("session %d used by two goroutines at once", h)
		return func() {}
	}
	c.busy[h] = true
	c.inUse++
	if c.inUse > c.max {
		c.max = c.inUse
	}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.busy, h)
		c.inUse--
		c.mu.Unlock()
	}
}

func (c *checkedModule) maxInUse() int { c.mu.Lock(); defer c.mu.Unlock(); return c.max }

func (c *checkedModule) CloseSession(h sessionHandle) error {
	defer c.enter(h)()
	return c.module.CloseSession(h)
}
func (c *checkedModule) SessionState(h sessionHandle) (uint, error) {
	defer c.enter(h)()
	return c.module.SessionState(h)
}
func (c *checkedModule) Login(h sessionHandle, pin string) error {
	defer c.enter(h)()
	return c.module.Login(h, pin)
}
func (c *checkedModule) FindObjects(h sessionHandle, a []attribute) ([]objectHandle, error) {
	defer c.enter(h)()
	return c.module.FindObjects(h, a)
}
func (c *checkedModule) Attributes(h sessionHandle, o objectHandle, t []uint) (map[uint][]byte, error) {
	defer c.enter(h)()
	return c.module.Attributes(h, o, t)
}
func (c *checkedModule) Sign(h sessionHandle, m mechanism, o objectHandle, d []byte) ([]byte, error) {
	defer c.enter(h)()
	return c.module.Sign(h, m, o, d)
}
func (c *checkedModule) Decrypt(h sessionHandle, m mechanism, o objectHandle, d []byte) ([]byte, error) {
	defer c.enter(h)()
	return c.module.Decrypt(h, m, o, d)
}
func (c *checkedModule) DeriveKey(h sessionHandle, m mechanism, o objectHandle, a []attribute) (objectHandle, error) {
	defer c.enter(h)()
	return c.module.DeriveKey(h, m, o, a)
}
func (c *checkedModule) DestroyObject(h sessionHandle, o objectHandle) error {
	defer c.enter(h)()
	return c.module.DestroyObject(h, o)
}
