package actors

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/jobs"
)

// hubActor owns the history (its window on the event log: the newest
// frames, encoded once), the job table, the users it knows with their
// streams, the routing index and the id of the last record it took from
// the log. It is the only writer of all of them and handles one message at
// a time. It never writes to the log: it routes what the log's tail hands
// it, straight to the streams' mailboxes.
type hubActor struct {
	h       *Hub
	routed  uint64 // id of the last record taken from the log; 0 before everything
	history *history
	jobs    *jobTable

	parked []*caughtUp // resumes waiting for the log to reach their id
	// backfills counts the reads of the log in flight for resumes, in all
	// and by user.
	backfills   int
	backfillsBy map[string]int

	// users holds every user with streams, a user actor, or permissions
	// cached; the index only those with streams, under the permissions in
	// force (userEntry.perms; see routes).
	users map[string]*userEntry
	routes
	nextTick time.Duration // no user is due before then (Hub.clock)
	// userProps spawns every user actor; its producer takes the actor from
	// waking, which send sets for the length of one synchronous Spawn.
	userProps *actor.Props
	waking    *userActor
}

// userEntry is the hub's view of one user.
type userEntry struct {
	// streams are attached: the hub routes to them. A user's first stream
	// is held in one, in the entry itself: most users have one stream, and
	// a fan-out then misses the cache on the entry, not on a list too.
	streams []*stream
	one     [1]*stream
	user    string
	perms   *authz.Permissions // in force; nil while unknown
	// lastUsed is when the user last authorized, attached or detached a
	// stream: one without streams is forgotten a TTL after.
	lastUsed time.Duration
	pid      *actor.PID // the user actor while it runs; nil while passivated
	sent     uint64     // messages sent to the running actor; see passivate
	state    userState  // while passivated
}

// newHubActor starts after the log's record after: the tail hands it
// every record from there on. seed is the latest event of the jobs last
// updated up to after, in id order (from a log that keeps them): the job
// table starts with them.
func newHubActor(h *Hub, after uint64, seed []*frame) *hubActor {
	h.routed.Store(after)
	a := &hubActor{
		h:           h,
		routed:      after,
		history:     newHistory(h.cfg.History, h.cfg.HistoryBytes, after+1),
		jobs:        newJobTable(h.cfg.Jobs, h.cfg.JobsBytes),
		users:       map[string]*userEntry{},
		backfillsBy: map[string]int{},
		routes:      newRoutes(),
	}
	a.userProps = actor.PropsFromProducer(func() actor.Actor { return a.waking }, actor.WithDispatcher(h.control))
	for _, f := range seed {
		a.jobs.update(f)
	}
	h.m.jobsBytes.Set(float64(a.jobs.bytes))
	return a
}

func (a *hubActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *logged:
		if msg.id <= a.routed {
			return // read twice across a consumer reset
		}
		if msg.ev != nil {
			a.ingest(msg.id, msg.ev)
		}
		a.routed = msg.id
		a.h.routed.Store(msg.id)
		a.unpark()
	case *caughtUp:
		a.parked = append(a.parked, msg)
		a.unpark()
	case *subscribe:
		a.subscribe(ctx, msg)
	case *detach:
		a.detach(msg.s)
	case *backfilled:
		sub := msg.sub
		a.backfills--
		if a.backfillsBy[sub.s.user]--; a.backfillsBy[sub.s.user] <= 0 {
			delete(a.backfillsBy, sub.s.user)
		}
		a.h.m.backfills[msg.result].Inc()
		if msg.result == backfillOK {
			sub.prefix = append(sub.prefix, msg.frames...)
			sub.upTo = msg.upTo
		} else {
			sub.upTo = 0 // what it missed is gone: the replay says "expired"
			sub.prefix = nil
			sub.attempts = maxBackfills
		}
		a.subscribe(ctx, sub)
	case *snapshot:
		// The answer's JSON besides its jobs ({"lastEventId":…,"jobs":[…],
		// "truncated":true}) is under 80 bytes.
		list, truncated := a.jobs.newest(msg.limit, max(a.h.cfg.SnapshotBytes-80, 1), func(ev *jobs.Event) bool {
			return msg.perms.Allows(ev) && msg.filter.Match(ev)
		})
		if truncated {
			a.h.m.snapshotTruncated.Inc()
		}
		msg.reply <- Snapshot{LastEventID: a.routed, Jobs: list, Truncated: truncated}
	case *jobEnded:
		msg.reply <- a.jobs.ended(msg.id)
	case *unfinished:
		msg.reply <- a.jobs.unfinished()
	case *authorize:
		a.authorize(ctx, msg)
	case *invalidate:
		a.invalidate(ctx, msg)
	case *permsChanged:
		if e := a.users[msg.user]; e != nil && e.pid != nil && e.pid.Equal(msg.pid) {
			a.apply(e, msg.perms)
		}
		for _, done := range msg.done {
			done <- struct{}{}
		}
	case *passivate:
		a.passivate(ctx, msg)
	case *tick:
		a.tick(ctx)
	}
}

