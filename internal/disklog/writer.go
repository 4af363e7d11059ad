package disklog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/finexbot/eventhub/internal/eventlog"
)

// A commit takes every append waiting, up to these bounds: one write and
// (by the policy) one fsync for all of them.
const (
	maxCommitReqs  = 1024
	maxCommitBytes = 4 << 20
)

// probeBytes is what the writer writes (then cuts) to learn that a disk
// that failed takes writes again.
const probeBytes = 4096

// errFailing answers appends while the disk is failing, until a probe
// succeeds.
var errFailing = errors.New("the disk refused the last write; trying again")

// writer is the state of the writer goroutine (Log.run), which owns it.
type writer struct {
	l     *Log
	buf   []byte
	batch []*appendReq
	locs  []jobLoc
	// SyncBatch: the syncer goroutine fsyncs the segment it is handed on
	// toSync and answers on synced, while the writer goes on writing.
	dirty    bool      // written since the last fsync began
	syncing  bool      // the syncer has a segment
	lastSync time.Time // when the last fsync began
	sync     *time.Timer
	armed    bool // sync is set
	toSync   chan *segment
	syncErr  chan error
	syncerWG sync.WaitGroup
	probe    *time.Timer
	failing  bool
	// cutTo, when not negative, is where the active segment must be cut
	// back to before anything more is written there: a write that failed
	// left part of its records behind, and truncating failed too.
	cutTo    int64
	closeErr error
}

func (w *writer) init(l *Log) {
	w.l, w.cutTo = l, -1
	w.sync = time.NewTimer(time.Hour)
	w.sync.Stop()
	w.probe = time.NewTimer(time.Hour)
	w.probe.Stop()
	w.lastSync = time.Now()
	w.toSync = make(chan *segment, 1) // one at a time: syncing says when it is taken
	w.syncErr = make(chan error, 1)
	w.syncerWG.Go(w.syncer)
}

// syncer is the goroutine that fsyncs for SyncBatch, so that appends are
// acknowledged after their write without waiting for a flush. It ends when
// the writer closes toSync.
func (w *writer) syncer() {
	for s := range w.toSync {
		start := time.Now()
		err := s.f.Sync()
		w.l.m.fsync.Observe(time.Since(start).Seconds())
		s.release()
		w.syncErr <- err
	}
}

// run is the writer goroutine: it takes the appends waiting, commits them
// together, syncs on time, tries a failing disk again, and applies
// retention, until Close.
func (l *Log) run() {
	defer close(l.done)
	w := &l.w
	age := time.NewTicker(min(max(l.cfg.MaxAge/8, 10*time.Millisecond), time.Minute))
	defer age.Stop()
	defer w.sync.Stop()
	defer w.probe.Stop()
	for {
		select {
		case req := <-l.reqs:
			w.batch = append(w.batch[:0], req)
			size := req.estimate()
		more:
			for len(w.batch) < maxCommitReqs && size < maxCommitBytes {
				select {
				case r := <-l.reqs:
					w.batch = append(w.batch, r)
					size += r.estimate()
				default:
					break more
				}
			}
			w.commit(w.batch)
			clear(w.batch)
			w.retain() // after the acknowledgements: a drop writes the job-state file
		case <-w.sync.C:
			w.armed = false
			w.startSync()
		case err := <-w.syncErr:
			w.synced(err)
		case <-w.probe.C:
			w.tryDisk()
		case <-age.C:
			w.sealIfOld()
			w.retain()
		case <-l.stop:
			w.finish()
			return
		}
	}
}

// estimate is about what an append's records take.
func (r *appendReq) estimate() int {
	n := 0
	for i := range r.events {
		n += recordHeaderSize + 120 + len(r.events[i].JobID) + len(r.events[i].Data)
	}
	return n
}

// active is the segment written to, or nil before the first.
func (w *writer) active() *segment {
	if n := len(w.l.segs); n > 0 {
		return w.l.segs[n-1]
	}
	return nil
}

