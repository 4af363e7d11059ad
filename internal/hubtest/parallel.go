package hubtest

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TimeParallel runs op b.N times over workers goroutines and reports the
// rate (events/s) and the median and 99th percentile of op's own latency
// (p50-ms, p99-ms). op returns how long the operation took, measured by
// itself so that its setup is left out; an error fails the benchmark.
func TimeParallel(b *testing.B, workers int, op func() (time.Duration, error)) {
	var next atomic.Int64
	lat := make([][]time.Duration, workers)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				d, err := op()
				if err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], d)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}
