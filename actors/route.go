package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/jobs"
)

// hubActor owns the id counter, the history ring, the job table and the
// routing index. It is the only writer of all four and handles one message
// at a time.
type hubActor struct {
	h       *Hub
	nextID  uint64 // id of the next event; never 0, so 0 means "before everything"
	history *history
	jobs    *jobTable

	users      map[string]*userEntry
	byAsset    map[string]map[*userEntry]struct{} // non-admin users allowed on the asset
	byScenario map[string]map[*userEntry]struct{} // non-admin users allowed on the scenario
	admins     map[*userEntry]struct{}
}

// userEntry is the hub's view of one user actor.
type userEntry struct {
	user     string
	pid      *actor.PID
	perms    *authz.Permissions
	attaches uint64 // streams handed to the user actor so far
}

// newHubActor starts from nextID and the frames loaded from a history
// file, if any.
func newHubActor(h *Hub, nextID uint64, frames []*frame) *hubActor {
	a := &hubActor{
		h:          h,
		nextID:     nextID,
		history:    newHistory(h.cfg.History),
		jobs:       newJobTable(h.cfg.Jobs),
		users:      map[string]*userEntry{},
		byAsset:    map[string]map[*userEntry]struct{}{},
		byScenario: map[string]map[*userEntry]struct{}{},
		admins:     map[*userEntry]struct{}{},
	}
	for _, f := range frames {
		a.history.push(f)
		a.jobs.update(f)
	}
	return a
}

func (a *hubActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *publish:
		ids := make([]uint64, len(msg.events))
		for i := range msg.events {
			ids[i] = a.ingest(ctx, &msg.events[i])
		}
		msg.reply <- ids
	case *jobs.Event:
		a.ingest(ctx, msg)
	case *subscribe:
		a.subscribe(ctx, msg)
	case *snapshot:
		msg.reply <- Snapshot{
			LastEventID: a.nextID - 1,
			Jobs: a.jobs.newest(msg.limit, func(ev *jobs.Event) bool {
				return msg.perms.Allows(ev) && msg.filter.Match(ev)
			}),
		}
	case *dumpHistory:
		msg.reply <- historyDump{nextID: a.nextID, frames: a.history.all()}
	case *userIdle:
		if e := a.users[msg.user]; e != nil && e.attaches == msg.attaches {
			a.unindex(e)
			delete(a.users, msg.user)
			ctx.Stop(e.pid)
			a.h.m.usersActive.Dec()
		}
	}
}

// ingest gives ev the next id, encodes its frame once, keeps it in history
// and routes it.
func (a *hubActor) ingest(ctx actor.Context, ev *jobs.Event) uint64 {
	id := a.nextID
	a.nextID++
	f := &frame{id: id, ev: ev}
	f.bytes = appendEventFrame(make([]byte, 0, frameSize(ev)), id, ev)
	a.history.push(f)
	a.jobs.update(f)
	a.h.m.ingested[ev.Type][ev.Status].Inc()
	a.route(ctx, f)
	return id
}

// route sends f to the user actors whose permissions can cover it: the
// admins, and the users indexed under every scope the event carries.
func (a *hubActor) route(ctx actor.Context, f *frame) {
	for e := range a.admins {
		ctx.Send(e.pid, f)
	}
	ev := f.ev
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

// subscribe attaches a new stream to its user's actor (spawning it if need
// be), preceded by what the stream missed. Because the hub handles one
// message at a time and its mailbox to the user actor is FIFO, the replay
// ends exactly where the live events begin.
func (a *hubActor) subscribe(ctx actor.Context, msg *subscribe) {
	s := msg.s
	e := a.users[s.user]
	switch {
	case e == nil:
		e = &userEntry{user: s.user, perms: s.perms}
		e.pid = ctx.Spawn(a.userPropsFor(e))
		a.users[s.user] = e
		a.index(e)
		a.h.m.usersActive.Inc()
	case e.perms != s.perms:
		// The stream brought newer permissions than the user actor has.
		a.unindex(e)
		e.perms = s.perms
		a.index(e)
		ctx.Send(e.pid, &setPermissions{perms: s.perms})
	}
	var frames [][]byte
	if msg.resume {
		frames = a.replay(s, msg.lastID)
	}
	e.attaches++
	s.userPID.Store(e.pid)
	ctx.Send(e.pid, &attach{s: s, replay: frames})
}

// replay returns the frames a stream resuming after lastID must get first:
// the events it may see and asked for, or a reset notice when lastID is no
// longer (or not yet) in history.
func (a *hubActor) replay(s *stream, lastID uint64) [][]byte {
	newest := a.nextID - 1
	if lastID > newest {
		return [][]byte{appendResetFrame(nil, newest, "ahead")}
	}
	if oldest := a.history.oldest(); oldest > 0 && lastID+1 < oldest || oldest == 0 && lastID < newest {
		return [][]byte{appendResetFrame(nil, newest, "expired")}
	}
	var frames [][]byte
	a.history.after(lastID, func(f *frame) {
		if s.perms.Allows(f.ev) && s.filter.Match(f.ev) {
			frames = append(frames, f.bytes)
		}
	})
	return frames
}

func (a *hubActor) userPropsFor(e *userEntry) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &userActor{hub: a.h, user: e.user, perms: e.perms}
	})
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
