package disklog

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/jobs"
)

// BenchmarkAppend: appends of one event each, by 1 and by 8 appenders at
// once, with each Sync policy: events a second and the 99th percentile of
// an append's latency, on the machine's own disk (the data dir is under
// the test's temporary directory: set TMPDIR to measure another disk).
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []Sync{SyncBatch, SyncAlways} {
		for _, appenders := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/appenders=%d", policy, appenders), func(b *testing.B) {
				l, err := Open(Config{Dir: b.TempDir(), Sync: policy, Registerer: prometheus.NewRegistry()})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ev := event(b, "j-0123456789abcdef", "completed")
				hubtest.TimeParallel(b, appenders, func() (time.Duration, error) {
					start := time.Now()
					_, err := l.Append(context.Background(), "", []jobs.Event{ev})
					return time.Since(start), err
				})
			})
		}
	}
}

// BenchmarkRecover: opening a log of 1 GiB (--data-max-bytes' default;
// --data-max-events raised, as its default binds first for events of
// under 1 KiB):
// reading every record, checking it, rebuilding the sparse indexes and the
// job index; warm (the files in the page cache, as after a crash of the
// process) and cold (their pages dropped first, as after a reboot: on
// Linux, where the kernel is asked to drop them). The log is made once, in
// DISKLOG_BENCH_DIR when set (and kept there, to time a hub's start on
// it), else in a temporary directory.
func BenchmarkRecover(b *testing.B) {
	dir := os.Getenv("DISKLOG_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	const size = 1 << 30
	events := fillLog(b, dir, size)
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if cold {
					b.StopTimer()
					dropCache(b, dir)
					b.StartTimer()
				}
				l, err := Open(Config{Dir: dir, Registerer: prometheus.NewRegistry(), MaxEvents: 100_000_000})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				l.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(events), "events")
		})
	}
}

// fillLog appends events of a typical size (a completed growth job's, some
// 300 bytes on disk) to the log in dir until it holds size bytes, unless
// it does already, and returns how many events it holds. 50,000 jobs,
// four events each, round and round.
func fillLog(b *testing.B, dir string, size int64) uint64 {
	b.Helper()
	l, err := Open(Config{Dir: dir, Registerer: prometheus.NewRegistry(), MaxBytes: 2 * size, MaxEvents: 100_000_000})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	data := []byte(`{"assetId":"a1","durationMs":1234,"result":{"final":162889.46,"years":10,"rate":0.05,"principal":100000}}`)
	statuses := []jobs.Status{jobs.Queued, jobs.Started, jobs.Completed}
	batch := make([]jobs.Event, 1000)
	for n := 0; ; n++ {
		l.mu.RLock()
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		first, next := l.first(), l.next
		l.mu.RUnlock()
		if total >= size {
			return next - first
		}
		for i := range batch {
			k := n*len(batch) + i
			batch[i] = jobs.Event{Type: jobs.Growth, JobID: fmt.Sprintf("j-%016x", k/3%50000), Status: statuses[k%3],
				Timestamp: time.Unix(1_790_000_000+int64(k), 0).UTC(), Data: data, AssetID: "a1"}
		}
		if _, err := l.Append(context.Background(), "", slices.Clone(batch)); err != nil {
			b.Fatal(err)
		}
	}
}
