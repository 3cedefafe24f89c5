package trust

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// cacheKey is SHA-256 over the leaf's DER, each given intermediate's DER (length
// prefixed, in order) and the purpose.
type cacheKey [sha256.Size]byte

func makeCacheKey(leaf *smx509.Certificate, intermediates []*smx509.Certificate, p Purpose) cacheKey {
	h := sha256.New()
	var n [9]byte
	write := func(b []byte) {
		binary.BigEndian.PutUint64(n[:8], uint64(len(b)))
		h.Write(n[:8])
		h.Write(b)
	}
	write(leaf.Raw)
	for _, c := range intermediates {
		if c != nil {
			write(c.Raw)
		}
	}
	n[8] = byte(p)
	h.Write(n[8:])
	var k cacheKey
	h.Sum(k[:0])
	return k
}

type cacheEntry struct {
	v   *Verdict
	win cacheWindow
}

// verdictCache holds verdicts for (chain, purpose). It is bounded: when full, a
// random entry is evicted.
type verdictCache struct {
	mu  sync.RWMutex
	max int
	m   map[cacheKey]cacheEntry
}

func newVerdictCache(max int) *verdictCache {
	return &verdictCache{max: max, m: make(map[cacheKey]cacheEntry, min(max, 1024))}
}

// get returns a copy of the cached verdict with At set, or nil.
func (c *verdictCache) get(k cacheKey, at, now time.Time, gen uint64) *Verdict {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok {
		return nil
	}
	if !now.Before(e.win.expires) || e.win.gen != gen {
		c.mu.Lock()
		if cur, ok := c.m[k]; ok && cur.v == e.v {
			delete(c.m, k)
		}
		c.mu.Unlock()
		return nil
	}
	if at.Before(e.win.from) || at.After(e.win.to) {
		return nil
	}
	v := *e.v
	v.At = at
	return &v
}

func (c *verdictCache) put(k cacheKey, v *Verdict, win cacheWindow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for kk := range c.m { // Go map order: a random victim
			delete(c.m, kk)
			break
		}
	}
	c.m[k] = cacheEntry{v: v, win: win}
}
