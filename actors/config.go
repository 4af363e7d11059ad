package actors

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/eventlog"
)

// denyAll is the permissions source of a hub configured without one.
type denyAll struct{}

func (denyAll) Permissions(context.Context, string) (*authz.Permissions, error) {
	return &authz.Permissions{}, nil
}

// Config configures a Hub. The zero value works.
type Config struct {
	// History is how many of the newest events the hub keeps encoded, to
	// answer resumes without reading the log. Zero means 10,000.
	History int
	// HistoryBytes bounds the memory of those events (their frames): the
	// oldest go first when either bound is reached. It also bounds the
	// in-memory log the hub opens when Log is nil. Zero means 64 MiB.
	HistoryBytes int
	// Jobs is how many jobs' latest status are kept for Snapshot. Zero means
	// 10,000.
	Jobs int
	// JobsBytes bounds the memory of those jobs: the job updated longest
	// ago goes first when either bound is reached. Zero means 32 MiB.
	JobsBytes int
	// SnapshotBytes bounds one Snapshot's answer (its JSON): the jobs that
	// would not fit are left out and the answer says it is truncated. Zero
	// means 4 MiB.
	SnapshotBytes int
	// StreamLifetime ends each stream, with a retry hint, after this long
	// (±10%, so streams opened together do not end together); the client
	// resumes. Zero means streams live until they close otherwise.
	StreamLifetime time.Duration
	// Permissions is where users' permissions come from. Nil means nobody
	// may see anything.
	Permissions authz.Source
	// PermissionsTTL is how long a user's permissions are trusted before
	// they are refreshed (in the background), and how long a source that
	// fails may go on being trusted for what it said last. Zero means 60s.
	PermissionsTTL time.Duration
	// AuthTimeout bounds one request to the permissions source, and how long
	// Authorize waits. Zero means 5s.
	AuthTimeout time.Duration
	// ReauthGrace is how long a stream outlives its session token's expiry
	// (±10%), before it ends with a retry hint so the browser reconnects with
	// a fresh token. Zero means 10 minutes.
	ReauthGrace time.Duration
	// Log is the event log: events are appended there and the hub routes
	// what it hands back (a NATS JetStream log makes the hub a node of a
	// cluster). The caller owns it and closes it after Hub.Shutdown. Nil
	// means an in-memory log of History events, owned by the hub.
	Log eventlog.Log
	// Mailbox is each stream's mailbox size in frames. Zero means 64.
	Mailbox int
	// MailboxBytes bounds the bytes of the frames queued in one stream's
	// mailbox; a stream over it (or over Mailbox) is closed as slow. A
	// resume whose replay is larger starts with a reset ("expired")
	// instead. Zero means 1 MiB.
	MailboxBytes int
	// BackfillBytes bounds one read of the log for a resume that history
	// no longer covers (the frames it makes); over it the read stops and
	// the client gets a reset ("expired"). Zero means 16 MiB.
	BackfillBytes int
	// MaxBackfills bounds the reads of the log for resumes in flight at
	// once, in the hub and per user; a resume over either gets a reset
	// ("expired") at once. Zero means 8 for the hub, 2 per user.
	MaxBackfills        int
	MaxBackfillsPerUser int
	// Heartbeat is the interval of ":ping" comments on an otherwise quiet
	// stream; each stream's first ping falls at a random point of the first
	// interval so they spread out. Zero means 30s; negative turns it off;
	// at least 64ms (the wheel's slots times a millisecond).
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a stream's socket. Zero means 10s.
	WriteTimeout time.Duration
	// Retry is the reconnection delay announced with "retry:" when a stream
	// starts. Zero means 3s.
	Retry time.Duration
	// ShutdownRetrySpread is the range over which the "retry:" sent to each
	// stream at a forced close (shutdown, lifetime) is jittered, so clients
	// do not all come back at once. Zero means 10s.
	ShutdownRetrySpread time.Duration
	// MaxStreams bounds the streams this hub holds. Zero means no bound.
	MaxStreams int
	// MaxStreamsPerUser bounds one user's streams. Zero means no bound.
	MaxStreamsPerUser int
	// PublishTimeout bounds how long Publish waits for the hub actor. Zero
	// means 5s.
	PublishTimeout time.Duration
	// Logger receives the hub's logs. Nil means they are discarded.
	Logger *slog.Logger
	// Registerer is where the hub's metrics are registered. Nil means a
	// private registry (the metrics exist but nobody scrapes them).
	Registerer prometheus.Registerer
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
		*v = max(*v, 0) // a negative duration means "none", never a panic
	}
	if c.History <= 0 {
		c.History = 10000
	}
	if c.Jobs <= 0 {
		c.Jobs = 10000
	}
	if c.Mailbox <= 0 {
		c.Mailbox = 64
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&c.HistoryBytes, 64<<20)
	defInt(&c.JobsBytes, 32<<20)
	defInt(&c.SnapshotBytes, 4<<20)
	defInt(&c.MailboxBytes, 1<<20)
	defInt(&c.BackfillBytes, 16<<20)
	defInt(&c.MaxBackfills, 8)
	defInt(&c.MaxBackfillsPerUser, 2)
	if c.Heartbeat == 0 {
		c.Heartbeat = 30 * time.Second
	}
	if c.Heartbeat > 0 {
		c.Heartbeat = max(c.Heartbeat, wheelSlots*time.Millisecond)
	}
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.Retry, 3*time.Second)
	def(&c.ShutdownRetrySpread, 10*time.Second)
	def(&c.PublishTimeout, 5*time.Second)
	def(&c.PermissionsTTL, 60*time.Second)
	def(&c.AuthTimeout, 5*time.Second)
	def(&c.ReauthGrace, 10*time.Minute)
	if c.Permissions == nil {
		c.Permissions = denyAll{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	return c
}