// commit writes the records of batch to the active segment in one write,
// syncs them when the policy says so, publishes them (the counter, the
// tails, the job index) and acknowledges them.
func (w *writer) commit(batch []*appendReq) {
	l := w.l
	if w.failing {
		w.fail(batch, errFailing)
		return
	}
	now := l.cfg.now()
	w.buf, w.locs = w.buf[:0], w.locs[:0]
	next := l.next
	for _, req := range batch {
		req.ids = make([]uint64, len(req.events))
		for i := range req.events {
			start := len(w.buf)
			w.buf = appendRecord(w.buf, next, i < len(req.events)-1, &req.events[i])
			req.ids[i] = next
			w.locs = append(w.locs, jobLoc{job: req.events[i].JobID, id: next, off: int64(start), n: len(w.buf) - start})
			next++
		}
	}
	active := w.active()
	if active == nil || active.sealed || (active.count() > 0 && active.size+int64(len(w.buf)) > l.cfg.SegmentBytes) {
		if err := w.roll(now); err != nil {
			w.failed("write", err, batch)
			return
		}
		active = w.active()
	}
	off := active.size
	if _, err := active.f.WriteAt(w.buf, off); err != nil {
		w.cutBack(active, off)
		w.failed("write", err, batch)
		return
	}
	if l.cfg.Sync == SyncAlways {
		if err := w.fsync(active); err != nil {
			w.cutBack(active, off)
			w.failed("sync", err, batch)
			return
		}
	} else {
		w.dirty = true
	}

	l.tailMu.Lock()
	l.mu.Lock()
	for _, loc := range w.locs {
		active.mark(loc.id, off+loc.off)
	}
	active.last, active.size, active.modified = next-1, off+int64(len(w.buf)), now
	l.next = next
	l.updateBytes()
	l.mu.Unlock()
	for _, req := range batch {
		for i := range req.events {
			r := eventlog.Record{ID: req.ids[i], Event: &req.events[i]}
			for deliver := range l.tails {
				(*deliver)(r)
			}
		}
	}
	l.tailMu.Unlock()

	l.jobsMu.Lock()
	for _, loc := range w.locs {
		loc.seg, loc.off = active.base, off+loc.off
		l.jobs.update(loc)
	}
	l.jobsMu.Unlock()
	for _, req := range batch {
		req.done <- nil
	}
	if l.cfg.Sync == SyncBatch {
		w.startSync()
	}
}

// fsync syncs s and times it.
func (w *writer) fsync(s *segment) error {
	start := time.Now()
	err := s.f.Sync()
	w.lastSync = time.Now()
	w.l.m.fsync.Observe(w.lastSync.Sub(start).Seconds())
	return err
}

// startSync hands the active segment to the syncer when SyncBatch has
// written since the last fsync began, the syncer is idle and SyncInterval
// has passed since; else it sets the timer for when it will have.
func (w *writer) startSync() {
	active := w.active()
	if !w.dirty || w.syncing || active == nil {
		return
	}
	if wait := w.l.cfg.SyncInterval - time.Since(w.lastSync); wait > 0 {
		if !w.armed {
			w.armed = true
			w.sync.Reset(wait)
		}
		return
	}
	w.dirty, w.syncing, w.lastSync = false, true, time.Now()
	active.acquire() // released by the syncer
	w.toSync <- active
}

// synced takes the syncer's answer. A failed fsync cannot be taken back
// (the appends were acknowledged): it is logged, counted, and the log
// refuses appends until the disk takes a write and an fsync again.
func (w *writer) synced(err error) {
	w.syncing = false
	if err != nil {
		w.l.m.syncErrors.Inc()
		w.l.log.Error("event log: fsync failed; acknowledged events may not survive a crash of the machine; appends are refused until the disk recovers",
			"err", err.Error())
		if w.closeErr == nil {
			w.closeErr = fmt.Errorf("event log: fsync: %w", err)
		}
		w.setFailing(true)
		return
	}
	w.startSync() // what was written meanwhile
}

// waitSync waits for the syncer to finish the fsync it has, if any, and
// starts no other: the caller syncs itself what is left.
func (w *writer) waitSync() {
	if !w.syncing {
		return
	}
	w.syncing = false
	if err := <-w.syncErr; err != nil {
		w.l.m.syncErrors.Inc()
		w.l.log.Error("event log: fsync failed; acknowledged events may not survive a crash of the machine", "err", err.Error())
		w.dirty = true // synced again by the caller
	}
}

// cutBack cuts the active segment back to off, where the failed write
// began; if that fails too, nothing is written there until it is done.
func (w *writer) cutBack(s *segment, off int64) {
	if err := s.f.Truncate(off); err != nil {
		w.cutTo = off
	}
}

