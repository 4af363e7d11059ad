package disklog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/eventlog/logtest"
	"github.com/finexbot/eventhub/jobs"
)

// TestContract: the disk log keeps the contract every log keeps, with
// SyncBatch and SyncAlways.
func TestContract(t *testing.T) {
	for _, policy := range []Sync{SyncBatch, SyncAlways} {
		t.Run(policy.String(), func(t *testing.T) {
			logtest.Run(t, func(t *testing.T, keep int) eventlog.Log {
				return openLog(t, Config{Sync: policy, MaxEvents: keep}).Log
			})
		})
	}
}

// TestReopen: a log closed and opened again holds the same records, reads
// them back from disk, and numbers on from where it stopped.
func TestReopen(t *testing.T) {
	t.Parallel()
	for _, policy := range []Sync{SyncBatch, SyncAlways} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			l := openLog(t, Config{Sync: policy, SegmentBytes: 1024})
			var ids []uint64
			for i := range 40 {
				ids = append(ids, l.appendJobs("queued", fmt.Sprintf("j%d", i), fmt.Sprintf("k%d", i))...)
			}
			want := l.readAll()
			if len(want) != 80 || len(segments(t, l.cfg.Dir)) < 3 {
				t.Fatalf("%d records in %d segments: want 80 over several", len(want), len(segments(t, l.cfg.Dir)))
			}
			l = l.reopen()
			if got := l.readAll(); !slices.Equal(got, want) {
				t.Fatalf("after reopening:\n%v\nwant\n%v", got, want)
			}
			if next := l.appendJobs("started", "j0"); next[0] != ids[len(ids)-1]+1 {
				t.Errorf("first id after reopening %d, want %d", next[0], ids[len(ids)-1]+1)
			}
			// A tail from the start gets what is on disk, then what comes.
			c := make(chan eventlog.Record, 200)
			stop, err := l.Tail(ids[0]-1, func(r eventlog.Record) { c <- r })
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			more := l.appendJobs("completed", "j0")
			for i, want := range append(append(ids, ids[len(ids)-1]+1), more...) {
				if r := <-c; r.ID != want {
					t.Fatalf("tail record %d: id %d, want %d", i, r.ID, want)
				}
			}
			if got := l.latestJobs(); len(got) != 80 || got[len(got)-1] != fmt.Sprintf("%d:j0/completed", more[0]) {
				t.Errorf("latest jobs: %d, the last %v", len(got), got[len(got)-1:])
			}
		})
	}
}

// TestGroupCommit: appends that wait while the writer writes are committed
// together, in one write and, with SyncAlways, one fsync after it: fewer
// writes and fsyncs than appends, and never a write acknowledged before
// its fsync (each write is followed by an fsync). With SyncBatch the
// fsyncs are fewer still.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	for _, policy := range []Sync{SyncAlways, SyncBatch} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			l := openLog(t, Config{Sync: policy})
			const appenders, each = 8, 50
			var seen sync.Map
			stop, err := l.Tail(0, func(r eventlog.Record) { seen.Store(r.ID, true) })
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			var wg sync.WaitGroup
			for a := range appenders {
				wg.Go(func() {
					for i := range each {
						ids, err := l.Append(context.Background(), "", []jobs.Event{event(t, fmt.Sprintf("a%d-%d", a, i), "queued")})
						if err != nil {
							t.Errorf("append: %v", err)
							return
						}
						// Acknowledged: the tails have it already.
						if _, ok := seen.Load(ids[0]); !ok {
							t.Errorf("id %d acknowledged before the tail had it", ids[0])
						}
					}
				})
			}
			wg.Wait()
			writes, syncs, ops := l.fs.counts()
			t.Logf("%s: %d appends, %d writes, %d fsyncs", policy, appenders*each, writes, syncs)
			if writes >= appenders*each {
				t.Errorf("%d writes for %d appends: no group commit", writes, appenders*each)
			}
			if policy == SyncAlways && strings.Contains(ops, "ww") {
				t.Errorf("a write not followed by its fsync: %s", ops)
			}
			if policy == SyncBatch && syncs >= writes {
				t.Errorf("batch: %d fsyncs for %d writes", syncs, writes)
			}
			if n := len(l.readAll()); n != appenders*each {
				t.Errorf("%d records, want %d", n, appenders*each)
			}
		})
	}
}