// ingest encodes the frame of the log's event id once, keeps it in history,
// takes it into the job table and routes it. Ids only grow: the caller
// passes each once.
func (a *hubActor) ingest(id uint64, ev *jobs.Event) {
	f := newFrame(id, ev)
	f.at = time.Now().UnixNano()
	m := a.h.m
	if byCount, byBytes := a.history.push(f); byCount+byBytes > 0 {
		m.historyEvicted[evictCount].Add(float64(byCount))
		m.historyEvicted[evictBytes].Add(float64(byBytes))
	}
	m.historyEvents.Set(float64(a.history.n))
	m.historyBytes.Set(float64(a.history.bytes))
	if byCount, byBytes := a.jobs.update(f); byCount+byBytes > 0 {
		m.jobsEvicted[evictCount].Add(float64(byCount))
		m.jobsEvicted[evictBytes].Add(float64(byBytes))
	}
	m.jobsBytes.Set(float64(a.jobs.bytes))
	m.ingested[ev.Type][ev.Status].Inc()
	a.routes.route(f)
}

// unpark answers the resumes whose id the hub has now read.
func (a *hubActor) unpark() {
	kept := a.parked[:0]
	for _, q := range a.parked {
		if q.id <= a.routed {
			q.reply <- struct{}{}
		} else {
			kept = append(kept, q)
		}
	}
	clear(a.parked[len(kept):])
	a.parked = kept
}

// subscribe attaches a new stream to its user, preceded by what the stream
// missed. Because the hub handles one message at a time and posts both the
// replay and the live events to the stream's mailbox, the replay ends
// exactly where the live events begin. The transport authorized the user
// just before, so their permissions are known; if they are not (the user
// was forgotten in between, or their source failed since), the stream is
// closed with a retry hint and the client comes back through
// authorization.
func (a *hubActor) subscribe(ctx actor.Context, msg *subscribe) {
	s := msg.s
	e := a.users[s.user]
	if e == nil || e.perms == nil {
		s.closeGracefully(CloseAuthzUnavailable, a.h.retryJitter())
		return
	}
	if e.perms.None() {
		// Lost every permission since it was authorized: it would get nothing.
		s.closeGracefully(CloseRevoked, a.h.retryJitter())
		return
	}
	if msg.attempts == 0 {
		msg.mark = a.routed
	}
	if a.backfill(ctx, msg) {
		return // back when the log has been read
	}
	var frames [][]byte
	if msg.resume {
		frames = a.replay(e.perms, s, msg.lastID, msg.prefix, msg.upTo, msg.mark)
	}
	// A stream closed meanwhile is not attached: its detach came first or
	// finds nothing, as it is sent once the stream is closed.
	if s.reason.Load() != 0 {
		return
	}
	s.mb.postAlways(&replay{frames: frames}) // empty too: it sends the head
	if len(e.streams) == 0 {
		a.index(e)
		e.streams = e.one[:0]
	}
	e.streams = append(e.streams, s)
	if len(e.streams) == len(e.one)+1 {
		clear(e.one[:]) // the list moved out: it holds the first stream now
	}
	e.lastUsed = a.h.clock()
	a.due(e) // now due for a refresh rather than to be forgotten
}

// maxBackfills bounds the log reads for one resume: history moving on faster
// than the log can be read gives a reset, not a loop.
const maxBackfills = 3

