package eventlog

import (
	"context"
	"sync"
	"time"

	"github.com/finexbot/eventhub/jobs"
)

// MemoryConfig configures OpenMemory. The zero value works.
type MemoryConfig struct {
	// Size is how many of the newest events are kept for Read. Zero means
	// 10,000.
	Size int
	// Bytes bounds the memory of the events kept (each costs its encoded
	// size, see RecordSize): the oldest go first when either bound is
	// reached. Zero means 64 MiB.
	Bytes int
}

// Memory is the log of a single node in memory: a bounded ring of the
// newest events, numbered from a counter that only grows. A restart loses
// it (ids then resume from the clock, above every earlier one); the disk
// log (internal/disklog, --data-dir) is the one that survives.
//
// Memory owns the ring, the counter and the tails under mu. It hands each
// tail its records while it holds mu, so every tail sees every append in id
// order, and an Append has reached every tail when it returns.
type Memory struct {
	cfg MemoryConfig

	mu     sync.Mutex // guards everything below
	ring   []Record   // the newest records, a ring of cfg.Size
	start  int        // index of the oldest record in ring
	n      int        // records in ring
	bytes  int        // sum of the kept records' RecordSize
	next   uint64     // id of the next event; never 0
	tails  map[*func(Record)]struct{}
	closed bool
}

var _ Log = (*Memory)(nil)

// OpenMemory returns an empty memory log. It never fails; it returns an
// error for the shape every log's opening has.
func OpenMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.Size <= 0 {
		cfg.Size = 10000
	}
	if cfg.Bytes <= 0 {
		cfg.Bytes = 64 << 20
	}
	m := &Memory{cfg: cfg, ring: make([]Record, cfg.Size), tails: map[*func(Record)]struct{}{}}
	// Ids only grow, even across a restart that lost the log: starting from
	// the clock (a thousand ids per millisecond) puts a restarted node's ids
	// above every id it gave before, so a client resuming from one of those
	// gets a reset, never events it did not ask for.
	m.next = max(uint64(time.Now().UnixMilli())*1000, 1)
	return m, nil
}

// Append numbers events and hands them to every tail before it returns.
// key is not used: a single node has no retries to tell apart.
func (m *Memory) Append(_ context.Context, _ string, events []jobs.Event) ([]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	ids := make([]uint64, len(events))
	for i := range events {
		r := Record{ID: m.next, Event: &events[i]}
		m.next++
		ids[i] = r.ID
		m.push(r)
		for deliver := range m.tails {
			(*deliver)(r)
		}
	}
	return ids, nil
}

// push keeps r as the newest record, letting the oldest go until both the
// count and the bytes are within their bounds. Ids stay contiguous: only
// the oldest go.
func (m *Memory) push(r Record) {
	if m.n == len(m.ring) {
		m.drop()
	}
	m.ring[(m.start+m.n)%len(m.ring)] = r
	m.n++
	m.bytes += RecordSize(r)
	for m.bytes > m.cfg.Bytes && m.n > 0 {
		m.drop()
	}
}

// drop lets go of the oldest record.
func (m *Memory) drop() {
	m.bytes -= RecordSize(m.ring[m.start])
	m.ring[m.start] = Record{}
	m.start = (m.start + 1) % len(m.ring)
	m.n--
}

// RecordSize is what a record costs in memory: its event's encoded size
// (the JSON of an event is its fixed fields, at most 110 bytes, and its
// job id and data, counted as allocated: a decoded event's data may have
// room to spare) and the decoded struct's own words and scope ids.
func RecordSize(r Record) int {
	const fixed = 110 + 160 // the JSON's fixed part; the Event struct and allocation rounding
	if r.Event == nil {
		return 16
	}
	ev := r.Event
	return fixed + 2*len(ev.JobID) + cap(ev.Data) + len(ev.AssetID) + len(ev.ScenarioID)
}

// at returns the i-th oldest record kept.
func (m *Memory) at(i int) Record { return m.ring[(m.start+i)%len(m.ring)] }

// first is the id of the oldest record kept, or next when there is none.
func (m *Memory) first() uint64 {
	if m.n == 0 {
		return m.next
	}
	return m.at(0).ID
}

// Tail hands deliver the kept records after after, then every append.
func (m *Memory) Tail(after uint64, deliver func(Record)) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.each(after, m.next-1, deliver)
	key := &deliver
	m.tails[key] = struct{}{}
	return func() {
		m.mu.Lock()
		delete(m.tails, key)
		m.mu.Unlock()
	}, nil
}

// Read calls fn for the kept records in (after, upTo], without holding mu:
// a reader that takes its time (a resume encoding what it missed) does not
// hold up appends. It stops with ctx's error once ctx is done.
func (m *Memory) Read(ctx context.Context, after, upTo uint64, fn func(Record)) error {
	m.mu.Lock()
	if after < upTo && after+1 < m.first() {
		m.mu.Unlock()
		return ErrExpired
	}
	var records []Record
	m.each(after, upTo, func(r Record) { records = append(records, r) })
	m.mu.Unlock()
	for _, r := range records {
		if err := ctx.Err(); err != nil {
			return err
		}
		fn(r)
	}
	return nil
}

// each calls fn for the kept records in (after, upTo]; ids in the ring are
// contiguous, so the first one is found by arithmetic.
func (m *Memory) each(after, upTo uint64, fn func(Record)) {
	if m.n == 0 {
		return
	}
	i := 0
	if oldest := m.at(0).ID; after >= oldest {
		i = int(min(after-oldest+1, uint64(m.n)))
	}
	for ; i < m.n; i++ {
		r := m.at(i)
		if r.ID > upTo {
			return
		}
		fn(r)
	}
}

// Bounds returns the oldest kept id and the newest id.
func (m *Memory) Bounds(context.Context) (first, last uint64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.first(), m.next - 1, nil
}

// Ready reports whether the log is open.
func (m *Memory) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.closed
}

// Close stops taking appends. It is idempotent.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	clear(m.tails)
	return nil
}