// TestTornTail: a crash in the middle of a write leaves part of a record,
// or of a batch, at the end of the newest segment. Opening cuts it (the
// whole batch: an append is stored all or none), says how much in its log
// and its metric, and numbers on from the last whole batch.
func TestTornTail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cut  func(size, lastRecord int64) int64 // the size the file is cut to
		recs float64                            // records cut
	}{
		{"inside the last record", func(size, last int64) int64 { return size - 5 }, 3},
		{"inside the last record's header", func(size, last int64) int64 { return size - last + 7 }, 3},
		{"between two records of a batch", func(size, last int64) int64 { return size - last }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := openLog(t, Config{})
			a := l.appendJobs("queued", "a1", "a2")
			l.appendJobs("queued", "b1", "b2", "b3") // the batch the crash tears
			_, size := lastSegment(t, l.cfg.Dir)
			lastRecord := (recordLen(t, "b3"))
			l.Close()
			seg, _ := lastSegment(t, l.cfg.Dir)
			to := tc.cut(size, lastRecord)
			if err := os.Truncate(seg, to); err != nil {
				t.Fatal(err)
			}

			l = l.reopen()
			if got, want := l.readAll(), []string{fmt.Sprintf("%d:a1/queued", a[0]), fmt.Sprintf("%d:a2/queued", a[1])}; !slices.Equal(got, want) {
				t.Errorf("after the cut: %v, want %v", got, want)
			}
			if got := l.metric("eventhub_log_records_cut_total", "reason", "torn"); got != tc.recs {
				t.Errorf("records cut %v, want %v", got, tc.recs)
			}
			if logs := l.logs.String(); !strings.Contains(logs, "cut a torn tail") || !strings.Contains(logs, fmt.Sprintf(`"bytes_cut":%d`, to-(size-3*lastRecord))) {
				t.Errorf("log does not say what it cut (%d bytes):\n%s", to-(size-3*lastRecord), logs)
			}
			if _, after := lastSegment(t, l.cfg.Dir); after != size-3*lastRecord {
				t.Errorf("segment cut to %d bytes, want %d", after, size-3*lastRecord)
			}
			if next := l.appendJobs("started", "a1"); next[0] != a[1]+1 {
				t.Errorf("next id %d, want %d", next[0], a[1]+1)
			}
			if got := l.latestJobs(); len(got) != 2 || !strings.HasSuffix(got[1], "a1/started") {
				t.Errorf("latest jobs %v: the torn batch's jobs are not there", got)
			}
		})
	}
}

// lastSegment returns the newest segment's path and size.
func lastSegment(t *testing.T, dir string) (string, int64) {
	t.Helper()
	segs := segments(t, dir)
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return segs[len(segs)-1], fi.Size()
}

// flipByte flips one bit of the byte at off of path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestFlippedByte: damage on disk (one flipped bit) is found by the
// record's checksum. In the newest segment the log is cut there; in a
// sealed segment the rest of that segment is lost, later segments stay,
// and a resume from before the damage is told to start over (ErrExpired).
// Either way it is logged and counted.
func TestFlippedByte(t *testing.T) {
	t.Parallel()
	t.Run("sealed segment", func(t *testing.T) {
		t.Parallel()
		l := openLog(t, Config{SegmentBytes: 1024})
		var ids []uint64
		for i := range 30 {
			ids = append(ids, l.appendJobs("queued", fmt.Sprintf("j%d", i))...)
		}
		l.Close()
		segs := segments(t, l.cfg.Dir)
		if len(segs) < 3 {
			t.Fatalf("%d segments, want 3 or more", len(segs))
		}
		rec := (recordLen(t, "j0"))
		flipByte(t, segs[0], headerSize+2*rec+rec/2) // in the third record's JSON

		l = l.reopen()
		if got := l.metric("eventhub_log_records_cut_total", "reason", "corrupt"); got < 1 {
			t.Errorf("corrupt records cut: %v", got)
		}
		if logs := l.logs.String(); !strings.Contains(logs, "cut a damaged segment") {
			t.Errorf("no log of the damage:\n%s", logs)
		}
		first, last, _ := l.Bounds(context.Background())
		base, _ := parseSegmentName(filepath.Base(segs[1]))
		if first != base || last != ids[len(ids)-1] {
			t.Errorf("bounds [%d, %d], want [%d, %d]: reads start after the damaged segment", first, last, base, ids[len(ids)-1])
		}
		if err := l.Read(context.Background(), ids[0], last, func(eventlog.Record) {}); !errors.Is(err, eventlog.ErrExpired) {
			t.Errorf("a read from before the damage: %v, want ErrExpired", err)
		}
		if got := l.readAll(); len(got) != int(last-base+1) {
			t.Errorf("%d records after the damage, want %d", len(got), last-base+1)
		}
		// The jobs before the damage are still in the job table.
		if got := l.latestJobs(); len(got) != 30-int(base-ids[0])+2 || !strings.HasSuffix(got[0], ":j0/queued") {
			t.Errorf("latest jobs %v", got)
		}
	})
	t.Run("newest segment", func(t *testing.T) {
		t.Parallel()
		l := openLog(t, Config{})
		a := l.appendJobs("queued", "a")
		l.appendJobs("queued", "b")
		l.appendJobs("queued", "c")
		l.Close()
		seg, size := lastSegment(t, l.cfg.Dir)
		rec := (recordLen(t, "b"))
		flipByte(t, seg, size-2*rec+5) // b's checksum

		l = l.reopen()
		if got := l.readAll(); !slices.Equal(got, []string{fmt.Sprintf("%d:a/queued", a[0])}) {
			t.Errorf("after the cut: %v", got)
		}
		if got := l.metric("eventhub_log_records_cut_total", "reason", "corrupt"); got != 2 {
			t.Errorf("records cut %v, want 2 (the damaged one and the one after)", got)
		}
		if next := l.appendJobs("queued", "d"); next[0] != a[0]+1 {
			t.Errorf("next id %d, want %d", next[0], a[0]+1)
		}
	})
}

