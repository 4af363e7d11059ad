package bench

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	t.Parallel()
	// Every value falls in the bucket bucketOf names, buckets tile the line
	// without gaps, and each is narrower than 1/subCount of its lower bound.
	prevHi := int64(0)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if lo >= 2*subCount && float64(hi-lo) > float64(lo)/subCount {
			t.Fatalf("bucket %d [%d,%d) wider than 1/%d of its bound", i, lo, hi, subCount)
		}
		for _, v := range []int64{lo, hi - 1, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = hi
	}
	if got := bucketOf(math.MaxInt64); got != numBuckets-1 {
		t.Errorf("bucketOf(MaxInt64) = %d, want the last bucket %d", got, numBuckets-1)
	}
}

func TestHistogramRelativeError(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := int64(math.Exp(rng.Float64() * math.Log(1e12))) // 1 ns … 1000 s, log-uniform
		got := bucketValue(bucketOf(v))
		if rel := math.Abs(float64(got-v)) / float64(v); rel >= 0.01 {
			t.Fatalf("value %d reported as %d: error %.4f ≥ 1%%", v, got, rel)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 0-200ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(200 * time.Millisecond))) }},
		{"lognormal around 5ms", func(r *rand.Rand) time.Duration {
			return time.Duration(math.Exp(r.NormFloat64()*1.5) * float64(5*time.Millisecond))
		}},
		{"small exact values", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(200)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(3, 4))
			h := NewHistogram()
			vals := make([]time.Duration, 50000)
			for i := range vals {
				vals[i] = tc.gen(rng)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := h.Quantile(q)
				if d := math.Abs(float64(got - exact)); d > 0.01*float64(exact) && d > 1 {
					t.Errorf("q%.3f = %v, exact %v: off by more than 1%%", q, got, exact)
				}
			}
			if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Errorf("min/max = %v/%v, want %v/%v exactly", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
			if h.Quantile(1) != vals[len(vals)-1] {
				t.Errorf("q1 = %v, want the max %v", h.Quantile(1), vals[len(vals)-1])
			}
		})
	}
}

func TestHistogramMergeIsExact(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	whole, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range 30000 {
		v := time.Duration(rng.Int64N(int64(time.Second)))
		whole.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	merged := NewHistogram()
	merged.Merge(a)
	merged.Merge(b)
	merged.Merge(NewHistogram()) // merging an empty one changes nothing
	if !slices.Equal(merged.Buckets(), whole.Buckets()) {
		t.Fatal("merged buckets differ from the histogram of all values")
	}
	if merged.Count() != whole.Count() || merged.Min() != whole.Min() || merged.Max() != whole.Max() || merged.Mean() != whole.Mean() {
		t.Errorf("merged count/min/max/mean = %d/%v/%v/%v, want %d/%v/%v/%v",
			merged.Count(), merged.Min(), merged.Max(), merged.Mean(), whole.Count(), whole.Min(), whole.Max(), whole.Mean())
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if merged.Quantile(q) != whole.Quantile(q) {
			t.Errorf("q%v: merged %v, whole %v", q, merged.Quantile(q), whole.Quantile(q))
		}
	}
}

func TestHistogramJSONRoundTrip(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	for _, v := range []time.Duration{0, 3, 255, 256, time.Millisecond, 97 * time.Millisecond, time.Hour} {
		h.Record(v)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Buckets(), h.Buckets()) || back.Count() != h.Count() ||
		back.Min() != h.Min() || back.Max() != h.Max() || back.Mean() != h.Mean() {
		t.Errorf("round trip changed the histogram: %s", b)
	}
	empty, _ := json.Marshal(NewHistogram())
	var e Histogram
	if err := json.Unmarshal(empty, &e); err != nil || e.Count() != 0 || e.Quantile(0.5) != 0 {
		t.Errorf("empty round trip: %v, count %d", err, e.Count())
	}
	if err := json.Unmarshal([]byte(`{"b":[[99999,1]]}`), &e); err == nil {
		t.Error("out-of-range bucket accepted")
	}
}

func TestHistogramConcurrentRecord(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000 + i))
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Min() != 0 || h.Max() != 7999 {
		t.Errorf("count/min/max = %d/%v/%v, want 8000/0/7999", h.Count(), h.Min(), h.Max())
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	t.Parallel()
	h := NewHistogram()
	if h.Quantile(0.99) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Error("an empty histogram reports non-zero figures")
	}
	h.Record(-5 * time.Millisecond) // a clock step
	if h.Count() != 1 || h.Max() != 0 {
		t.Errorf("negative value: count %d max %v, want 1 and 0", h.Count(), h.Max())
	}
}
