package disklog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/jobs"
)

// TestRetention: whole segments go, oldest first, by count, by bytes and
// by age; the newest segment always stays, and ids go on.
func TestRetention(t *testing.T) {
	t.Parallel()
	t.Run("count", func(t *testing.T) {
		t.Parallel()
		l := openLog(t, Config{SegmentBytes: 1024, MaxEvents: 20})
		var ids []uint64
		for i := range 100 {
			ids = append(ids, l.appendJobs("queued", fmt.Sprintf("j%d", i))...)
		}
		first, last, _ := l.Bounds(context.Background())
		if last != ids[99] || first != ids[80] {
			t.Errorf("bounds [%d, %d], want [%d, %d]: the newest 20", first, last, ids[80], ids[99])
		}
		if err := l.Read(context.Background(), ids[78], last, func(eventlog.Record) {}); !errors.Is(err, eventlog.ErrExpired) {
			t.Errorf("read from before the newest 20: %v, want ErrExpired", err)
		}
		segs := segments(t, l.cfg.Dir)
		oldest, _ := parseSegmentName(filepath.Base(segs[0]))
		if oldest > ids[80] || oldest <= ids[40] {
			t.Errorf("oldest segment from %d: want the segments wholly before %d gone, and no more", oldest, ids[80])
		}
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		const budget = 4096
		l := openLog(t, Config{SegmentBytes: 1024, MaxBytes: budget})
		for i := range 200 {
			l.appendJobs("queued", fmt.Sprintf("j%d", i))
		}
		var total int64
		for _, s := range segments(t, l.cfg.Dir) {
			fi, _ := os.Stat(s)
			total += fi.Size()
		}
		if total > budget || total < budget-1024-200 {
			t.Errorf("segments take %d bytes: want at most %d, and at most about a segment less", total, budget)
		}
		if got := l.metric("eventhub_log_bytes"); got < float64(total) {
			t.Errorf("eventhub_log_bytes %v, want at least the segments' %d", got, total)
		}
	})
	t.Run("age", func(t *testing.T) {
		t.Parallel()
		clock := &fakeClock{now: time.Now()}
		l := openLog(t, Config{MaxAge: 80 * time.Millisecond, now: clock.Now})
		old := l.appendJobs("queued", "old")
		// The active segment is sealed once its first event is older than a
		// quarter of the age; the next append begins a new one.
		clock.add(30 * time.Millisecond)
		hubtest.WaitFor(t, "the old segment sealed", 5*time.Second, func() bool {
			l.mu.RLock()
			defer l.mu.RUnlock()
			return l.segs[0].sealed
		})
		young := l.appendJobs("queued", "young")
		clock.add(60 * time.Millisecond) // the old segment's newest event is 90ms old
		hubtest.WaitFor(t, "the old segment dropped", 5*time.Second, func() bool { return len(segments(t, l.cfg.Dir)) == 1 })
		first, last, _ := l.Bounds(context.Background())
		if first != young[0] || last != young[0] || young[0] != old[0]+1 {
			t.Errorf("bounds [%d, %d] after the age went: want [%d, %d]", first, last, young[0], young[0])
		}
		clock.add(time.Hour) // the newest segment stays, however old
		l = l.reopen()
		if next := l.appendJobs("queued", "next"); next[0] != young[0]+1 {
			t.Errorf("next id %d, want %d", next[0], young[0]+1)
		}
	})
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestJobState: when segments go, the latest event of each job whose
// latest event was in them is kept in the job-state file, within the job
// budgets: the job table is whole across retention and a restart, and a
// job updated since is not taken back to its older state.
func TestJobState(t *testing.T) {
	t.Parallel()
	l := openLog(t, Config{SegmentBytes: 1024, MaxEvents: 10})
	want := map[string]string{}
	for i := range 30 {
		job := fmt.Sprintf("j%d", i)
		l.appendJobs("queued", job)
		l.appendJobs("started", job)
		want[job] = "started"
	}
	for i := range 5 { // updated later: their state is in a segment
		job := fmt.Sprintf("j%d", i)
		l.appendJobs("completed", job)
		want[job] = "completed"
	}
	if _, err := os.Stat(filepath.Join(l.cfg.Dir, stateFile)); err != nil {
		t.Fatalf("no job-state file after segments went: %v", err)
	}
	check := func(l *testLog, when string) {
		t.Helper()
		got := l.latestJobs()
		if len(got) != len(want) {
			t.Fatalf("%s: %d jobs, want %d: %v", when, len(got), len(want), got)
		}
		var prev uint64
		for _, g := range got {
			var id uint64
			var job, st string
			fmt.Sscanf(strings.NewReplacer(":", " ", "/", " ").Replace(g), "%d %s %s", &id, &job, &st)
			if want[job] != st || id <= prev {
				t.Errorf("%s: %s: want %s, in id order", when, g, want[job])
			}
			prev = id
		}
	}
	check(l, "after retention")
	l = l.reopen()
	check(l, "after reopening")
	// The jobs older than the job budget go first.
	small := l.reopen()
	small.Close()
	cfg := small.cfg
	cfg.openFile, cfg.Jobs = nil, 7
	small = openLog(t, cfg)
	if got := small.latestJobs(); len(got) != 7 || !strings.HasSuffix(got[6], "j4/completed") {
		t.Errorf("with a budget of 7 jobs: %v", got)
	}
}

// TestWriteError: a disk that refuses a write (full) fails the appends of
// that commit with ErrUnavailable and publishes nothing of them; the log is
// not Ready and refuses appends until the disk takes writes again, then
// goes on with the next id; nothing acknowledged is lost, nothing refused
// is stored, and no tail saw a refused event.
func TestWriteError(t *testing.T) {
	t.Parallel()
	for _, policy := range []Sync{SyncBatch, SyncAlways} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			l := openLog(t, Config{Sync: policy})
			var tailed []string
			var mu sync.Mutex
			stop, err := l.Tail(0, func(r eventlog.Record) {
				mu.Lock()
				tailed = append(tailed, r.Event.JobID)
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			ok := l.appendJobs("queued", "before")
			_, size := lastSegment(t, l.cfg.Dir)
			l.fs.setLimit(size + 50) // room for part of a record

			_, err = l.Append(context.Background(), "", []jobs.Event{event(t, "refused-1", "queued"), event(t, "refused-2", "queued")})
			if !errors.Is(err, eventlog.ErrUnavailable) {
				t.Fatalf("append on a full disk: %v, want ErrUnavailable", err)
			}
			if l.Ready() {
				t.Error("ready with a full disk")
			}
			if _, err := l.Append(context.Background(), "", []jobs.Event{event(t, "refused-3", "queued")}); !errors.Is(err, eventlog.ErrUnavailable) {
				t.Errorf("append while the disk fails: %v, want ErrUnavailable", err)
			}
			if _, after := lastSegment(t, l.cfg.Dir); after != size {
				t.Errorf("the segment is %d bytes after the failed write, want it cut back to %d", after, size)
			}
			if got := l.metric("eventhub_log_write_errors_total", "op", "write"); got != 1 {
				t.Errorf("write errors %v, want 1", got)
			}

			l.fs.setLimit(-1) // space is back
			hubtest.WaitFor(t, "the log ready again", 5*time.Second, l.Ready)
			next := l.appendJobs("queued", "after")
			if next[0] != ok[0]+1 {
				t.Errorf("next id %d, want %d: no id is given to what was refused", next[0], ok[0]+1)
			}
			mu.Lock()
			if fmt.Sprint(tailed) != "[before after]" {
				t.Errorf("tail saw %v", tailed)
			}
			mu.Unlock()
			l = l.reopen()
			if got := l.readAll(); fmt.Sprint(got) != fmt.Sprintf("[%d:before/queued %d:after/queued]", ok[0], next[0]) {
				t.Errorf("after reopening: %v", got)
			}
		})
	}
}

