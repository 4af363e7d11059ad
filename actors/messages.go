package actors

import (
	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/jobs"
)

// Messages of the hub actor. Besides these it takes *jobs.Event from the
// in-process workers: ingest it, no reply.

// publish asks the hub to ingest validated events and answer their ids.
type publish struct {
	events []jobs.Event
	// reply has capacity 1: the hub never blocks on a caller that gave up.
	reply chan []uint64
}

// subscribe attaches an opened stream to its user's actor, after replaying
// what it missed when it resumes.
type subscribe struct {
	s      *stream
	resume bool   // the client sent a Last-Event-ID
	lastID uint64 // valid when resume
}

// userIdle says a user actor's last stream closed. attaches is how many
// streams it had been given; the hub stops it only if it gave it no more
// since, so a stream attached in between is never orphaned.
type userIdle struct {
	user     string
	attaches uint64
}

// snapshot asks for the latest status of the most recent jobs a user may
// see, with the id of the newest event: the point a stream resumes from.
type snapshot struct {
	perms  *authz.Permissions
	filter *jobs.Filter
	limit  int
	reply  chan Snapshot // capacity 1: the hub never blocks on a caller that gave up
}

// dumpHistory asks for the history ring and the id counter, to save them.
type dumpHistory struct {
	reply chan historyDump // capacity 1
}

type historyDump struct {
	nextID uint64
	frames []*frame
}

// Messages of a user actor. Besides these it takes *frame (route this event).

// attach hands a user actor a new stream and the frames it must write
// before any live event (a reset notice and/or a replay).
type attach struct {
	s      *stream
	replay [][]byte
}

// detach says a stream has closed. It may arrive before the stream's
// attach; attach then sees the stream closed and drops it.
type detach struct {
	s *stream
}

// setPermissions replaces a user actor's permissions.
type setPermissions struct {
	perms *authz.Permissions
}

// Messages of a conn actor. Besides these it takes *frame (write this).

// replay is the frames a resumed stream missed. It is posted past the
// mailbox's bound: a long replay is one message, not a slow client.
type replay struct {
	frames [][]byte
}

// heartbeat asks a conn actor to write ":ping". The heartbeat wheel posts
// the hub's one value of it, only to streams that wrote nothing lately.
type heartbeat struct{}

// closeStream asks a conn actor to write a retry hint and close: a graceful
// end (shutdown, lifetime) rather than a dropped connection.
type closeStream struct {
	reason  CloseReason
	retryMs int64
}
