package disklog

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// retain drops the oldest segments while one of the budgets says so: all
// of its events are past MaxEvents (or before damage), the segments take
// more than MaxBytes, or its newest event is older than MaxAge. The newest
// segment always stays: it holds the id counter across a restart.
func (w *writer) retain() {
	l := w.l
	for {
		l.mu.RLock()
		if len(l.segs) < 2 {
			l.mu.RUnlock()
			return
		}
		oldest := l.segs[0]
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		reason := ""
		switch {
		case oldest.count() == 0 || oldest.last < l.first():
			reason = "count"
		case total > l.cfg.MaxBytes:
			reason = "bytes"
		case l.cfg.now().Sub(oldest.modified) > l.cfg.MaxAge:
			reason = "age"
		}
		l.mu.RUnlock()
		if reason == "" {
			return
		}
		if err := w.dropOldest(oldest, reason); err != nil {
			l.warn.Warn("retention", "event log: a segment past its budget could not be dropped; tried again later",
				slog.String("file", oldest.path), slog.String("err", err.Error()))
			return
		}
	}
}

// dropOldest drops the oldest segment, first writing the job-state file
// anew with the latest event of each job whose latest event is in that
// segment or already in the file: the job table's jobs outlive their
// events' segments.
func (w *writer) dropOldest(oldest *segment, reason string) error {
	l := w.l
	l.jobsMu.Lock()
	defer l.jobsMu.Unlock()
	var keep []*jobLoc
	l.jobs.each(func(loc *jobLoc) bool {
		if loc.seg == 0 || loc.seg == oldest.base {
			keep = append(keep, loc)
		}
		return true
	})
	buf := appendHeader(nil, stateMagic, oldest.last, l.cfg.now())
	offs := make([]int64, len(keep))
	var rb []byte
	for i, loc := range keep {
		rec, err := l.readAt(loc, &rb)
		if err != nil {
			return err
		}
		offs[i] = int64(len(buf))
		buf = append(buf, rb[:rec.size()]...)
	}
	state, err := w.writeState(buf)
	if err != nil {
		return err
	}
	if l.state != nil {
		l.state.Close()
	}
	l.state, l.stateThrough, l.stateBytes = state, oldest.last, int64(len(buf))
	for i, loc := range keep {
		loc.seg, loc.off = 0, offs[i]
	}
	l.mu.Lock()
	l.segs = append(l.segs[:0:0], l.segs[1:]...)
	l.updateBytes()
	l.mu.Unlock()
	oldest.drop()
	l.log.Info("event log: dropped a segment", "file", oldest.path, "reason", reason,
		"first_id", oldest.base, "last_id", oldest.last, "bytes", oldest.size, "jobs_kept", len(keep))
	return nil
}

// writeState writes the job-state file atomically: a temporary file,
// synced, renamed over it, and the directory synced. It returns the new
// file, open for reading.
func (w *writer) writeState(b []byte) (file, error) {
	l := w.l
	path := filepath.Join(l.cfg.Dir, stateFile)
	tmp := path + ".tmp"
	f, err := l.cfg.openFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("job-state file: %w", err)
	}
	if _, err = f.WriteAt(b, 0); err == nil {
		err = w.fsync(&segment{f: f})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("job-state file: %w", err)
	}
	if err := syncDir(l.cfg.Dir); err != nil {
		return nil, fmt.Errorf("job-state file: %w", err)
	}
	f, err = l.cfg.openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("job-state file: %w", err)
	}
	return f, nil
}
