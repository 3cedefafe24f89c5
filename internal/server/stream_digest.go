package server

import "hash"

var _ hash.Hash = (*pipedHash)(nil)

// pipedHash is a running hash fed in a goroutine of its own: the audit digests of
// a stream (its input and its output, each a full pass over the data) run beside
// the operation's own digest or cipher, on another core, instead of after it.
//
// Write hands b over and returns at once; b must not change until the next Write,
// Wait or Sum, which first wait for the hashing of b. Close ends the goroutine. A
// nil *pipedHash does nothing (a server without an audit log).
type pipedHash struct {
	h    hash.Hash
	feed chan []byte
	done chan struct{}
	busy bool
}

func newPipedHash(h hash.Hash) *pipedHash {
	p := &pipedHash{h: h, feed: make(chan []byte), done: make(chan struct{})}
	go func() {
		for b := range p.feed {
			p.h.Write(b)
			p.done <- struct{}{}
		}
	}()
	return p
}

// Write starts hashing b once the hashing before has ended.
func (p *pipedHash) Write(b []byte) (int, error) {
	if p == nil || len(b) == 0 {
		return len(b), nil
	}
	p.Wait()
	p.feed <- b
	p.busy = true
	return len(b), nil
}

// Reset, Size and BlockSize are the hash's (a pipedHash is a hash.Hash, whose
// Write keeps b as said above).
func (p *pipedHash) Reset()         { p.Wait(); p.h.Reset() }
func (p *pipedHash) Size() int      { return p.h.Size() }
func (p *pipedHash) BlockSize() int { return p.h.BlockSize() }

// Wait returns once everything written is hashed.
func (p *pipedHash) Wait() {
	if p != nil && p.busy {
		<-p.done
		p.busy = false
	}
}

// Sum appends the digest of everything written to b.
func (p *pipedHash) Sum(b []byte) []byte {
	p.Wait()
	return p.h.Sum(b)
}

// Close waits for the hashing in progress and ends the goroutine.
func (p *pipedHash) Close() {
	if p != nil {
		p.Wait()
		close(p.feed)
	}
}

// wroteDone returns once the output last given to wrote is digested: before its
// buffer is used again.
func (c *streamCall) wroteDone() { c.out.Wait() }
