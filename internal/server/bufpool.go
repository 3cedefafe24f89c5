package server

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

// bufferPool is the mem.BufferPool grpc-go reads requests into and marshals responses
// into. grpc-go's default pool has tiers of 256 B, 4, 16 and 32 KiB and 1 MiB, and it
// clears a buffer's whole capacity on every Get: a 64 KiB document (just over 64 KiB
// once framed) takes a 1 MiB buffer and a 1 MiB memclr per copy (BenchmarkBufferPool
// shows the cost). On the real server, one core, a 64 KiB P-256 Sign costs 55–123 µs
// (median 80, a third) less server CPU with this pool, a batch of 64 1 KiB documents
// up to 10 µs an item less (median 1); on 1 KiB unary and pipelined items the two pools are within
// noise of each other. This pool has a tier at every power of two from 512 B to
// 16 MiB, so a buffer is at most twice its use, and hands
// buffers out without clearing them: every caller in grpc-go fills the length it asked
// for before reading it (a frame read with io.ReadFull, a copy while materializing, a
// proto MarshalAppend over buf[:0]), the same reasoning as grpc-go's own "dirty" pools
// for transport reads. Larger buffers are allocated and left to the collector.
type bufferPool struct {
	tiers [maxTierShift - minTierShift + 1]sync.Pool
}

const (
	minTierShift = 9  // 512 B
	maxTierShift = 24 // 16 MiB
)

var _ mem.BufferPool = (*bufferPool)(nil)

func newBufferPool() *bufferPool { return new(bufferPool) }

// tierFor is the index of the smallest tier holding size bytes, or -1.
func tierFor(size int) int {
	if size <= 0 || size > 1<<maxTierShift {
		return -1
	}
	shift := bits.Len(uint(size - 1))
	if shift < minTierShift {
		shift = minTierShift
	}
	return shift - minTierShift
}

// Get returns a buffer of length size whose bytes are not cleared.
func (p *bufferPool) Get(size int) *[]byte {
	t := tierFor(size)
	if t < 0 {
		b := make([]byte, size)
		return &b
	}
	if bp, ok := p.tiers[t].Get().(*[]byte); ok {
		*bp = (*bp)[:size]
		return bp
	}
	b := make([]byte, size, 1<<(t+minTierShift))
	return &b
}

// Put takes back a buffer from Get: it goes to its tier only when its capacity is that
// tier's exact size (grpc-go may put back a prefix of what it got, or a buffer from
// elsewhere; anything else is left to the collector).
func (p *bufferPool) Put(bp *[]byte) {
	c := cap(*bp)
	t := tierFor(c)
	if t < 0 || c != 1<<(t+minTierShift) {
		return
	}
	p.tiers[t].Put(bp)
}

// sharedBufferPool is installed once as grpc-go's process default (the proto codec
// reads that one, not the server option) and given to every server.
var (
	sharedBufferPool     = newBufferPool()
	installDefaultBuffer sync.Once
)

func useBufferPool() *bufferPool {
	installDefaultBuffer.Do(func() { experimental.SetDefaultBufferPool(sharedBufferPool) })
	return sharedBufferPool
}
