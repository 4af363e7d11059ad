package disklog

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sync is when an append is acknowledged, against what it survives.
type Sync int

const (
	// SyncBatch acknowledges an append once its records are written to
	// the file (one write for every append waiting), and fsyncs at most
	// SyncInterval later, a group commit. What was acknowledged survives a
	// crash of the process at once, and a crash of the machine (power,
	// kernel) once the next fsync is done: at most SyncInterval of
	// acknowledged events are at risk there.
	SyncBatch Sync = iota
	// SyncAlways acknowledges an append once an fsync covers it: the
	// appends that wait while one fsync runs are written together and
	// acknowledged by the next one. What was acknowledged survives any
	// crash; every publish waits for a disk flush.
	SyncAlways
)

// ParseSync parses "batch" or "always".
func ParseSync(s string) (Sync, error) {
	switch s {
	case "batch":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	}
	return 0, fmt.Errorf("unknown sync policy %q: want batch or always", s)
}

func (s Sync) String() string {
	if s == SyncAlways {
		return "always"
	}
	return "batch"
}

// Config configures Open. Dir is required; the zero value of every other
// field works.
type Config struct {
	// Dir is the data directory: the log's segments, its job-state file
	// and its lock file. It is made if it does not exist.
	Dir string
	// Sync is when an append is acknowledged. Zero means SyncBatch.
	Sync Sync
	// SyncInterval is SyncBatch's group commit window: the longest an
	// acknowledged record waits for its fsync. Zero means 2ms.
	SyncInterval time.Duration
	// MaxEvents bounds the events a Read answers for: older ones are
	// expired at once, and a segment goes once all of its events are.
	// Zero means 1,000,000.
	MaxEvents int
	// MaxBytes bounds the segments' bytes on disk: the oldest segment goes
	// while they are over it. Zero means 1 GiB.
	MaxBytes int64
	// MaxAge is how long events are kept at least: a segment goes once its
	// newest event is older, and the segment being written is sealed once
	// its first event is older than a quarter of it, so an event is kept
	// at most a quarter longer. Zero means 24h.
	MaxAge time.Duration
	// SegmentBytes is the size at which a segment is sealed and the next
	// one begun, at most a quarter of MaxBytes so that dropping the oldest
	// keeps most of the budget. Zero means 64 MiB.
	SegmentBytes int64
	// Jobs and JobsBytes bound the job index: the latest event of the
	// most recently updated jobs, kept (in the job-state file) when the
	// segments that held them go. Zero means 10,000 jobs and 32 MiB, the
	// hub's job table's own defaults.
	Jobs      int
	JobsBytes int
	// Logger receives recovery, retention and write failures. Nil means
	// none.
	Logger *slog.Logger
	// Registerer takes the log's metrics (eventhub_log_*). Nil means a
	// private registry.
	Registerer prometheus.Registerer

	// Test seams.
	now        func() time.Time // the clock; nil means time.Now
	openFile   openFunc         // the files' data path; nil means the OS's
	retryEvery time.Duration    // how often a failing disk is tried again; zero means 1s
	boot       func() string    // the machine's boot id; nil means the kernel's
}

func (c Config) withDefaults() Config {
	if c.SyncInterval <= 0 {
		c.SyncInterval = 2 * time.Millisecond
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 1_000_000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 30
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 64 << 20
	}
	c.SegmentBytes = max(min(c.SegmentBytes, c.MaxBytes/4), 1024)
	if c.Jobs <= 0 {
		c.Jobs = 10000
	}
	if c.JobsBytes <= 0 {
		c.JobsBytes = 32 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.openFile == nil {
		c.openFile = openOS
	}
	if c.retryEvery <= 0 {
		c.retryEvery = time.Second
	}
	return c
}
