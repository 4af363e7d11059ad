package disklog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/ratelog"
	"github.com/finexbot/eventhub/jobs"
)

// maxRead bounds one Read: a resume from further back than this many
// events is told to start over (ErrExpired), as a cluster's log does.
const maxRead = 100_000

// stateFile is the name of the job-state file in the data dir.
const stateFile = "jobs.state"

// Log is the event log of a single node, on disk: segments of records
// written by one goroutine, the writer, which commits every append
// waiting in one write (and, by the Sync policy, one fsync), then hands
// the records to the tails and acknowledges them. Reads (resumes) read the
// committed records from the files, concurrently.
//
// Who owns what: the writer goroutine owns the active segment's writing
// side, the id counter's advance, retention and the job-state file; it
// publishes what it commits under mu (the segments, the counter) and
// tailMu (the tails), and updates the job index under jobsMu. Readers take
// mu shared. The lock order is jobsMu, tailMu, mu.
type Log struct {
	cfg  Config
	boot string // this boot of the machine, for the run file
	log  *slog.Logger
	warn *ratelog.Limiter
	m    *metrics
	lock *os.File // the data dir's lock, held while the log is open

	reqs chan *appendReq
	stop chan struct{} // closed by Close: the writer ends
	done chan struct{} // closed when the writer has ended
	w    writer        // the writer goroutine's own state

	tailMu sync.Mutex // guards tails; held while a commit is handed to them
	tails  map[*func(eventlog.Record)]struct{}

	mu      sync.RWMutex // guards what follows, and the segments' committed fields
	segs    []*segment   // oldest first; the last one is written to unless sealed
	next    uint64       // the id of the next event; never 0
	floor   uint64       // no id below it is read: the end of damage recovery cut
	failing bool         // the last write or fsync failed, and no probe has succeeded since
	closed  bool

	jobsMu       sync.Mutex // guards jobs, state, stateThrough
	jobs         *jobIndex
	state        file   // the job-state file; nil when there is none
	stateThrough uint64 // the last id of the segments the job-state file stands for
	stateBytes   int64
}

var _ eventlog.Log = (*Log)(nil)
var _ eventlog.JobKeeper = (*Log)(nil)

// appendReq is one Append waiting for the writer.
type appendReq struct {
	events []jobs.Event
	ids    []uint64
	done   chan error // capacity 1: the writer never blocks on an appender that gave up
}

