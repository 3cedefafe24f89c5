// Package coalesce joins the writes a connection receives while the process is busy
// into fewer system calls.
//
// Why: grpc-go's transport writes to the connection whenever its writer goroutine
// finds no other frame queued (its own batching yields only for writes under 1000
// bytes), and on a server that is computing signatures that instant comes after
// almost every response: the handler that finishes hands its frames to the
// connection's writer goroutine, which the scheduler runs next, before the handlers
// already waiting. On loopback a write costs the sender the receiver's TCP stack and
// its wake-up too. A pipelined stream, which carries many responses, is hit hardest:
// each of them still leaves in a write of its own.
//
// What it pays, measured on the real server pinned to one core (loadgen of
// bench/cmd/loadgen on the other, 1 KiB P-256, this package on and off, run
// interleaved seven times on a shared machine):
//   - pipelined streams as fast as they go (4 streams, 32 items in flight on each):
//     0.09 write calls per item instead of 0.72, and 3–6 µs (a tenth) less server CPU
//     per Sign item in six runs of seven, 2–6 µs per Verify item in five of seven;
//   - unary calls (16 in flight): 0.31 write calls per call instead of 0.43; server
//     CPU per call and p99 within noise;
//   - at a fixed 80 % of the highest rate, unary or pipelined: a third to half fewer
//     write calls, with server CPU and p99 within noise (fewer responses are ready
//     together);
//   - batches of 64 and 64 KiB documents: no difference, their writes are large.
//
// A Conn copies small writes into a buffer and leaves the system call to a flusher
// goroutine that first yields the processor (runtime.Gosched), so the calls that are
// already runnable finish and add their responses to the same write. When nothing
// else is runnable the yield returns at once and the write goes out as before, so an
// idle server adds only a goroutine switch to a call's latency. Writes of at least
// DirectBytes are not copied: they wait for what is pending to be written, then go
// straight to the connection (their copy would cost more than the call saves, and
// buffers that large would churn the heap). This is what TCP_CORK or Nagle's
// algorithm do in the kernel, decided instead by what the Go scheduler knows: whether
// more responses are about to be written. No library does it for a net.Conn under
// grpc-go.
//
// Order is kept: bytes reach the connection in the order Write was called. Write
// returns once the bytes are buffered; an error of the underlying connection is
// returned by the next Write and by Close. Buffered bytes are bounded: past
// MaxPending behind the write in progress, Write waits for the flusher to take them,
// as a blocking write would. Close writes
// what is buffered, waiting at most CloseFlushTimeout, then closes the connection.
package coalesce

import (
	"net"
	"runtime"
	"sync"
	"time"
)

const (
	// DirectBytes is the write size from which a Write bypasses the buffer: it waits
	// for what is pending to be written, then writes.
	DirectBytes = 32 << 10
	// MaxPending bounds the bytes buffered behind the write in progress.
	MaxPending = 1 << 20
	// keepSpare is the largest buffer kept for reuse between flushes.
	keepSpare = 256 << 10
)

// CloseFlushTimeout bounds how long Close waits for buffered bytes to be written to a
// peer that does not read. A variable for tests.
var CloseFlushTimeout = 2 * time.Second

// Conn is a net.Conn whose writes are coalesced. Reads and the other methods are the
// wrapped connection's.
type Conn struct {
	net.Conn

	wake chan struct{} // cap 1: sent once when busy goes from false to true for the flusher
	stop chan struct{} // closed by Close: the flusher exits

	mu      sync.Mutex
	drained sync.Cond // signalled when pending is taken or emptied, busy becomes false or err is set
	pending []byte    // written by callers, not yet handed to the connection
	spare   []byte    // the previous flush's buffer, reused
	busy    bool      // the flusher or a direct write owns the connection's write side
	err     error     // the first write error, or net.ErrClosed after Close
	closed  bool
}

// New wraps c and starts its flusher goroutine, which Close stops.
func New(c net.Conn) *Conn {
	cc := &Conn{Conn: c, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	cc.drained.L = &cc.mu
	go cc.flusher()
	return cc
}

// Write buffers b for the flusher, or, when b is large, writes it directly once what
// is pending is written.
func (c *Conn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	for c.err == nil && len(c.pending) >= MaxPending {
		c.drained.Wait()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if len(b) >= DirectBytes {
		// Large writes are not copied: wait for the flusher to write what is pending
		// (busy false means nothing is), then write from the caller's buffer.
		for c.err == nil && c.busy {
			c.drained.Wait()
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return 0, err
		}
		c.busy = true
		c.mu.Unlock()
		n, err := c.Conn.Write(b)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = err
		}
		c.busy = false
		c.handOff()
		c.mu.Unlock()
		return n, err
	}
	c.pending = append(c.pending, b...)
	if !c.busy {
		c.busy = true
		c.wake <- struct{}{}
	}
	c.mu.Unlock()
	return len(b), nil
}

// handOff gives the write side to the flusher when bytes were buffered during a
// direct write, or reports it drained. c.mu is held and c.busy is false.
func (c *Conn) handOff() {
	if len(c.pending) > 0 && c.err == nil {
		c.busy = true
		c.wake <- struct{}{}
		return
	}
	c.pending = c.pending[:0]
	c.drained.Broadcast()
}

func (c *Conn) flusher() {
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			return
		}
		// Let the goroutines that are already runnable (handlers finishing their calls)
		// run first: their responses join this write.
		runtime.Gosched()
		c.mu.Lock()
		for len(c.pending) > 0 && c.err == nil {
			out := c.pending
			c.pending = c.spare[:0]
			c.spare = nil
			// The buffer is empty again: writers waiting for room go on filling it
			// while this write runs, instead of waiting for the write to end.
			c.drained.Broadcast()
			c.mu.Unlock()
			_, err := c.Conn.Write(out)
			c.mu.Lock()
			if cap(out) <= keepSpare {
				c.spare = out[:0]
			}
			if err != nil && c.err == nil {
				c.err = err
			}
		}
		c.busy = false
		c.pending = c.pending[:0]
		c.drained.Broadcast()
		c.mu.Unlock()
	}
}

// Close writes what is buffered (waiting at most CloseFlushTimeout) and closes the
// connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	if c.busy {
		// A peer that does not read must not hold Close: the deadline ends a blocked
		// write with an error, which ends the flush.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(CloseFlushTimeout))
		for c.busy {
			c.drained.Wait()
		}
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.drained.Broadcast()
	c.mu.Unlock()
	close(c.stop)
	return c.Conn.Close()
}

// Listener wraps every connection it accepts in a Conn.
type Listener struct{ net.Listener }

// Accept waits for the next connection and wraps it.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return New(c), nil
}

var _ net.Conn = (*Conn)(nil)
