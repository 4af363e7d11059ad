package disklog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// indexEvery is how far apart, in bytes, the sparse index of a segment
// marks a record: a read starts at most this far before its first record.
// A 64 MiB segment's index is some 4,000 entries (64 KiB).
const indexEvery = 16 << 10

// segment is one file of the log: records with contiguous ids from base.
// The writer goroutine appends to the newest (the active one); readers
// read what is committed (up to size) concurrently, with pread. The fields
// under "guarded by Log.mu" are written by the writer (or Open) only,
// under Log.mu; readers read them under it.
type segment struct {
	base    uint64
	path    string
	f       file
	created time.Time

	// guarded by Log.mu
	last     uint64 // id of the last committed record; base-1 while empty
	size     int64  // committed bytes, header included
	index    []indexEntry
	modified time.Time // when its last record was committed
	sealed   bool      // no more records go in

	// A segment that retention drops is removed once no reader holds it:
	// readers acquire it under Log.mu.RLock, retention marks it removed
	// after taking it out of Log.segs under Log.mu.
	refs    atomic.Int32
	removed atomic.Bool
	dispose sync.Once
	remove  func(path string) error
}

// indexEntry says the record with id starts at off.
type indexEntry struct {
	id  uint64
	off int64
}

// segmentName is the file name of the segment whose first id is base:
// zero-padded, so that names sort as ids do.
func segmentName(base uint64) string { return fmt.Sprintf("%020d.seg", base) }

// parseSegmentName returns the first id a segment's file name says.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(digits, 10, 64)
	return base, err == nil && base > 0
}

func (s *segment) count() uint64 { return s.last + 1 - s.base }

// mark adds the record with id at off to the sparse index when it is far
// enough from the last entry.
func (s *segment) mark(id uint64, off int64) {
	if n := len(s.index); n == 0 || off-s.index[n-1].off >= indexEvery {
		s.index = append(s.index, indexEntry{id: id, off: off})
	}
}

// seek returns where to start reading for the record id: the offset of the
// record the sparse index marks at or before it.
func (s *segment) seek(id uint64) int64 {
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].id > id }) - 1
	if i < 0 {
		return headerSize
	}
	return s.index[i].off
}

func (s *segment) acquire() { s.refs.Add(1) }

func (s *segment) release() {
	if s.refs.Add(-1) == 0 && s.removed.Load() {
		s.close(true)
	}
}

// drop removes the segment's file once no reader holds it.
func (s *segment) drop() {
	s.removed.Store(true)
	if s.refs.Load() == 0 {
		s.close(true)
	}
}

// close closes the file, and removes it when remove is set. Once.
func (s *segment) close(remove bool) {
	s.dispose.Do(func() {
		s.f.Close()
		if remove {
			s.remove(s.path)
		}
	})
}

// each calls fn for the records from off up to end, in order, until fn
// returns false. The bytes are committed: a damaged record here is damage
// since the log opened, an error.
func (s *segment) each(off, end int64, fn func(record) bool) error {
	if off >= end {
		return nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, off, end-off), 64<<10)
	var buf []byte
	for {
		rec, err := readRecord(r, &buf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(s.path), err)
		}
		if !fn(rec) {
			return nil
		}
	}
}

// scanResult is what reading a segment at open found.
type scanResult struct {
	// good is the offset where the good records end: the file is cut
	// there when it is less than its size.
	good int64
	// damage is errTorn or errCorrupt when the good records end before
	// the file does: a record cut short, a bad one, or a batch without
	// its last record; nil when the file ends cleanly.
	damage error
	// cutRecords is how many records a cut at good drops: those of a
	// batch left open, the damaged one and those that can still be read
	// after it (after a damaged length, none can).
	cutRecords int
}

// pendingRecord is a record of a batch whose last record scan has not
// read yet.
type pendingRecord struct {
	id  uint64
	off int64
	n   int
	job string
}

// newReader reads f from off up to end.
func newReader(f file, off, end int64) *bufio.Reader {
	return bufio.NewReaderSize(io.NewSectionReader(f, off, max(end-off, 0)), 1<<20)
}

// scan reads every record of s from its header on, checks their
// checksums and that their ids follow from s.base, and calls fn for each
// good one: its id, offset, length and job id (empty when it has none).
// It stops at the first damage, and leaves out a batch the file does not
// hold the last record of. It sets s.last and the sparse index.
func (s *segment) scan(fileSize int64, fn func(id uint64, off int64, n int, job string)) (scanResult, error) {
	var res scanResult
	r := newReader(s.f, headerSize, fileSize)
	off := int64(headerSize)
	var buf []byte
	var pending []pendingRecord
	s.last = s.base - 1
	for {
		rec, err := readRecord(r, &buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && rec.id != s.last+1+uint64(len(pending)) {
			err = errCorrupt // an id out of sequence
		}
		if errors.Is(err, errTorn) || errors.Is(err, errCorrupt) {
			res.damage = err
			res.cutRecords = 1 + s.countAfterDamage(off, fileSize)
			break
		}
		if err != nil {
			return res, fmt.Errorf("read %s: %w", s.path, err)
		}
		job, _ := jobIDOf(rec.payload)
		pending = append(pending, pendingRecord{id: rec.id, off: off, n: rec.size(), job: job})
		off += int64(rec.size())
		if rec.more {
			continue
		}
		for _, p := range pending {
			s.mark(p.id, p.off)
			fn(p.id, p.off, p.n, p.job)
			s.last = p.id
		}
		pending = pending[:0]
	}
	res.good = off
	if len(pending) > 0 {
		res.good = pending[0].off
		res.cutRecords += len(pending)
		if res.damage == nil {
			res.damage = errTorn // the crash came between a batch's writes
		}
	}
	return res, nil
}

// countAfterDamage counts the whole records that follow a damaged one at
// off, skipping it by its length when that is plausible: what a cut there
// drops besides it.
func (s *segment) countAfterDamage(off, fileSize int64) int {
	h := make([]byte, recordHeaderSize)
	if _, err := s.f.ReadAt(h, off); err != nil {
		return 0
	}
	_, n, err := decodeRecordHeader(h)
	if err != nil {
		return 0
	}
	count := 0
	r := newReader(s.f, off+int64(n), fileSize)
	var buf []byte
	for {
		if _, err := readRecord(r, &buf); err != nil {
			return count
		}
		count++
	}
}