// failed answers batch with ErrUnavailable after a write or fsync failed
// (nothing of it was published: its ids are given again), counts and
// logs it, and refuses appends until a probe finds the disk writable.
func (w *writer) failed(op string, err error, batch []*appendReq) {
	if op == "sync" {
		w.l.m.syncErrors.Inc()
	} else {
		w.l.m.writeErrors.Inc()
	}
	w.l.warn.Warn("write "+op, "event log: a write failed; publishing answers 503 until the disk takes writes again",
		slog.String("op", op), slog.String("err", err.Error()))
	w.setFailing(true)
	w.fail(batch, fmt.Errorf("%s: %v", op, err))
}

// fail answers every append of batch with ErrUnavailable.
func (w *writer) fail(batch []*appendReq, err error) {
	for _, req := range batch {
		req.ids = nil
		req.done <- fmt.Errorf("%w: %v", eventlog.ErrUnavailable, err)
	}
}

// setFailing records whether the disk fails (Ready follows it); while it
// does, a probe tries it every retryEvery.
func (w *writer) setFailing(v bool) {
	w.l.mu.Lock()
	w.l.failing = v
	w.l.mu.Unlock()
	w.failing = v
	if v {
		w.probe.Reset(w.l.cfg.retryEvery)
	}
}

// tryDisk probes a failing disk: it cuts back what a failed write left,
// writes a block past the end and cuts it off, and syncs. When all of
// that works the log takes appends again.
func (w *writer) tryDisk() {
	if !w.failing {
		return
	}
	w.waitSync()
	err := w.probeActive()
	if err != nil {
		w.probe.Reset(w.l.cfg.retryEvery)
		return
	}
	w.dirty = false
	w.setFailing(false)
	w.l.log.Info("event log: the disk takes writes again")
}

func (w *writer) probeActive() error {
	active := w.active()
	if active == nil || active.sealed {
		return writable(w.l.cfg.Dir)
	}
	if w.cutTo >= 0 {
		if err := active.f.Truncate(w.cutTo); err != nil {
			return err
		}
		w.cutTo = -1
	}
	if _, err := active.f.WriteAt(make([]byte, probeBytes), active.size); err != nil {
		active.f.Truncate(active.size)
		return err
	}
	if err := active.f.Truncate(active.size); err != nil {
		w.cutTo = active.size
		return err
	}
	return w.fsync(active)
}

// roll seals the active segment (synced) and makes the next one, whose
// first id is the next id, with its header synced and its directory entry
// too.
func (w *writer) roll(now time.Time) error {
	l := w.l
	if old := w.active(); old != nil && !old.sealed {
		w.waitSync()
		if w.dirty {
			if err := w.fsync(old); err != nil {
				return err
			}
			w.dirty = false
		}
		l.mu.Lock()
		old.sealed = true
		l.mu.Unlock()
	}
	base := l.next
	path := filepath.Join(l.cfg.Dir, segmentName(base))
	os.Remove(path) // a segment with no record, whose making failed before
	f, err := l.cfg.openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	s := &segment{base: base, path: path, f: f, created: now, last: base - 1, size: headerSize, modified: now, remove: os.Remove}
	hdr := appendHeader(nil, segmentMagic, base, now)
	if _, err = f.WriteAt(hdr, 0); err == nil {
		if err = w.fsync(s); err == nil {
			err = syncDir(l.cfg.Dir)
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.updateBytes()
	l.mu.Unlock()
	return nil
}

// sealIfOld seals the active segment once its first event is older than a
// quarter of MaxAge, so that age retention can drop it in time.
func (w *writer) sealIfOld() {
	l := w.l
	active := w.active()
	if active == nil || active.sealed || active.count() == 0 || l.cfg.now().Sub(active.created) < l.cfg.MaxAge/4 {
		return
	}
	w.waitSync()
	if w.dirty {
		if err := w.fsync(active); err != nil {
			return // tried again at the next tick
		}
		w.dirty = false
	}
	l.mu.Lock()
	active.sealed = true
	l.mu.Unlock()
}

// finish answers the appends still waiting with ErrClosed and syncs what
// was written.
func (w *writer) finish() {
	for {
		select {
		case req := <-w.l.reqs:
			req.done <- eventlog.ErrClosed
		default:
			w.waitSync()
			if active := w.active(); w.dirty && active != nil {
				if err := w.fsync(active); err != nil {
					w.closeErr = fmt.Errorf("event log: final fsync: %w", err)
				}
			}
			close(w.toSync)
			w.syncerWG.Wait()
			return
		}
	}
}