// backfill starts a read of the log for what a resuming stream missed that
// history no longer has, and reports whether it did: the subscribe then
// comes back as backfilled. Live events in the meantime stay in history,
// after what is read: no gap. The read runs off the actor (a cluster's log
// is across the network), bounded by PublishTimeout and BackfillBytes of
// frames, and canceled when the stream closes. At most MaxBackfills run at
// once, MaxBackfillsPerUser of one user's: a resume over either is
// answered "expired" at once (refused).
func (a *hubActor) backfill(ctx actor.Context, sub *subscribe) bool {
	if !sub.resume || sub.attempts >= maxBackfills {
		return false
	}
	from := max(sub.lastID, sub.upTo)
	if sub.lastID > a.routed || from+1 >= a.history.floor {
		return false // ahead, or history has the rest
	}
	h, s := a.h, sub.s
	if a.backfills >= h.cfg.MaxBackfills || a.backfillsBy[s.user] >= h.cfg.MaxBackfillsPerUser {
		h.m.backfills[backfillRefused].Inc()
		sub.upTo, sub.prefix, sub.attempts = 0, nil, maxBackfills // the replay says "expired"
		return false
	}
	a.backfills++
	a.backfillsBy[s.user]++
	sub.attempts++
	upTo, base := a.history.floor-1, 0
	for _, f := range sub.prefix {
		base += f.size() // what earlier reads gave counts too
	}
	self, root := ctx.Self(), h.system.Root
	h.loads.Go(func() {
		rctx, cancel := context.WithTimeout(context.Background(), h.cfg.PublishTimeout)
		defer cancel()
		// A stream that closes cancels its read (see stream.close); one
		// that closed before this was stored is canceled here.
		s.cancelRead.Store(&cancel)
		if s.reason.Load() != 0 {
			cancel()
		}
		var frames []*frame
		size, over := base, false
		err := h.events.Read(rctx, from, upTo, func(r eventlog.Record) {
			if r.Event == nil || over {
				return
			}
			f := newFrame(r.ID, r.Event)
			if size += f.size(); size > h.cfg.BackfillBytes {
				over = true
				frames = nil // what the read made so far goes now
				cancel()
				return
			}
			frames = append(frames, f)
		})
		s.cancelRead.Store(nil)
		result := backfillOK
		switch {
		case over, errors.Is(err, eventlog.ErrExpired):
			result = backfillExpired
		case err != nil && s.reason.Load() != 0:
			result = backfillCanceled
		case err != nil:
			result = backfillError
			h.warn.Warn("backfill", "a resume could not read the event log; the client gets a reset", slog.String("err", err.Error()))
		}
		root.Send(self, &backfilled{sub: sub, frames: frames, upTo: upTo, result: result})
	})
	return true
}

// entry returns the entry of user, making one if there is none.
func (a *hubActor) entry(user string) *userEntry {
	e := a.users[user]
	if e == nil {
		e = &userEntry{user: user}
		a.users[user] = e
		a.h.m.usersActive.Set(float64(len(a.users)))
	}
	return e
}

// authorize answers from a passivated user's fresh state, or forwards the
// request to their actor, woken if need be.
func (a *hubActor) authorize(ctx actor.Context, msg *authorize) {
	e := a.entry(msg.user)
	now := a.h.clock()
	e.lastUsed = now
	if e.pid == nil && e.state.fresh(now) {
		a.h.m.authzCache[authzHit].Inc()
		msg.reply <- authResult{perms: e.state.loaded}
		return
	}
	a.send(ctx, e, msg)
}

// send sends msg to the user's actor, waking it (a new one, with the
// user's state) if it is passivated.
func (a *hubActor) send(ctx actor.Context, e *userEntry, msg any) {
	if e.pid == nil {
		a.waking = &userActor{hub: a.h, user: e.user, userState: e.state, applied: e.perms}
		e.pid = ctx.Spawn(a.userProps)
		a.waking = nil
		e.sent, e.state = 0, userState{}
		a.h.m.userActorsRunning.Inc()
	}
	e.sent++
	ctx.Send(e.pid, msg)
}

// passivate takes a user actor's state and stops it, unless something was
// sent to it since it offered (it offers again once that is done). A user
// whose permissions allow nothing, without streams, is forgotten at once:
// an identity without permissions keeps nothing for a TTL.
func (a *hubActor) passivate(ctx actor.Context, msg *passivate) {
	e := a.users[msg.user]
	if e == nil || e.pid == nil || !e.pid.Equal(msg.pid) || e.sent != msg.recv {
		return
	}
	ctx.Stop(e.pid)
	e.pid, e.state = nil, msg.state
	a.h.m.userActorsRunning.Dec()
	if len(e.streams) == 0 && e.state.loaded.None() {
		a.forget(e)
		return
	}
	a.due(e)
}

// detach stops routing to a closed stream.
func (a *hubActor) detach(s *stream) {
	e := a.users[s.user]
	if e == nil {
		return
	}
	i := slices.Index(e.streams, s)
	if i < 0 {
		return // closed before it was attached
	}
	last := len(e.streams) - 1
	e.streams[i], e.streams[last] = e.streams[last], nil
	e.streams = e.streams[:last]
	if len(e.streams) == 0 {
		a.unindex(e)
		e.streams = nil // and e.one is clear: the swap above cleared the last
		e.lastUsed = a.h.clock()
		a.due(e)
	}
}