// Open opens the log in cfg.Dir, making the directory if needed, and
// recovers it: it reads every segment, cuts a torn or damaged tail (and
// logs what it cut), and rebuilds the id counter and the job index. It
// fails when the directory is not writable, is locked by another process,
// or holds a file of a newer format.
func Open(cfg Config) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("disklog: no data dir")
	}
	cfg = cfg.withDefaults()
	start := time.Now()
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(cfg.Dir, "LOCK"))
	if errors.Is(err, ErrLocked) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.Dir, err)
	}
	if err := writable(cfg.Dir); err != nil {
		lock.Close()
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer, cfg.Dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	l := &Log{
		cfg: cfg, log: cfg.Logger, warn: ratelog.New(cfg.Logger, time.Minute), m: m, lock: lock,
		reqs: make(chan *appendReq, 1024), stop: make(chan struct{}), done: make(chan struct{}),
		tails: map[*func(eventlog.Record)]struct{}{},
		jobs:  newJobIndex(cfg.Jobs, cfg.JobsBytes),
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.boot = cfg.bootID()
	prev, _ := readRun(cfg.Dir)
	if err := l.afterMachineCrash(prev, l.boot); err != nil {
		l.closeFiles()
		return nil, err
	}
	if err := writeRun(cfg.Dir, runState{Boot: l.boot, Sync: cfg.Sync.String()}); err != nil {
		l.closeFiles()
		return nil, err
	}
	took := time.Since(start)
	m.recovery.Set(took.Seconds())
	l.updateBytes()
	first, last, _ := l.Bounds(context.Background())
	l.log.Info("event log opened", "dir", cfg.Dir, "sync", cfg.Sync.String(), "segments", len(l.segs),
		"first_id", first, "last_id", last, "jobs", l.jobs.order.Len(), "seconds", took.Seconds())
	l.w.init(l)
	go l.run() // Close waits for it
	return l, nil
}

// writable checks that files can be made in dir.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// recover reads the job-state file and the segments, cutting what a crash
// left torn and what is damaged.
func (l *Log) recover() error {
	dir := l.cfg.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var bases []uint64
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, stateFile+".tmp"):
			os.Remove(filepath.Join(dir, name)) // a rewrite a crash cut short
		case strings.HasSuffix(name, ".seg"):
			base, ok := parseSegmentName(name)
			if !ok {
				return fmt.Errorf("%w: %s is not a segment name (%s)", ErrDamaged, filepath.Join(dir, name), segmentName(1))
			}
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	if err := l.readState(); err != nil {
		return err
	}
	// Segments the job-state file stands for: their removal was cut short.
	for len(bases) > 1 && bases[1] <= l.stateThrough+1 {
		path := filepath.Join(dir, segmentName(bases[0]))
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		l.log.Info("event log: removed a segment the job-state file stands for", "file", path)
		bases = bases[1:]
	}
	// A newest segment with no room for a record: a roll a crash cut short.
	if n := len(bases); n > 0 {
		path := filepath.Join(dir, segmentName(bases[n-1]))
		if fi, err := os.Stat(path); err == nil && fi.Size() <= headerSize {
			b, _ := os.ReadFile(path)
			if _, err := parseHeader(b, segmentMagic, path); err != nil && !errors.Is(err, ErrNewerVersion) {
				os.Remove(path)
				l.log.Warn("event log: removed a segment whose making a crash cut short", "file", path, "bytes", fi.Size())
				bases = bases[:n-1]
			}
		}
	}
	for i, base := range bases {
		if err := l.recoverSegment(base, i == len(bases)-1); err != nil {
			return err
		}
	}
	for i := 1; i < len(l.segs); i++ {
		prev, s := l.segs[i-1], l.segs[i]
		if s.base != prev.last+1 {
			l.floor = s.base
			if s.base > prev.last+1 {
				l.log.Warn("event log: ids are missing between two segments (the jump after a crash of the machine, or a segment lost); resumes from before them get a reset",
					"missing_from", prev.last+1, "missing_to", s.base-1)
			} else {
				return fmt.Errorf("%w: %s starts at id %d, which %s holds", ErrDamaged, s.path, s.base, prev.path)
			}
		}
	}
	if n := len(l.segs); n > 0 {
		l.next = l.segs[n-1].last + 1
	} else {
		// Ids only grow, even across a lost data dir: from the clock, a
		// thousand per millisecond, as the memory log does.
		l.next = max(uint64(l.cfg.now().UnixMilli())*1000, l.stateThrough+1, 1)
	}
	return nil
}

// readState loads the job-state file into the job index.
func (l *Log) readState() error {
	path := filepath.Join(l.cfg.Dir, stateFile)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("job-state file: %w", err)
	}
	f, err := l.cfg.openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("job-state file: %w", err)
	}
	hb := make([]byte, headerSize)
	n, _ := f.ReadAt(hb, 0)
	h, err := parseHeader(hb[:n], stateMagic, path)
	if err != nil {
		f.Close()
		if errors.Is(err, ErrNewerVersion) {
			return err
		}
		return fmt.Errorf("%w: %s: %v", ErrDamaged, path, err)
	}
	l.state, l.stateThrough, l.stateBytes = f, h.base, fi.Size()
	var buf []byte
	r := newReader(f, headerSize, fi.Size())
	off := int64(headerSize)
	for {
		rec, err := readRecord(r, &buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			l.m.cutCorrupt.Inc()
			l.log.Error("event log: the job-state file is damaged; the jobs after the damage are not restored", "file", path, "offset", off, "err", err)
			break
		}
		if job, ok := jobIDOf(rec.payload); ok {
			l.jobs.update(jobLoc{job: job, id: rec.id, off: off, n: rec.size()})
		}
		off += int64(rec.size())
	}
	return nil
}

