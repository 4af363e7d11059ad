package actors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/jobs"
)

// hubActor owns the history (its window on the event log: the newest
// frames, encoded once), the job table, the routing index and the id of the
// last record it took from the log. It is the only writer of all four and
// handles one message at a time. It never writes to the log: it routes what
// the log's tail hands it.
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
	users       map[string]*userEntry
	byAsset     map[string]map[*userEntry]struct{} // non-admin users allowed on the asset
	byScenario  map[string]map[*userEntry]struct{} // non-admin users allowed on the scenario
	admins      map[*userEntry]struct{}
}

// userEntry is the hub's view of one user actor.
type userEntry struct {
	user  string
	pid   *actor.PID
	perms *authz.Permissions // applied; nil while unknown (not indexed)
	sent  uint64             // messages sent that keep the actor alive; see userIdle
}

// newHubActor starts after the log's record after: the tail hands it
// every record from there on.
func newHubActor(h *Hub, after uint64) *hubActor {
	h.routed.Store(after)
	a := &hubActor{
		h:           h,
		routed:      after,
		history:     newHistory(h.cfg.History, h.cfg.HistoryBytes, after+1),
		jobs:        newJobTable(h.cfg.Jobs, h.cfg.JobsBytes),
		users:       map[string]*userEntry{},
		backfillsBy: map[string]int{},
		byAsset:     map[string]map[*userEntry]struct{}{},
		byScenario:  map[string]map[*userEntry]struct{}{},
		admins:      map[*userEntry]struct{}{},
	}
	return a
}

func (a *hubActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *logged:
		if msg.id <= a.routed {
			return // read twice across a consumer reset
		}
		if msg.ev != nil {
			a.ingest(ctx, msg.id, msg.ev)
		}
		a.routed = msg.id
		a.h.routed.Store(msg.id)
		a.unpark()
	case *caughtUp:
		a.parked = append(a.parked, msg)
		a.unpark()
	case *subscribe:
		a.subscribe(ctx, msg)
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
	case *authorize:
		e := a.user(ctx, msg.user)
		e.sent++
		ctx.Send(e.pid, msg)
	case *invalidate:
		a.invalidate(ctx, msg)
	case *permsChanged:
		if e := a.users[msg.user]; e != nil && e.pid.Equal(msg.pid) {
			a.unindex(e)
			e.perms = msg.perms
			a.index(e)
			ctx.Send(e.pid, &setPermissions{perms: msg.perms})
		}
	case *userIdle:
		if e := a.users[msg.user]; e != nil && e.sent == msg.recv {
			a.unindex(e)
			delete(a.users, msg.user)
			ctx.Stop(e.pid)
			a.h.m.usersActive.Dec()
		}
	}
}

// ingest encodes the frame of the log's event id once, keeps it in history,
// takes it into the job table and routes it. Ids only grow: the caller
// passes each once.
func (a *hubActor) ingest(ctx actor.Context, id uint64, ev *jobs.Event) {
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
	a.route(ctx, f)
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

// route sends f to the user actors whose permissions can cover it: the
// admins, and the users indexed under every scope the event carries.
func (a *hubActor) route(ctx actor.Context, f *frame) {
	for e := range a.admins {
		ctx.Send(e.pid, f)
	}
	ev := &f.ev
	switch {
	case ev.AssetID != "" && ev.ScenarioID != "":
		small, big := a.byAsset[ev.AssetID], a.byScenario[ev.ScenarioID]
		if len(big) < len(small) {
			small, big = big, small
		}
		for e := range small {
			if _, ok := big[e]; ok {
				ctx.Send(e.pid, f)
			}
		}
	case ev.AssetID != "":
		for e := range a.byAsset[ev.AssetID] {
			ctx.Send(e.pid, f)
		}
	case ev.ScenarioID != "":
		for e := range a.byScenario[ev.ScenarioID] {
			ctx.Send(e.pid, f)
		}
	}
}

// subscribe attaches a new stream to its user's actor, preceded by what the
// stream missed. Because the hub handles one message at a time and its
// mailbox to the user actor is FIFO, the replay ends exactly where the live
// events begin. The transport authorized the user just before, so their
// permissions are known; if they are not (the user actor went idle in
// between, or its source failed since), the stream is closed with a retry
// hint and the client comes back through authorization.
func (a *hubActor) subscribe(ctx actor.Context, msg *subscribe) {
	s := msg.s
	e := a.users[s.user]
	if e == nil || e.perms == nil {
		s.closeGracefully(CloseAuthzUnavailable, a.h.retryJitter())
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
	e.sent++
	s.userPID.Store(e.pid)
	ctx.Send(e.pid, &attach{s: s, replay: frames})
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

// user returns the entry of user, spawning their actor if there is none.
func (a *hubActor) user(ctx actor.Context, user string) *userEntry {
	e := a.users[user]
	if e == nil {
		e = &userEntry{user: user}
		e.pid = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return &userActor{hub: a.h, user: user} },
			actor.WithDispatcher(a.h.control)))
		a.users[user] = e
		a.h.m.usersActive.Inc()
	}
	return e
}

// invalidate forwards an invalidation to one user actor or to all; a user
// without an actor has nothing cached, and is answered at once.
func (a *hubActor) invalidate(ctx actor.Context, msg *invalidate) {
	if msg.all {
		for _, e := range a.users {
			e.sent++
			ctx.Send(e.pid, &invalidate{user: e.user})
		}
		return
	}
	e := a.users[msg.user]
	if e == nil {
		if msg.reply != nil {
			msg.reply <- struct{}{}
		}
		return
	}
	e.sent++
	ctx.Send(e.pid, msg)
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

func (a *hubActor) index(e *userEntry) {
	p := e.perms
	if p == nil {
		return
	}
	if p.Admin {
		a.admins[e] = struct{}{}
		return
	}
	for asset := range p.Assets {
		addTo(a.byAsset, asset, e)
	}
	for scenario := range p.Scenarios {
		addTo(a.byScenario, scenario, e)
	}
}

func (a *hubActor) unindex(e *userEntry) {
	p := e.perms
	if p == nil {
		return
	}
	delete(a.admins, e)
	for asset := range p.Assets {
		removeFrom(a.byAsset, asset, e)
	}
	for scenario := range p.Scenarios {
		removeFrom(a.byScenario, scenario, e)
	}
}

func addTo(index map[string]map[*userEntry]struct{}, key string, e *userEntry) {
	set := index[key]
	if set == nil {
		set = map[*userEntry]struct{}{}
		index[key] = set
	}
	set[e] = struct{}{}
}

func removeFrom(index map[string]map[*userEntry]struct{}, key string, e *userEntry) {
	if set := index[key]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(index, key)
		}
	}
}