// TestSyncError: with SyncAlways a failed fsync fails its appends (they
// were not durable): nothing of them is published and the segment is cut
// back. With SyncBatch the appends were acknowledged already: the failure
// is counted and the log refuses appends until the disk recovers.
func TestSyncError(t *testing.T) {
	t.Parallel()
	t.Run("always", func(t *testing.T) {
		t.Parallel()
		l := openLog(t, Config{Sync: SyncAlways})
		ok := l.appendJobs("queued", "before")
		_, size := lastSegment(t, l.cfg.Dir)
		l.fs.setFailSync(true)
		if _, err := l.Append(context.Background(), "", []jobs.Event{event(t, "refused", "queued")}); !errors.Is(err, eventlog.ErrUnavailable) {
			t.Fatalf("append whose fsync failed: %v, want ErrUnavailable", err)
		}
		if _, after := lastSegment(t, l.cfg.Dir); after != size {
			t.Errorf("segment %d bytes, want it cut back to %d", after, size)
		}
		if got := l.metric("eventhub_log_write_errors_total", "op", "sync"); got != 1 {
			t.Errorf("sync errors %v, want 1", got)
		}
		l.fs.setFailSync(false)
		hubtest.WaitFor(t, "the log ready again", 5*time.Second, l.Ready)
		if next := l.appendJobs("queued", "after"); next[0] != ok[0]+1 {
			t.Errorf("next id %d, want %d", next[0], ok[0]+1)
		}
	})
	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		l := openLog(t, Config{Sync: SyncBatch})
		l.appendJobs("queued", "first")
		// The segment's header is synced when it is made, then the record.
		hubtest.WaitFor(t, "the first record synced", 5*time.Second, func() bool { return l.metric("eventhub_log_fsync_seconds") >= 2 })
		l.fs.setFailSync(true)
		l.appendJobs("queued", "acknowledged") // then its fsync fails
		hubtest.WaitFor(t, "the log not ready", 5*time.Second, func() bool { return !l.Ready() })
		if got := l.metric("eventhub_log_write_errors_total", "op", "sync"); got < 1 {
			t.Errorf("sync errors %v", got)
		}
		l.fs.setFailSync(false)
		hubtest.WaitFor(t, "the log ready again", 5*time.Second, l.Ready)
		l.appendJobs("queued", "after")
		if got := l.readAll(); len(got) != 3 {
			t.Errorf("records %v", got)
		}
	})
}