// recoverSegment opens and reads the segment whose first id is base,
// cutting what follows damage; last says it is the newest, which is
// written to next.
func (l *Log) recoverSegment(base uint64, last bool) error {
	path := filepath.Join(l.cfg.Dir, segmentName(base))
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := l.cfg.openFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	s := &segment{base: base, path: path, f: f, remove: os.Remove, modified: fi.ModTime(), sealed: !last}
	hb := make([]byte, headerSize)
	n, _ := f.ReadAt(hb, 0)
	h, err := parseHeader(hb[:n], segmentMagic, path)
	if err == nil && h.base != base {
		err = fmt.Errorf("its header says its first id is %d", h.base)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, ErrNewerVersion) {
			return err
		}
		return fmt.Errorf("%w: %s: %v", ErrDamaged, path, err)
	}
	s.created = h.created
	res, err := s.scan(fi.Size(), func(id uint64, off int64, n int, job string) {
		if job != "" {
			l.jobs.update(jobLoc{job: job, id: id, seg: base, off: off, n: n})
		}
	})
	if err != nil {
		f.Close()
		return err
	}
	s.size = res.good
	if res.good < fi.Size() {
		if err := l.cut(s, fi.Size(), res, last); err != nil {
			f.Close()
			return err
		}
	}
	l.segs = append(l.segs, s)
	return nil
}

