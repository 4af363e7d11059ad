package eventlog

import (
	"context"
	"errors"

	"github.com/finexbot/eventhub/jobs"
)

// Log is an append-only, numbered log of job events. See the package
// documentation for its contract.
type Log interface {
	// Append stores events, all or none, and returns their ids in order.
	// When it returns, a Tail of this process has been handed them or will
	// be, in order, before anything appended later. key, when not empty,
	// makes a retried Append with the same key and events store them once
	// (where the log can tell: a cluster's); without it each event's
	// content is its key there. The log owns events after the call.
	Append(ctx context.Context, key string, events []jobs.Event) ([]uint64, error)
	// Tail hands deliver every record after id after, in id order, until
	// stop is called; stop waits until deliver is no longer running. A log
	// that lost its connection goes on from the last record it delivered
	// once it is back: nothing is skipped.
	Tail(after uint64, deliver func(Record)) (stop func(), err error)
	// Read calls fn, in id order, for the records with ids in (after, upTo].
	// It returns ErrExpired when the log no longer holds after+1 (or would
	// read more than it allows for one resume): the reader must start over.
	Read(ctx context.Context, after, upTo uint64, fn func(Record)) error
	// Bounds returns the id of the oldest record kept and of the newest;
	// first > last when the log is empty (last is then where ids resume).
	Bounds(ctx context.Context) (first, last uint64, err error)
	// Ready reports whether the log takes appends now.
	Ready() bool
}

// JobKeeper is a Log that keeps the latest event of every job it has
// seen, beyond the events it keeps for Read (the disk log does, in its
// job-state file): the hub rebuilds its job table from it at start, so
// GET /api/jobs shows every job after a restart.
type JobKeeper interface {
	// LatestJobs calls fn, in id order, with the latest event of each job
	// whose latest event has an id up to upTo, as far as the log's own
	// budgets keep them. Jobs updated after upTo are left out: a Tail
	// from upTo brings them.
	LatestJobs(ctx context.Context, upTo uint64, fn func(Record)) error
}

// Record is one entry of a Log. Event is nil for a message that is not a
// valid event: its id is passed, nothing is routed. Event is shared and
// read-only.
type Record struct {
	ID    uint64
	Event *jobs.Event
}

var (
	// ErrExpired: the log no longer holds what was asked for.
	ErrExpired = errors.New("eventlog: no longer in the log")
	// ErrUnavailable: the log did not take the events; they may or may not
	// be stored (a retry with the same key is safe where keys are kept).
	ErrUnavailable = errors.New("eventlog: log unavailable")
	// ErrClosed: the log has been closed.
	ErrClosed = errors.New("eventlog: log closed")
)
