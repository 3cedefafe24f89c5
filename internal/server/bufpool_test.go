package server

import (
	"fmt"
	"net"
	"testing"

	"google.golang.org/grpc/mem"

	"signsvr.dev/signsvr/internal/coalesce"
)

func TestBufferPoolTiers(t *testing.T) {
	p := newBufferPool()
	for _, tc := range []struct{ size, wantCap int }{
		{1, 512}, {512, 512}, {513, 1024}, {65536, 65536}, {65537, 131072},
		{16 << 20, 16 << 20}, {16<<20 + 1, 16<<20 + 1},
	} {
		b := p.Get(tc.size)
		if len(*b) != tc.size || cap(*b) != tc.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.size, len(*b), cap(*b), tc.size, tc.wantCap)
		}
		p.Put(b)
	}
	// A prefix keeps its capacity and comes back at full length; a buffer of a size
	// no tier has is not taken.
	b := p.Get(3000)
	*b = (*b)[:10]
	p.Put(b)
	odd := make([]byte, 3000)
	p.Put(&odd)
	for i := 0; i < 4; i++ {
		if g := p.Get(4000); len(*g) != 4000 || cap(*g) != 4096 {
			t.Fatalf("Get(4000) gave len %d cap %d", len(*g), cap(*g))
		}
	}
	if got := p.Get(0); len(*got) != 0 {
		t.Fatalf("Get(0) gave len %d", len(*got))
	}
}

// BenchmarkBufferPool compares bufferPool with grpc-go's default pool for the buffers
// a call takes: a framed request or response of 1 KiB, of 64 KiB (just past a power
// of two once framed, where grpc-go's next tier is 1 MiB) and of 1 MiB. grpcDefault
// is built as grpc-go builds its own default (its tiers are 2^8, 2^12, 2^14, 2^15
// and 2^20 bytes); it is made here because a server started by this package's tests
// replaces the process default with bufferPool.
func BenchmarkBufferPool(b *testing.B) {
	grpcDefault, err := mem.NewBinaryTieredBufferPool(8, 12, 14, 15, 20)
	if err != nil {
		b.Fatal(err)
	}
	const frame = 5 // gRPC's length-prefixed message header
	for _, size := range []int{1<<10 + frame, 64<<10 + frame, 1<<20 + frame} {
		for _, pool := range []struct {
			name string
			p    mem.BufferPool
		}{{"grpc", grpcDefault}, {"signsvr", newBufferPool()}} {
			b.Run(fmt.Sprintf("%s/%dB", pool.name, size), func(b *testing.B) {
				for b.Loop() {
					buf := pool.p.Get(size)
					(*buf)[0] = 1 // touched, as a reader of the frame would
					pool.p.Put(buf)
				}
			})
		}
	}
}

// TestTransportSwitch: StockTransport leaves grpc-go's transport as it is; the default
// installs the buffer pool and the larger write buffer and coalesces the connections'
// writes.
func TestTransportSwitch(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	stock := &Server{stockTransport: true}
	if opts := stock.transportOptions(); len(opts) != 0 {
		t.Errorf("stock transport: %d server options, want none", len(opts))
	}
	if l := stock.listener(lis); l != lis {
		t.Errorf("stock transport wraps the listener: %T", l)
	}
	tuned := &Server{}
	if opts := tuned.transportOptions(); len(opts) != 2 {
		t.Errorf("tuned transport: %d server options, want the buffer pool and the write buffer size", len(opts))
	}
	if _, ok := tuned.listener(lis).(coalesce.Listener); !ok {
		t.Errorf("tuned transport: listener %T, want coalesce.Listener", tuned.listener(lis))
	}
}
