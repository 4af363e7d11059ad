package disklog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/jobs"
)

// testLog is a log under test with what the test looks at: its metrics,
// its log lines and its files' seam.
type testLog struct {
	*Log
	t    *testing.T
	cfg  Config
	reg  *prometheus.Registry
	logs *hubtest.LogBuffer
	fs   *testFS
}

// openLog opens a log on cfg (cfg.Dir a new temporary directory when
// empty) through a testFS, and closes it at cleanup.
func openLog(t *testing.T, cfg Config) *testLog {
	t.Helper()
	l, err := tryOpen(t, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func tryOpen(t *testing.T, cfg Config) (*testLog, error) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	tl := &testLog{t: t, reg: prometheus.NewRegistry(), logs: &hubtest.LogBuffer{}, fs: &testFS{limit: -1}}
	cfg.Registerer = tl.reg
	cfg.Logger = slog.New(slog.NewJSONHandler(tl.logs, nil))
	if cfg.openFile == nil {
		cfg.openFile = tl.fs.open
	}
	if cfg.retryEvery == 0 {
		cfg.retryEvery = 10 * time.Millisecond
	}
	tl.cfg = cfg
	l, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	tl.Log = l
	t.Cleanup(func() { l.Close() })
	return tl, nil
}

// reopen closes the log and opens it again on the same directory and
// configuration, with fresh metrics and log lines.
func (tl *testLog) reopen() *testLog {
	tl.t.Helper()
	if err := tl.Close(); err != nil {
		tl.t.Fatalf("close: %v", err)
	}
	cfg := tl.cfg
	cfg.openFile = nil
	return openLog(tl.t, cfg)
}

// crash stops the log as a crash of the process would leave it: what was
// written is in the files (the kernel keeps it), but the log is not closed
// (its run file says so). It releases the files and the lock, so that the
// test may open the directory again.
func (tl *testLog) crash() {
	tl.mu.Lock()
	tl.closed = true
	tl.mu.Unlock()
	close(tl.stop)
	<-tl.done
	tl.closeFiles()
}

// metric returns the value of the counter or gauge name (with labels
// label=value pairs) in tl's registry.
func (tl *testLog) metric(name string, labels ...string) float64 {
	tl.t.Helper()
	families, err := tl.reg.Gather()
	if err != nil {
		tl.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if matches(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	tl.t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.Label {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// event is a valid event of job id with status st.
func event(t testing.TB, job string, st string) jobs.Event {
	t.Helper()
	evs, err := jobs.DecodeEvents(fmt.Appendf(nil,
		`{"type":"growth","jobId":%q,"status":%q,"timestamp":"2026-01-02T03:04:05Z","data":{"assetId":"a1"}}`, job, st))
	if err != nil {
		t.Fatal(err)
	}
	return evs[0]
}

// appendJobs appends one batch: an event for each job, all with status st.
func (tl *testLog) appendJobs(st string, jobIDs ...string) []uint64 {
	tl.t.Helper()
	evs := make([]jobs.Event, len(jobIDs))
	for i, j := range jobIDs {
		evs[i] = event(tl.t, j, st)
	}
	ids, err := tl.Append(context.Background(), "", evs)
	if err != nil {
		tl.t.Fatalf("append %v: %v", jobIDs, err)
	}
	return ids
}

// readAll reads every record Read answers for, as "id:job/status".
func (tl *testLog) readAll() []string {
	tl.t.Helper()
	first, last, _ := tl.Bounds(context.Background())
	var got []string
	if err := tl.Read(context.Background(), first-1, last, func(r eventlog.Record) {
		got = append(got, fmt.Sprintf("%d:%s/%s", r.ID, r.Event.JobID, r.Event.Status))
	}); err != nil {
		tl.t.Fatalf("read (%d, %d]: %v", first-1, last, err)
	}
	return got
}

// latestJobs returns LatestJobs up to the newest id, as "id:job/status".
func (tl *testLog) latestJobs() []string {
	tl.t.Helper()
	_, last, _ := tl.Bounds(context.Background())
	var got []string
	if err := tl.LatestJobs(context.Background(), last, func(r eventlog.Record) {
		got = append(got, fmt.Sprintf("%d:%s/%s", r.ID, r.Event.JobID, r.Event.Status))
	}); err != nil {
		tl.t.Fatalf("latest jobs: %v", err)
	}
	return got
}

// segments returns the paths of the log's segment files, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// errNoSpace is what a testFS write past its limit fails with.
var errNoSpace = errors.New("no space left on device")

// testFS is the files' seam of a log under test: it counts writes and
// fsyncs, and fails the writes of segments past limit bytes (as a full
// disk does: what fits is written) while limit is not negative.
type testFS struct {
	mu       sync.Mutex
	limit    int64
	failSync bool // the fsyncs of segments fail
	writes   int
	syncs    int
	ops      []string // "w" and "s" of segments, in order
}

func (fs *testFS) setLimit(n int64) {
	fs.mu.Lock()
	fs.limit = n
	fs.mu.Unlock()
}

func (fs *testFS) counts() (writes, syncs int, ops string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.writes, fs.syncs, strings.Join(fs.ops, "")
}

func (fs *testFS) open(name string, flag int, perm os.FileMode) (file, error) {
	f, err := openOS(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &testFile{file: f, fs: fs, seg: strings.HasSuffix(name, ".seg")}, nil
}

type testFile struct {
	file
	fs  *testFS
	seg bool
}

func (f *testFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	limit := f.fs.limit
	if f.seg {
		f.fs.writes++
		f.fs.ops = append(f.fs.ops, "w")
	}
	f.fs.mu.Unlock()
	if f.seg && limit >= 0 && off+int64(len(b)) > limit {
		n, _ := f.file.WriteAt(b[:max(limit-off, 0)], off)
		return n, errNoSpace
	}
	return f.file.WriteAt(b, off)
}

func (f *testFile) Sync() error {
	if f.seg {
		f.fs.mu.Lock()
		f.fs.syncs++
		f.fs.ops = append(f.fs.ops, "s")
		fail := f.fs.failSync
		f.fs.mu.Unlock()
		if fail {
			return errors.New("input/output error")
		}
	}
	return f.file.Sync()
}

func (fs *testFS) setFailSync(v bool) {
	fs.mu.Lock()
	fs.failSync = v
	fs.mu.Unlock()
}