// TestNewerVersion: a segment or job-state file of a newer format is
// refused at open, with an error that names the file and its version, and
// left as it is.
func TestNewerVersion(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"segment", "job-state file"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := openLog(t, Config{SegmentBytes: 1024, MaxEvents: 20})
			for i := range 40 {
				l.appendJobs("queued", fmt.Sprintf("j%d", i))
			}
			l.Close()
			path, _ := lastSegment(t, l.cfg.Dir)
			if name != "segment" {
				path = filepath.Join(l.cfg.Dir, stateFile)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[8] = 2 // the version
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			cfg := l.cfg
			cfg.openFile = nil
			_, err = tryOpen(t, cfg)
			if !errors.Is(err, ErrNewerVersion) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "version 2") {
				t.Fatalf("open: %v; want ErrNewerVersion naming %s and version 2", err, path)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Error("the refused file was changed")
			}
		})
	}
}

// TestLocked: a data dir is one log's: a second open is refused while the
// first is open, and works once it is closed.
func TestLocked(t *testing.T) {
	t.Parallel()
	l := openLog(t, Config{})
	_, err := tryOpen(t, Config{Dir: l.cfg.Dir})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("a second open: %v; want ErrLocked naming pid %d", err, os.Getpid())
	}
	l.Close()
	if _, err := tryOpen(t, Config{Dir: l.cfg.Dir}); err != nil {
		t.Fatalf("open after close: %v", err)
	}
}

// TestNotWritable: a data dir that cannot be made or written is refused.
func TestNotWritable(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tryOpen(t, Config{Dir: filepath.Join(f, "data")}); err == nil {
		t.Fatal("a data dir under a file was opened")
	}
}

// recordLen is the length on disk of the record of job's queued event.
func recordLen(t *testing.T, job string) int64 {
	ev := event(t, job, "queued")
	return int64(recordHeaderSize + len(ev.AppendJSON(nil)))
}

// TestMachineCrash: a log that ran with SyncBatch and was not closed when
// the machine went down (its boot id changed) may have lost the events it
// acknowledged last, whose ids clients may have seen: the counter jumps
// past them and resumes from before get a reset. A crash of the process
// alone (same boot), a clean close, or SyncAlways keep the ids contiguous.
func TestMachineCrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		sync  Sync
		clean bool
		boot  string // the boot id at the second open; the first is "A"
		jump  bool
	}{
		{"batch, the machine crashed", SyncBatch, false, "B", true},
		{"batch, the process crashed", SyncBatch, false, "A", false},
		{"batch, closed, then the machine rebooted", SyncBatch, true, "B", false},
		{"always, the machine crashed", SyncAlways, false, "B", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, Config{Dir: dir, Sync: tc.sync, boot: func() string { return "A" }})
			ids := l.appendJobs("queued", "a", "b")
			if tc.clean {
				l.Close()
			} else {
				l.crash()
			}
			l = openLog(t, Config{Dir: dir, Sync: tc.sync, boot: func() string { return tc.boot }})
			next := l.appendJobs("queued", "c")
			err := l.Read(context.Background(), ids[0], next[0], func(eventlog.Record) {})
			if !tc.jump {
				if next[0] != ids[1]+1 || err != nil {
					t.Errorf("next id %d (want %d), read from before: %v", next[0], ids[1]+1, err)
				}
				return
			}
			if next[0] != ids[1]+1+idJump || !errors.Is(err, eventlog.ErrExpired) {
				t.Errorf("next id %d (want %d), read from before: %v (want ErrExpired)", next[0], ids[1]+1+idJump, err)
			}
			if !strings.Contains(l.logs.String(), "the machine crashed") {
				t.Errorf("the jump is not logged:\n%s", l.logs.String())
			}
			// The jump holds across another restart, and the job table too.
			l = l.reopen()
			if got := l.appendJobs("queued", "d"); got[0] != next[0]+1 {
				t.Errorf("after reopening: id %d, want %d", got[0], next[0]+1)
			}
			if got := l.latestJobs(); len(got) != 4 {
				t.Errorf("latest jobs %v, want a, b, c and d", got)
			}
		})
	}
}
