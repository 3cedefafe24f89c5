package coalesce

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, the first wrapped.
func tcpPair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := Listener{lis}.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c
	}()
	peer, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := <-acc
	if c == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	deadline := time.Now().Add(ioDeadline)
	c.SetDeadline(deadline)
	peer.SetDeadline(deadline)
	return c.(*Conn), peer
}

// ioDeadline bounds every read and write of a test's connections, so that a test that
// would hang fails with a timeout error instead. It is far beyond what any machine
// needs; no test depends on it being reached or not.
const ioDeadline = 2 * time.Minute

// patientClose makes Close wait as long as the test's connections live for buffered
// bytes to reach a peer that reads, so a slow machine cannot cut a stream short.
func patientClose(t *testing.T) {
	d := CloseFlushTimeout
	CloseFlushTimeout = ioDeadline
	t.Cleanup(func() { CloseFlushTimeout = d })
}

// chunk is a write of n bytes whose content says where it is in the stream.
func chunk(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j)
	}
	return b
}

// TestStreamIntact writes small, medium and direct-size writes, mixed, and checks the
// peer reads exactly their concatenation, in order, then EOF after Close. The peer
// reads from the start: the stream is larger than the kernel's socket buffers may be.
func TestStreamIntact(t *testing.T) {
	patientClose(t)
	c, peer := tcpPair(t)
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(peer)
		got <- result{b, err}
	}()
	sizes := []int{1, 100, 2000, DirectBytes, 5, DirectBytes * 3, 70000, 1, 0, 4096}
	var want bytes.Buffer
	for r := 0; r < 20; r++ {
		for i, n := range sizes {
			b := chunk(r*len(sizes)+i, n)
			want.Write(b)
			if n, err := c.Write(b); err != nil || n != len(b) {
				t.Fatalf("Write: %d, %v", n, err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("peer read: %v", r.err)
	}
	if !bytes.Equal(r.b, want.Bytes()) {
		t.Fatalf("peer read %d bytes, want %d (or content differs)", len(r.b), want.Len())
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// TestConcurrentWriters: writes from many goroutines each arrive whole (a Write is
// never split or interleaved with another) and nothing is lost.
func TestConcurrentWriters(t *testing.T) {
	patientClose(t)
	c, peer := tcpPair(t)
	const writers, each = 8, 100
	got := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(peer)
		if err != nil {
			t.Errorf("peer read: %v", err)
		}
		got <- b
	}()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// A record: writer, index, and a length that varies, up to past DirectBytes.
				n := 8 + (i*977+w*131)%(DirectBytes+4000)
				b := make([]byte, n)
				b[0], b[1] = byte(w), byte(i>>8)
				b[2] = byte(i)
				b[3], b[4], b[5] = byte(n>>16), byte(n>>8), byte(n)
				for j := 6; j < n; j++ {
					b[j] = byte(w)
				}
				if _, err := c.Write(b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	b := <-got
	next := make([]int, writers)
	for len(b) > 0 {
		if len(b) < 6 {
			t.Fatalf("%d stray bytes at the end", len(b))
		}
		w, i, n := int(b[0]), int(b[1])<<8|int(b[2]), int(b[3])<<16|int(b[4])<<8|int(b[5])
		if w >= writers || i != next[w] || n > len(b) {
			t.Fatalf("record out of order or cut: writer %d index %d (want %d) length %d of %d left", w, i, next[w], n, len(b))
		}
		for _, x := range b[6:n] {
			if int(x) != w {
				t.Fatalf("writer %d record %d: interleaved bytes", w, i)
			}
		}
		next[w]++
		b = b[n:]
	}
	for w, n := range next {
		if n != each {
			t.Fatalf("writer %d: %d records arrived, want %d", w, n, each)
		}
	}
}

// countConn records the writes that reach it; a mock is the only way to count them.
type countConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}
func (c *countConn) Close() error                     { return nil }
func (c *countConn) SetWriteDeadline(time.Time) error { return nil }

// TestCoalesces: writes made by goroutines that are runnable when the first one
// writes — handlers finishing their calls — go out in one write, because the flusher
// yields to them first; a write after the flush starts a new one.
func TestCoalesces(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	under := &countConn{}
	c := New(under)
	const writers = 10
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.Write(chunk(i, 300))
		}()
	}
	runtime.Gosched() // every writer waits on start
	close(start)
	wg.Wait()
	waitDrained(c)
	under.mu.Lock()
	n, total := len(under.writes), 0
	for _, w := range under.writes {
		total += len(w)
	}
	under.mu.Unlock()
	// Without the yield each write goes out alone (10 writes). The scheduler takes a
	// goroutine from the global queue every 61st schedule, so now and then the flusher
	// runs before the last writers: 2 writes.
	if n > 2 || total != writers*300 {
		t.Fatalf("%d writes from runnable goroutines reached the connection as %d writes (%d bytes), want 1 (or 2)", writers, n, total)
	}
	c.Write([]byte("next"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The write after the flush goes out on its own, whether the first batch took
	// one write or two.
	under.mu.Lock()
	defer under.mu.Unlock()
	if len(under.writes) != n+1 || string(under.writes[n]) != "next" {
		t.Fatalf("after Close: %d writes, want %d ending with %q", len(under.writes), n+1, "next")
	}
}

func waitDrained(c *Conn) {
	c.mu.Lock()
	for c.busy {
		c.drained.Wait()
	}
	c.mu.Unlock()
}

// TestPeerGone: once the connection fails, Write reports it instead of buffering
// forever, and Close returns.
func TestPeerGone(t *testing.T) {
	c, peer := tcpPair(t)
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	deadline := time.Now().Add(ioDeadline)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = c.Write(make([]byte, 1000))
		<-tick.C
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	c.Close()
}

// TestCloseBoundedWhenPeerStalls: a peer that stops reading holds neither Write (past
// MaxPending it waits, and Close releases it) nor Close, which gives up on the flush
// after CloseFlushTimeout.
func TestCloseBoundedWhenPeerStalls(t *testing.T) {
	defer func(d time.Duration) { CloseFlushTimeout = d }(CloseFlushTimeout)
	CloseFlushTimeout = 200 * time.Millisecond
	c, _ := tcpPair(t)
	blocked := make(chan error, 1)
	go func() {
		b := make([]byte, 1000)
		for {
			if _, err := c.Write(b); err != nil {
				blocked <- err
				return
			}
		}
	}()
	// The peer never reads: once the kernel's buffers are full the flusher's write
	// blocks, MaxPending fills behind it and the writer waits. However large the
	// buffers, that state comes; poll for it.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(ioDeadline)
	for full := false; !full; {
		<-tick.C
		c.mu.Lock()
		var err error
		full, err = len(c.pending) >= MaxPending, c.err
		c.mu.Unlock()
		if err != nil || time.Now().After(deadline) {
			c.mu.Lock()
			t.Fatalf("the buffer never filled behind a stalled peer (write error: %v; %d bytes pending, busy %v)", err, len(c.pending), c.busy)
		}
	}
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	// Without the write deadline Close sets, both would wait for the peer forever; the
	// test's own bound is only there to fail instead of hanging.
	select {
	case <-closed:
	case <-time.After(ioDeadline):
		t.Fatal("Close did not return with a stalled peer")
	}
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("want an error")
		}
	case <-time.After(ioDeadline):
		t.Fatal("a Write waiting on a full buffer was not released by Close")
	}
}

// stallConn is a connection whose writes block until the test lets one return or a
// write deadline is set: a mock, the only way to hold a flush at a chosen point.
type stallConn struct {
	net.Conn
	started chan int      // the length of each write, when it begins
	release chan struct{} // a receive lets one write return
	dead    chan struct{} // closed by SetWriteDeadline: every write fails
	once    sync.Once
}

func newStallConn() *stallConn {
	return &stallConn{started: make(chan int, 16), release: make(chan struct{}), dead: make(chan struct{})}
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.started <- len(b)
	select {
	case <-c.release:
		return len(b), nil
	case <-c.dead:
		return 0, os.ErrDeadlineExceeded
	}
}
func (c *stallConn) SetWriteDeadline(time.Time) error {
	c.once.Do(func() { close(c.dead) })
	return nil
}
func (c *stallConn) Close() error { return nil }

// TestWriterResumesWhenFlushTakesBuffer: a Write waiting for room resumes as soon as
// the flusher takes the full buffer, not when the write of it ends. Before, the writer
// slept through the whole write: with a peer that had stopped reading, the buffer
// stayed empty behind a blocked write and a writer waited on it forever (how
// TestCloseBoundedWhenPeerStalls once failed on a loaded machine, when the writer had
// filled the buffer while the flusher was between two writes).
func TestWriterResumesWhenFlushTakesBuffer(t *testing.T) {
	under := newStallConn()
	c := New(under)
	done := make(chan error, 1)
	go func() {
		b := make([]byte, 1000)
		for {
			if _, err := c.Write(b); err != nil {
				done <- err
				return
			}
		}
	}()
	full := func(what string) {
		t.Helper()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(time.Minute)
		for {
			c.mu.Lock()
			n := len(c.pending)
			c.mu.Unlock()
			if n >= MaxPending {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d bytes pending after a minute, want %d", what, n, MaxPending)
			}
			<-tick.C
		}
	}
	<-under.started // the first flush holds whatever was written first
	full("behind the first write")
	under.release <- struct{}{}
	if n := <-under.started; n < MaxPending {
		t.Fatalf("the second write took %d bytes, want the full buffer (%d)", n, MaxPending)
	}
	full("behind the write of the full buffer")
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err == nil {
		t.Fatal("the writer ended without an error")
	}
}
