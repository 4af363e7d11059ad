package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/jobs"
)

// Messages of the hub actor.

// logged is a record of the event log, handed over by its tail in id order;
// ev is nil for a message of the log that is not a valid event (its id is
// passed, nothing is routed).
type logged struct {
	id uint64
	ev *jobs.Event
}

// subscribe attaches an opened stream to its user's routing entry, after
// replaying what it missed when it resumes.
type subscribe struct {
	s      *stream
	resume bool   // the client sent a Last-Event-ID
	lastID uint64 // valid when resume
	mark   uint64 // the newest id routed when the hub first took the subscribe
	// The events after lastID up to upTo, read from the log because history
	// no longer had them.
	prefix   []*frame
	upTo     uint64
	attempts int // log reads so far for this resume
}

// backfilled brings a subscribe back to the hub actor with what a read of
// the log found up to upTo, and how the read ended (backfillOK, or why the
// replay says "expired").
type backfilled struct {
	sub    *subscribe
	frames []*frame
	upTo   uint64
	result int
}

// passivate offers the hub a user actor's state: it has no work left (no
// load, nobody waiting). recv is how many hub messages it has received
// (authorize, invalidate, refreshDue); the hub takes the state and stops
// the actor only if it sent it no more since, so nothing sent to it is
// left unanswered.
type passivate struct {
	user  string
	pid   *actor.PID
	recv  uint64
	state userState
}

// tick is the hub's clock: it wakes the user actors whose refresh is due
// and forgets the users idle for a TTL.
type tick struct{}

// authorize asks for a user's permissions, from the cache or the source.
// The hub answers it from a passivated user's fresh state, and otherwise
// forwards it to the user actor, waking it if need be.
type authorize struct {
	user  string
	reply chan authResult // capacity 1: nobody blocks on a caller that gave up
}

type authResult struct {
	perms *authz.Permissions
	err   error
}

// invalidate makes a user actor reload its permissions now. With a reply,
// it is answered once the result is applied (or found unchanged).
type invalidate struct {
	user  string
	all   bool          // every user actor, for a reloaded permissions file
	reply chan struct{} // capacity 1; nil when nobody waits
}

// permsChanged asks the hub to apply a user's new permissions (nil:
// unknown, deny): re-index the user and narrow or close their streams. done
// are the invalidations waiting for it, answered once it is in force.
type permsChanged struct {
	user  string
	pid   *actor.PID // the asking actor, so a stopped one's late news is ignored
	perms *authz.Permissions
	done  []chan struct{}
}

// snapshot asks for the latest status of the most recent jobs a user may
// see, with the id of the newest event: the point a stream resumes from.
type snapshot struct {
	perms  *authz.Permissions
	filter *jobs.Filter
	limit  int
	reply  chan Snapshot // capacity 1: the hub never blocks on a caller that gave up
}

// jobEnded asks whether the job table holds a job's end.
type jobEnded struct {
	id    string
	reply chan bool // capacity 1: the hub never blocks on a caller that gave up
}

// unfinished asks for the latest event of each job that has not ended.
type unfinished struct {
	reply chan []jobs.Event // capacity 1: the hub never blocks on a caller that gave up
}

// caughtUp asks the hub to answer once it has taken the log's records up
// to id: a resume from an id on its way to the hub waits for it.
type caughtUp struct {
	id    uint64
	reply chan struct{} // capacity 1: the hub never blocks on a caller that gave up
}

// detach says a stream has closed: the hub stops routing to it. It may
// arrive before the stream is attached; the hub then sees the stream closed
// and never attaches it.
type detach struct {
	s *stream
}

// Messages of a user actor, from the hub: authorize, invalidate, and these.

// loaded is a permissions source's answer to a user actor's load.
type loaded struct {
	perms *authz.Permissions
	err   error
}

// refreshDue asks a user actor to reload its user's permissions.
type refreshDue struct{}

// Messages of a conn actor. Besides these it takes *frame (write this).

// replay is the frames a resumed stream missed. It is posted past the
// mailbox's bound: a long replay is one message, not a slow client.
type replay struct {
	frames [][]byte
}

// revoked tells a conn actor that its user's permissions narrowed: the
// mailbox has dropped the queued frames they deny, and hands this over
// ahead of the rest (see mailbox.revoke). It is the one value revokeMark.
type revoked struct{}

var revokeMark = &revoked{}

// resume makes a congested conn actor, now on a goroutine of its own, write
// what its socket did not take.
type resume struct{}

// heartbeat asks a conn actor to write ":ping". The heartbeat wheel posts
// the hub's one value of it, only to streams that wrote nothing lately.
type heartbeat struct{}

// closeStream asks a conn actor to write a retry hint and close: a graceful
// end (shutdown, lifetime) rather than a dropped connection.
type closeStream struct {
	reason  CloseReason
	retryMs int64
}