// cut truncates s at res.good, and says what it cut.
func (l *Log) cut(s *segment, size int64, res scanResult, last bool) error {
	f := s.f
	if !last {
		var err error
		if f, err = l.cfg.openFile(s.path, os.O_RDWR, 0); err != nil {
			return fmt.Errorf("cut %s: %w", s.path, err)
		}
		defer f.Close()
	}
	if err := f.Truncate(res.good); err != nil {
		return fmt.Errorf("cut %s: %w", s.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cut %s: %w", s.path, err)
	}
	reason, counter := "torn", l.m.cutTorn
	if errors.Is(res.damage, errCorrupt) {
		reason, counter = "corrupt", l.m.cutCorrupt
	}
	counter.Add(float64(res.cutRecords))
	attrs := []any{"file", s.path, "offset", res.good, "bytes_cut", size - res.good, "records_cut", res.cutRecords, "reason", reason}
	switch {
	case last && reason == "torn":
		// A crash while writing: nothing cut was acknowledged.
		l.log.Warn("event log: cut a torn tail", attrs...)
	case last:
		l.log.Error("event log: cut damaged records at the end of the log", attrs...)
	default:
		// Damage on disk in a sealed segment: what followed it there is
		// lost, and resumes from before it get a reset.
		l.log.Error("event log: cut a damaged segment; the rest of it is lost and resumes from before the damage get a reset", attrs...)
	}
	return nil
}

// closeFiles closes every file and lets go of the lock.
func (l *Log) closeFiles() {
	for _, s := range l.segs {
		s.close(false)
	}
	if l.state != nil {
		l.state.Close()
	}
	l.lock.Close()
}

// Append stores events, all or none, and returns their ids once the Sync
// policy says they are durable; by then the tails have been handed them.
// key is not used: a single node has no retries to tell apart. A failure
// is eventlog.ErrUnavailable (wrapped): a full or failing disk, or ctx
// done before the writer answered (the events may then be stored).
func (l *Log) Append(ctx context.Context, _ string, events []jobs.Event) ([]uint64, error) {
	if len(events) == 0 {
		return []uint64{}, nil
	}
	req := &appendReq{events: events, done: make(chan error, 1)}
	select {
	case l.reqs <- req:
	case <-l.stop:
		return nil, eventlog.ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", eventlog.ErrUnavailable, ctx.Err())
	}
	select {
	case err := <-req.done:
		if err != nil {
			return nil, err
		}
		return req.ids, nil
	case <-l.done:
		// The writer answers what it took before it ends; this one it
		// did not take.
		select {
		case err := <-req.done:
			if err != nil {
				return nil, err
			}
			return req.ids, nil
		default:
			return nil, eventlog.ErrClosed
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v (it may yet be stored)", eventlog.ErrUnavailable, ctx.Err())
	}
}

// first is the lowest id a Read answers for, or next when there is none.
// Under mu.
func (l *Log) first() uint64 {
	first := l.next
	for _, s := range l.segs {
		if s.count() > 0 {
			first = s.base
			break
		}
	}
	first = max(first, l.floor)
	if l.next > uint64(l.cfg.MaxEvents) {
		first = max(first, l.next-uint64(l.cfg.MaxEvents))
	}
	return min(first, l.next)
}

// Bounds returns the oldest id a Read answers for and the newest id.
func (l *Log) Bounds(context.Context) (first, last uint64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first(), l.next - 1, nil
}

// Ready reports whether the log takes appends: open, and its last write
// or fsync did not fail (or the disk has taken a write since).
func (l *Log) Ready() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return !l.closed && !l.failing
}

// span is a part of one segment to read: records from off up to end.
type span struct {
	s        *segment
	off, end int64
}

// spans returns the parts of the segments that hold (after, upTo], each
// segment acquired: release them. Under mu.
func (l *Log) spans(after, upTo uint64) []span {
	var out []span
	for _, s := range l.segs {
		if s.count() == 0 || s.last <= after || s.base > upTo {
			continue
		}
		s.acquire()
		out = append(out, span{s: s, off: s.seek(max(after+1, s.base)), end: s.size})
	}
	return out
}

// read calls fn for the records in (after, upTo] of sp, in id order, until
// ctx is done. The records from disk are decoded as outside input: one
// that does not decode is handed over with a nil Event, and logged.
func (l *Log) read(ctx context.Context, sp []span, after, upTo uint64, fn func(eventlog.Record)) error {
	defer func() {
		for _, x := range sp {
			x.s.release()
		}
	}()
	n := 0
	var err error
	for _, x := range sp {
		serr := x.s.each(x.off, x.end, func(rec record) bool {
			if rec.id <= after {
				return true
			}
			if rec.id > upTo {
				return false
			}
			if n++; n%256 == 0 && ctx.Err() != nil {
				err = ctx.Err()
				return false
			}
			ev, derr := decodeEvent(rec.payload)
			if derr != nil {
				l.warn.Warn("decode", "event log: a record is not a valid event; it is skipped", slog.Uint64("id", rec.id), slog.String("err", derr.Error()))
			}
			fn(eventlog.Record{ID: rec.id, Event: ev})
			return true
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("%w: %v", eventlog.ErrUnavailable, serr)
		}
	}
	return nil
}

// Read calls fn, in id order, for the records with ids in (after, upTo],
// read from disk. It returns eventlog.ErrExpired when the log no longer
// holds after+1, or when the range is more than maxRead events. It holds
// no lock while it reads: appends go on.
func (l *Log) Read(ctx context.Context, after, upTo uint64, fn func(eventlog.Record)) error {
	if upTo <= after {
		return nil
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return eventlog.ErrClosed
	}
	if after+1 < l.first() {
		l.mu.RUnlock()
		return eventlog.ErrExpired
	}
	upTo = min(upTo, l.next-1)
	if upTo > after && upTo-after > maxRead {
		l.mu.RUnlock()
		return eventlog.ErrExpired
	}
	sp := l.spans(after, upTo)
	l.mu.RUnlock()
	return l.read(ctx, sp, after, upTo, fn)
}

// Tail hands deliver the records after after (those still kept, read from
// disk), then every record the writer commits, in id order: under tailMu,
// so that no commit falls between the two.
func (l *Log) Tail(after uint64, deliver func(eventlog.Record)) (func(), error) {
	l.tailMu.Lock()
	defer l.tailMu.Unlock()
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, eventlog.ErrClosed
	}
	after = max(after, l.first()-1)
	last := l.next - 1
	sp := l.spans(after, last)
	l.mu.RUnlock()
	if err := l.read(context.Background(), sp, after, last, deliver); err != nil {
		return nil, err
	}
	key := &deliver
	l.tails[key] = struct{}{}
	return func() {
		l.tailMu.Lock()
		delete(l.tails, key)
		l.tailMu.Unlock()
	}, nil
}

// LatestJobs calls fn, in id order, with the latest event of each job the
// job index holds whose latest event has an id up to upTo: what the hub
// rebuilds its job table from at start, before it tails the log from
// upTo. It reads each from the job-state file or its segment.
func (l *Log) LatestJobs(ctx context.Context, upTo uint64, fn func(eventlog.Record)) error {
	l.jobsMu.Lock() // retention waits: no segment goes meanwhile
	defer l.jobsMu.Unlock()
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return eventlog.ErrClosed
	}
	var err error
	buf := make([]byte, 0, 4096)
	l.jobs.each(func(loc *jobLoc) bool {
		if loc.id > upTo {
			return true
		}
		if err = ctx.Err(); err != nil {
			return false
		}
		var rec record
		if rec, err = l.readAt(loc, &buf); err != nil {
			return false
		}
		ev, derr := decodeEvent(rec.payload)
		if derr != nil {
			l.warn.Warn("decode", "event log: a record is not a valid event; it is skipped", slog.Uint64("id", rec.id), slog.String("err", derr.Error()))
			return true
		}
		fn(eventlog.Record{ID: rec.id, Event: ev})
		return true
	})
	return err
}

