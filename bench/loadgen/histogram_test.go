package loadgen

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		b := bucketOf(v)
		if b <= prev && v != 0 {
			t.Errorf("bucket of %d = %d, not after %d", v, b, prev)
		}
		prev = b
		if hi := bucketHigh(b); hi < v {
			t.Errorf("value %d in bucket %d whose high is %d", v, b, hi)
		}
		if b > 0 && bucketHigh(b-1) >= v {
			t.Errorf("value %d also fits bucket %d", v, b-1)
		}
	}
}

// TestQuantilesMatchSort compares the histogram with exact quantiles of random data.
func TestQuantilesMatchSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h1, h2 Histogram
	var all []time.Duration
	for i := 0; i < 100000; i++ {
		d := time.Duration(r.ExpFloat64() * float64(200*time.Microsecond))
		all = append(all, d)
		if i%2 == 0 {
			h1.Record(d)
		} else {
			h2.Record(d)
		}
	}
	h1.Merge(&h2)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if h1.Count() != uint64(len(all)) || h1.Max() != all[len(all)-1] {
		t.Fatalf("count %d max %v", h1.Count(), h1.Max())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))-1]
		got := h1.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff < -0.01 || diff > 0.01 {
			t.Errorf("q%.3f = %v, exact %v (%.2f%% off)", q, got, exact, 100*diff)
		}
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram")
	}
}
