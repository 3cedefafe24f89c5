package loadgen

import (
	"math/bits"
	"time"
)

// subBits is the number of mantissa bits kept per power of two: 2^7 = 128 buckets per
// octave, so a recorded value is off by less than 1/128 (0.8%).
const subBits = 7

// Histogram counts durations in log-linear buckets. The zero value is ready to use; it
// is not safe for concurrent use (each worker keeps its own and they are merged).
type Histogram struct {
	counts [64 << subBits]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // shift that leaves subBits+1 significant bits
	return (e+1)<<subBits + int(v>>uint(e)) - 1<<subBits
}

// bucketHigh is the largest value that falls in bucket b.
func bucketHigh(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	e := b>>subBits - 1
	m := uint64(b&(1<<subBits-1)) + 1<<subBits
	return (m+1)<<uint(e) - 1
}

// Record adds one duration (negative durations count as zero).
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the average duration.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Max is the largest recorded duration, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile is the duration below which a fraction q of the records fall (the upper edge
// of the bucket holding the q-th record, capped at Max).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHigh(b)), h.max)
		}
	}
	return h.max
}
