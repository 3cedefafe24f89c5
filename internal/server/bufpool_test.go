package server

import "testing"

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