// readAt reads the record at loc. Under jobsMu.
func (l *Log) readAt(loc *jobLoc, buf *[]byte) (record, error) {
	var f file
	if loc.seg == 0 {
		f = l.state
	} else {
		l.mu.RLock()
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base >= loc.seg })
		if i < len(l.segs) && l.segs[i].base == loc.seg {
			f = l.segs[i].f
		}
		l.mu.RUnlock()
	}
	if f == nil {
		return record{}, fmt.Errorf("BUG: disklog: job %s: no file for its record %d", loc.job, loc.id)
	}
	if cap(*buf) < loc.n {
		*buf = make([]byte, loc.n)
	}
	b := (*buf)[:loc.n]
	if _, err := f.ReadAt(b, loc.off); err != nil {
		return record{}, fmt.Errorf("read job %s: %w", loc.job, err)
	}
	rec, _, err := decodeRecord(b)
	if err != nil || rec.id != loc.id {
		return record{}, fmt.Errorf("read job %s: record %d at %d: %v", loc.job, loc.id, loc.off, err)
	}
	return rec, nil
}

// updateBytes sets eventhub_log_bytes. Under mu or by the owner of segs.
func (l *Log) updateBytes() {
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	l.m.bytes.Set(float64(total + l.stateBytes))
}

// Close stops taking appends, answers those waiting with ErrClosed, syncs
// what is written, waits for the writer and closes the files. Call it once
// nothing appends any more (after the hub and the workers have stopped).
// It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.tailMu.Lock()
	clear(l.tails)
	l.tailMu.Unlock()
	err := l.w.closeErr
	if err == nil {
		err = l.closeRun()
	}
	l.jobsMu.Lock()
	l.closeFiles()
	l.jobsMu.Unlock()
	return err
}