// apply puts a user's new permissions (nil: unknown) in force, at this
// point of the event sequence: the index moves, the frames already queued
// for the user's streams that they deny are dropped before any is written,
// and a stream that may have some in a write in progress (its socket full)
// or in a replay queued is closed (forbidden): it resumes, and its replay
// is checked against p. Permissions that allow nothing close every stream.
func (a *hubActor) apply(e *userEntry, p *authz.Permissions) {
	narrowed, indexed := narrows(e.perms, p), len(e.streams) > 0
	if indexed {
		a.unindex(e)
	}
	e.perms = p
	if indexed {
		a.index(e)
	}
	if narrowed {
		deny := func(f *frame) bool { return !p.Allows(&f.ev) }
		for _, s := range e.streams {
			if s.mb.revoke(deny) || s.mb.congested.Load() {
				s.close(CloseRevoked)
			}
		}
	}
	var r CloseReason
	switch {
	case p == nil:
		r = CloseAuthzUnavailable
	case p.None():
		r = CloseRevoked
	default:
		return
	}
	for _, s := range e.streams {
		s.closeGracefully(r, a.h.retryJitter())
	}
}

// due lowers the next tick's time to when e is next due.
func (a *hubActor) due(e *userEntry) {
	if e.pid != nil {
		return // its actor offers its state back when done
	}
	at := e.lastUsed + a.h.cfg.PermissionsTTL
	if len(e.streams) > 0 {
		at = e.state.due
	}
	a.nextTick = min(a.nextTick, at)
}

// tick wakes the actors of the users with streams whose refresh is due,
// and forgets the users without streams unused for a TTL. It looks at every
// passivated user only when one is due.
func (a *hubActor) tick(ctx actor.Context) {
	now := a.h.clock()
	if now < a.nextTick {
		return
	}
	a.nextTick = math.MaxInt64
	for _, e := range a.users {
		switch {
		case e.pid != nil:
		case len(e.streams) > 0 && now >= e.state.due:
			a.send(ctx, e, &refreshDue{})
		case len(e.streams) == 0 && now-e.lastUsed >= a.h.cfg.PermissionsTTL:
			a.forget(e)
		default:
			a.due(e)
		}
	}
}

// forget drops a passivated user without streams.
func (a *hubActor) forget(e *userEntry) {
	delete(a.users, e.user)
	a.h.m.usersActive.Set(float64(len(a.users)))
}

// invalidate makes one user's actor, or every user's, reload their
// permissions. A passivated user without streams has their cache dropped
// instead: their next request loads. Such a user (or one unknown) is
// answered at once.
func (a *hubActor) invalidate(ctx actor.Context, msg *invalidate) {
	if msg.all {
		for _, e := range a.users {
			if e.pid == nil && len(e.streams) == 0 {
				e.state = userState{}
				continue
			}
			a.send(ctx, e, &invalidate{user: e.user})
		}
		return
	}
	e := a.users[msg.user]
	if e == nil || e.pid == nil && len(e.streams) == 0 {
		if e != nil {
			e.state = userState{}
		}
		if msg.reply != nil {
			msg.reply <- struct{}{}
		}
		return
	}
	a.send(ctx, e, msg)
}

// replay returns the frames a stream resuming after lastID must get first:
// the events it may see and asked for, or a reset notice when lastID is no
// longer (or not yet) in history.
//
// prefix holds what the log had after lastID up to upTo that history no
// longer does (see backfill); history goes on from there. mark is the
// newest id when the stream's subscribe first reached the hub.
func (a *hubActor) replay(perms *authz.Permissions, s *stream, lastID uint64, prefix []*frame, upTo, mark uint64) (frames [][]byte) {
	newest := a.routed
	if lastID > newest {
		return [][]byte{appendResetFrame(nil, newest, "ahead")}
	}
	size, limit := 0, a.h.cfg.MailboxBytes
	keep := func(f *frame) {
		if size <= limit && perms.Allows(&f.ev) && s.filter.Match(&f.ev) {
			frames = append(frames, f.bytes)
			size += len(f.bytes)
		}
	}
	// A replay is held by the stream like its mailbox's frames, so it is
	// bounded by the same bytes: a larger one is not sent, the client gets
	// a reset and reloads the snapshot instead.
	defer func() {
		if size > limit {
			a.h.m.replaysRefused.Inc()
			frames = [][]byte{appendResetFrame(nil, newest, "expired")}
		}
	}()
	from := lastID
	if upTo > lastID {
		for _, f := range prefix {
			keep(f)
		}
		from = upTo
	}
	if from+1 < a.history.floor {
		// The reset names the newest id when the stream asked, and what
		// came since follows it: the same stream as if the answer had not
		// waited for the log. If history moved past that meanwhile, the
		// reset names the newest id now.
		size = 0 // what the log gave is not sent
		if mark+1 < a.history.floor {
			return [][]byte{appendResetFrame(nil, newest, "expired")}
		}
		frames = append(frames[:0], appendResetFrame(nil, mark, "expired"))
		from = mark
	}
	a.history.after(from, keep)
	return frames
}
