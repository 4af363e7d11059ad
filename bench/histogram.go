package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear: values below 2·subCount are counted exactly,
// and each power of two above that is split into subCount equal buckets, so
// a bucket is never wider than 1/subCount (0.78%) of its lower bound and the
// midpoint this package reports is within 0.4% of any value in it.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxExp bounds the range to 2^(maxExp+subBits+1) ns, about 4.9 hours;
	// larger values are clamped into the last bucket (and still set Max).
	maxExp     = 36
	numBuckets = (maxExp + 2) * subCount
)

// Histogram counts durations (nanoseconds) in log-linear buckets with a
// relative bucket width under 1%, so percentiles read from it are within 1%
// of the exact ones, and two histograms merge exactly by adding counts.
//
// Record and Merge may be called concurrently with each other and with the
// readers (Count, Quantile, …), which then see a consistent enough snapshot
// for a progress line; read the final figures after recording has stopped.
// The zero value is not usable: make one with NewHistogram.
type Histogram struct {
	counts []atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Int64 // nanoseconds; overflows only after 292 years of latency
	min    atomic.Int64 // math.MaxInt64 while empty
	max    atomic.Int64
}

// NewHistogram returns an empty histogram (about 36 KiB).
func NewHistogram() *Histogram {
	h := &Histogram{counts: make([]atomic.Uint64, numBuckets)}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the index of the bucket that counts v (v ≥ 0).
func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1 // ≥ 1: v ≥ 2^(subBits+1)
	if e > maxExp {
		return numBuckets - 1
	}
	return e*subCount + int(v>>e)
}

// bucketBounds returns the half-open range [lo, hi) of values bucket i counts.
func bucketBounds(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i) + 1
	}
	e := i/subCount - 1
	m := int64(i%subCount + subCount)
	return m << e, (m + 1) << e
}

// bucketValue is the value reported for bucket i: its midpoint.
func bucketValue(i int) int64 {
	lo, hi := bucketBounds(i)
	return lo + (hi-lo-1)/2
}

// Record counts one duration. Negative durations (clock steps) count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Merge adds every count of o to h. The result is exactly the histogram of
// both sets of values.
func (h *Histogram) Merge(o *Histogram) {
	if o.total.Load() == 0 {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	for v := o.min.Load(); ; {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for v := o.max.Load(); ; {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Min returns the smallest value recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.min.Load())
}

// Max returns the largest value recorded, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the exact mean of the values recorded; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the value below which a fraction q (0…1) of the values
// lie: the midpoint of the bucket holding the value of rank ⌈q·n⌉, clamped
// to the exact Min and Max. It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := time.Duration(bucketValue(i))
			return min(max(v, h.Min()), h.Max())
		}
	}
	return h.Max()
}

// Bucket is one non-empty bucket of a Histogram: Count values in [Lo, Hi).
type Bucket struct {
	Lo, Hi time.Duration
	Count  uint64
}

// Buckets returns the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			lo, hi := bucketBounds(i)
			out = append(out, Bucket{time.Duration(lo), time.Duration(hi), c})
		}
	}
	return out
}

// histogramJSON is the wire form of a Histogram: sparse [bucket, count]
// pairs, so an idle histogram costs a few bytes between processes.
type histogramJSON struct {
	Buckets [][2]uint64 `json:"b"`
	Sum     int64       `json:"sum"`
	Min     int64       `json:"min"`
	Max     int64       `json:"max"`
}

// MarshalJSON encodes h sparsely; UnmarshalJSON restores it exactly.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := histogramJSON{Buckets: [][2]uint64{}, Sum: h.sum.Load(), Min: int64(h.Min()), Max: h.max.Load()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON replaces h's contents with the encoded histogram.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w histogramJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	*h = Histogram{counts: make([]atomic.Uint64, numBuckets)}
	h.min.Store(math.MaxInt64)
	var total uint64
	for _, bc := range w.Buckets {
		if bc[0] >= numBuckets {
			return fmt.Errorf("histogram: bucket %d out of range", bc[0])
		}
		h.counts[bc[0]].Add(bc[1])
		total += bc[1]
	}
	h.total.Store(total)
	h.sum.Store(w.Sum)
	if total > 0 {
		h.min.Store(w.Min)
	}
	h.max.Store(w.Max)
	return nil
}
