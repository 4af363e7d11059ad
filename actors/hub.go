package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/ratelog"
	"github.com/finexbot/eventhub/jobs"
)

// Hub is the handle on a running hub actor and the streams it serves. Its
// methods may be called from any goroutine.
type Hub struct {
	cfg  Config
	log  *slog.Logger
	warn *ratelog.Limiter // repeating warnings, once a minute per kind
	// events is the event log: every event is appended there, and the hub
	// routes what its tail hands back, in id order.
	events eventlog.Log
	// ownLog is the memory log the hub opened because Config.Log was nil;
	// it closes it at Shutdown.
	ownLog   *eventlog.Memory
	stopTail func()
	// routed is the id of the last record the hub actor has taken from the
	// log, for Open to tell whether a resume must wait for it.
	routed atomic.Uint64
	m      *metrics
	start  time.Time // the hub's clock starts here (clock)
	system *actor.ActorSystem
	pid    *actor.PID

	admission admission
	streams   wheel      // every open stream, and their heartbeats
	ping      *heartbeat // the one heartbeat message, shared by every post

	// connProps spawns every conn actor. Its producers take the stream from
	// spawning, which Open sets under spawnMu for the length of one
	// synchronous Spawn: one shared Props instead of one per stream (a few
	// hundred bytes each, kept as long as the actor lives).
	connProps *actor.Props
	pool      *workerPool // runs the conn actors' mailboxes
	hangups   *hangups    // sees clients hang up where it can; nil if epoll failed
	// control runs the hub and user actors' mailboxes: they never block,
	// so two long-lived goroutines do, instead of a new one per wake-up.
	control  *workerPool
	spawnMu  sync.Mutex
	spawning *stream

	mu      sync.Mutex // guards closing
	closing bool
	// goroutines counts each stream's conn actor and its reader goroutine
	// or its place among the hangups (two per stream), the heartbeat wheel
	// and the tick, so Shutdown can wait for all.
	goroutines sync.WaitGroup
	stopClocks chan struct{} // closed when shutdown begins: ends the wheel and the tick
	shutdown   sync.Once
	// loads counts user actors' permission loads in flight; each ends by
	// its timeout, or at once when its actor stops.
	loads sync.WaitGroup
}

// NewHub starts a hub actor on system, best made with NewSystem (any
// protoactor system works). The caller owns system and shuts it down after
// Hub.Shutdown.
func NewHub(system *actor.ActorSystem, cfg Config) (*Hub, error) {
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	h := &Hub{
		cfg:        cfg,
		log:        cfg.Logger,
		warn:       ratelog.New(cfg.Logger, time.Minute),
		m:          m,
		start:      time.Now(),
		system:     system,
		admission:  admission{max: cfg.MaxStreams, perUser: cfg.MaxStreamsPerUser, users: map[string]int{}},
		ping:       &heartbeat{},
		stopClocks: make(chan struct{}),
	}
	// A conn actor that panics has a bug, not a state worth keeping: stop it,
	// which closes its stream; the client resumes. Never restart it: its
	// producers only work inside Open.
	connGuardian := actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		h.log.Error("conn actor failed", "err", reason)
		return actor.StopDirective
	})
	// Two workers a core: conn actors mostly wait on write(), in the kernel.
	h.pool = newWorkerPool(2*runtime.GOMAXPROCS(0), 1<<16)
	h.control = newWorkerPool(runtime.GOMAXPROCS(0), 4096)
	if h.hangups, err = newHangups(); err != nil {
		// Streams still work, each with a reader goroutine: costlier, not wrong.
		h.log.Warn("no epoll for hang-ups: a reader goroutine per stream", "err", err)
		h.hangups = nil
	}
	h.connProps = actor.PropsFromProducer(func() actor.Actor { return &h.spawning.conn },
		actor.WithMailbox(func() actor.Mailbox { return &h.spawning.mb }), actor.WithGuardian(connGuardian),
		actor.WithDispatcher(h.pool))
	// The hub and the user actors resume after a panic: restarting them would
	// lose the id counter, the history or a user's streams. The message that
	// failed is dropped and logged.
	resume := actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		h.log.Error("hub actor failed", "err", reason)
		return actor.ResumeDirective
	})
	h.events = cfg.Log
	if h.events == nil {
		if h.ownLog, err = eventlog.OpenMemory(eventlog.MemoryConfig{Size: cfg.History, Bytes: cfg.HistoryBytes}); err != nil {
			h.stopWorkers()
			return nil, err
		}
		h.events = h.ownLog
	}
	after, err := h.tailStart()
	if err != nil {
		h.stopWorkers()
		return nil, err
	}
	seed, err := h.latestJobs(after)
	if err != nil {
		h.stopWorkers()
		return nil, err
	}
	// One instance, whatever happens: a resumed hub keeps its state.
	hubActor := newHubActor(h, after, seed)
	props := actor.PropsFromProducer(func() actor.Actor { return hubActor },
		actor.WithGuardian(resume), actor.WithSupervisor(resume), actor.WithDispatcher(h.control))
	h.pid, err = system.Root.SpawnNamed(props, "hub")
	if err != nil {
		h.stopWorkers()
		return nil, fmt.Errorf("spawn hub: %w", err)
	}
	root, pid := system.Root, h.pid
	h.stopTail, err = h.events.Tail(after, func(r eventlog.Record) { root.Send(pid, &logged{id: r.ID, ev: r.Event}) })
	if err != nil {
		system.Root.Stop(h.pid)
		h.stopWorkers()
		return nil, fmt.Errorf("tail the event log: %w", err)
	}
	if cfg.Heartbeat > 0 {
		h.goroutines.Go(func() { h.streams.run(cfg.Heartbeat, h.ping, h.m.mailboxDepth, h.stopClocks) })
	}
	h.goroutines.Go(h.tick)
	return h, nil
}

// clock is the time since the hub started, on the monotonic clock: the
// user state's times are on it.
func (h *Hub) clock() time.Duration { return time.Since(h.start) }

// tick sends the hub actor a tick every tenth of PermissionsTTL (from 10 ms
// to a second) until shutdown: what refreshes permissions and forgets idle
// users (see hubActor.tick).
func (h *Hub) tick() {
	t := time.NewTicker(min(max(h.cfg.PermissionsTTL/10, 10*time.Millisecond), time.Second))
	defer t.Stop()
	msg := &tick{}
	for {
		select {
		case <-t.C:
			h.system.Root.Send(h.pid, msg)
		case <-h.stopClocks:
			return
		}
	}
}

// tailStart returns the id after which the hub reads the log: far enough
// back to fill its history, so that resumes are answered without reading
// the log, and its job table.
func (h *Hub) tailStart() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, last, err := h.events.Bounds(ctx)
	if err != nil {
		return 0, fmt.Errorf("event log: %w", err)
	}
	var after uint64
	if back := uint64(h.cfg.History); last > back {
		after = last - back
	}
	if first > 0 {
		after = max(after, first-1)
	}
	return after, nil
}

// latestJobs returns, when the log keeps every job's latest event
// (eventlog.JobKeeper: the disk log), the frames of those up to after, in
// id order: the job table before the tail from after brings the rest, so
// GET /api/jobs shows every job the log knows after a restart.
func (h *Hub) latestJobs(after uint64) ([]*frame, error) {
	keeper, ok := h.events.(eventlog.JobKeeper)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seed []*frame
	err := keeper.LatestJobs(ctx, after, func(r eventlog.Record) {
		if r.Event != nil {
			seed = append(seed, newFrame(r.ID, r.Event))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("event log: the latest jobs: %w", err)
	}
	return seed, nil
}

// Publish appends validated events to the event log, all or none, and
// returns their ids in order; the hub routes them as the log hands them
// back. This is the one door for events: POST /api/events and the
// in-process workers both come through it. The log owns events after the
// call. It returns ErrClosed during shutdown, and ErrLogUnavailable (or the
// context's error) when the log did not take them in PublishTimeout.
func (h *Hub) Publish(ctx context.Context, events []jobs.Event) ([]uint64, error) {
	return h.PublishWithKey(ctx, "", events)
}

// PublishWithKey is Publish with an idempotency key: where the log keeps
// keys (a cluster's), a retry of a publish with the same key (within two
// minutes) is stored once, and answered with the same ids.
func (h *Hub) PublishWithKey(ctx context.Context, key string, events []jobs.Event) ([]uint64, error) {
	if h.isClosing() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	ids, err := h.events.Append(ctx, key, events)
	if err != nil {
		return nil, err
	}
	h.m.ingestLatency.Observe(time.Since(start).Seconds())
	return ids, nil
}

// ask sends the hub actor the message msg builds around a reply channel
// (capacity 1: the hub never blocks on a caller that gave up) and waits for
// the answer, ctx or timeout; giving up is ErrBusy.
func ask[T any](h *Hub, ctx context.Context, timeout time.Duration, msg func(chan T) any) (T, error) {
	reply := make(chan T, 1)
	h.system.Root.Send(h.pid, msg(reply))
	t := time.NewTimer(timeout)
	defer t.Stop()
	var zero T
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return zero, fmt.Errorf("%w: %v", ErrBusy, ctx.Err())
	case <-t.C:
		return zero, ErrBusy
	}
}

// Snapshot is the latest status of the most recent jobs a user may see, and
// the id of the newest event when it was taken: a stream opened with that
// Last-Event-ID misses nothing that happened after the snapshot.
type Snapshot struct {
	LastEventID uint64
	Jobs        []JobStatus // most recently updated first
	// Truncated says jobs were left out to keep the answer within
	// Config.SnapshotBytes: a smaller limit or a filter gets the rest.
	Truncated bool
}

// Snapshot returns up to limit jobs whose latest event perms allows and
// filter accepts, as many as fit in Config.SnapshotBytes of JSON.
func (h *Hub) Snapshot(ctx context.Context, perms *authz.Permissions, filter jobs.Filter, limit int) (Snapshot, error) {
	if h.isClosing() {
		return Snapshot{}, ErrClosed
	}
	return ask(h, ctx, h.cfg.PublishTimeout, func(reply chan Snapshot) any {
		return &snapshot{perms: perms, filter: &filter, limit: limit, reply: reply}
	})
}

// JobEnded reports whether job id has ended (completed or failed) by the
// events this hub has taken from the log: what a cluster's work queue asks
// before it runs again a job whose node went quiet. A job the job table no
// longer holds (Config.Jobs, JobsBytes) is not known to have ended.
func (h *Hub) JobEnded(ctx context.Context, id string) (bool, error) {
	if h.isClosing() {
		return false, ErrClosed
	}
	return ask(h, ctx, h.cfg.PublishTimeout, func(reply chan bool) any {
		return &jobEnded{id: id, reply: reply}
	})
}

// Unfinished returns the latest event of each job in the job table that
// has not ended (queued or started), oldest update first: what a single
// node that restarted after a crash ends as interrupted. Call it once
// NewHub has returned: the job table then holds what the log had.
func (h *Hub) Unfinished(ctx context.Context) ([]jobs.Event, error) {
	if h.isClosing() {
		return nil, ErrClosed
	}
	return ask(h, ctx, h.cfg.PublishTimeout, func(reply chan []jobs.Event) any {
		return &unfinished{reply: reply}
	})
}

// RecordStreamError counts a stream request refused before it started.
func (h *Hub) RecordStreamError(reason StreamError) {
	if c, ok := h.m.streamErrors[reason]; ok {
		c.Inc()
	}
}

// Ticket is a reserved place for one stream, from Admit. Pass it to Open,
// or Release it if the stream never opens. Release is idempotent.
type Ticket struct {
	a        *admission
	user     string
	released sync.Once
}

// Release gives the place back.
func (t *Ticket) Release() { t.released.Do(func() { t.a.release(t.user) }) }

// Admit reserves a place for one more stream of user, within MaxStreams and
// MaxStreamsPerUser. Call it before answering the request, so a refusal is
// an HTTP error rather than a stream that ends at once.
func (h *Hub) Admit(user string) (*Ticket, error) {
	if h.isClosing() {
		return nil, ErrClosed
	}
	if err := h.admission.admit(user); err != nil {
		return nil, err
	}
	return &Ticket{a: &h.admission, user: user}, nil
}

// StreamRequest is what a stream asked for, validated by the transport,
// for a user it has authorized (Authorize) just before.
type StreamRequest struct {
	User   string
	Filter jobs.Filter
	// Expires is when the user's session token expires; the stream ends
	// ReauthGrace (±10%) after it. Zero means the token does not expire.
	Expires time.Time
	// Head is written before anything else, once the hub has subscribed the
	// stream: the HTTP response head (and a first retry hint). Shared,
	// read-only.
	Head []byte
	// Resume is true when the client sent a Last-Event-ID; LastEventID is it.
	Resume      bool
	LastEventID uint64
	// Conflate makes the stream keep only each job's latest progress
	// (started) frame among those not written yet: a client that falls
	// behind gets every other status, in order, and each job's latest
	// progress, instead of being closed as slow.
	Conflate bool
}

// Open serves an SSE stream on conn. The hub writes req.Head once it has
// subscribed the stream, so a client that has read the head receives every
// event published after. From here the hub owns conn and t: it closes conn
// when the stream ends and releases t. Open does not block, except for a
// resume from an id the hub has not routed yet (see catchUp).
func (h *Hub) Open(conn net.Conn, t *Ticket, req StreamRequest) error {
	sub := &subscribe{resume: req.Resume, lastID: req.LastEventID}
	if req.Resume && req.LastEventID > h.routed.Load() {
		h.catchUp(sub)
	}
	s := newStream(h, conn, req.User, req.Head, t)
	s.mb.conflate = req.Conflate // before the actor starts: read under the mailbox's lock
	if !req.Filter.IsZero() {
		s.filter = &req.Filter // req is Open's own copy
	}
	sub.s = s
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		t.Release()
		conn.Close()
		return ErrClosed
	}
	h.goroutines.Add(2)
	// In the wheel before the actor exists, so its removal always comes
	// after, and under mu, so a Shutdown that has begun sees it.
	h.streams.add(s)
	h.mu.Unlock()

	h.m.streamsOpened.Inc()
	h.m.streamsActive.Inc()
	if d, ok := h.lifetime(req.Expires); ok {
		// Armed before the actor exists (a close it posts waits in the
		// mailbox), so the actor's stop always sees it.
		s.lifetime = time.AfterFunc(d, func() { s.closeGracefully(CloseLifetime, h.retryJitter()) })
	}
	// Watched before the actor exists, so its stop always comes after: a
	// hang-up meanwhile closes the stream, and Open then stops the actor.
	watched := h.hangups.Watch(&s.sock, s)
	h.spawnMu.Lock()
	h.spawning = s
	pid := h.system.Root.Spawn(h.connProps)
	h.spawning = nil
	h.spawnMu.Unlock()
	s.pid.Store(pid)
	if s.reason.Load() != 0 {
		h.system.Root.Stop(pid) // closed while spawning: close could not stop it
	}
	h.system.Root.Send(h.pid, sub)
	if !watched {
		go s.read()
	}
	return nil
}

// catchUp prepares a resume from an id the hub has not routed yet: the id
// is in the log but still on its way to the hub actor (in a cluster it may
// come from a hub that is ahead), or it is not an id of the log at all. It
// waits (a little) for the first; the hub actor answers the second "ahead".
func (h *Hub) catchUp(sub *subscribe) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, last, err := h.events.Bounds(ctx)
	cancel()
	if err == nil && sub.lastID > last {
		return // not an id of the log: the hub actor answers "ahead" at once
	}
	reply := make(chan struct{}, 1)
	h.system.Root.Send(h.pid, &caughtUp{id: sub.lastID, reply: reply})
	select {
	case <-reply:
	case <-time.After(h.cfg.AuthTimeout):
		// The hub lags: the hub actor answers "ahead".
	}
}

func (h *Hub) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}

// Ready reports whether the hub accepts streams and events: not shutting
// down, and its log takes appends.
func (h *Hub) Ready() bool {
	return !h.isClosing() && h.events.Ready()
}

// Shutdown stops admitting streams and events, asks every stream to close
// with a jittered "retry:" hint, waits for them until ctx is done, then
// closes what is left and stops the hub actor. It is idempotent; later
// calls wait for nothing.
func (h *Hub) Shutdown(ctx context.Context) error {
	var err error
	h.shutdown.Do(func() { err = h.doShutdown(ctx) })
	return err
}

func (h *Hub) doShutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	close(h.stopClocks)

	// Close the streams spread over the first half of the time we have, in
	// random order, each with a jittered retry hint: the clients come back
	// (here after a restart, or to another hub) spread out, not in one burst.
	streams := h.streams.all()
	rand.Shuffle(len(streams), func(i, j int) { streams[i], streams[j] = streams[j], streams[i] })
	var spread time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		spread = time.Until(deadline) / 2
	}
	start := time.Now()
	for i, s := range streams {
		if spread > 0 {
			due := start.Add(spread * time.Duration(i) / time.Duration(len(streams)))
			if wait := time.Until(due); wait > time.Millisecond {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
		s.closeGracefully(CloseShutdown, h.retryJitter())
	}

	done := make(chan struct{})
	go func() { h.goroutines.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("shutdown: streams still open: %w", ctx.Err()))
		for _, s := range h.streams.all() {
			s.close(CloseShutdown)
		}
		<-done // every socket is closed now: readers and actors end at once
	}
	h.stopTail() // nothing more for the hub actor to route
	if err := h.system.Root.StopFuture(h.pid).Wait(); err != nil {
		errs = append(errs, fmt.Errorf("stop hub actor: %w", err))
	}
	if h.ownLog != nil {
		if err := h.ownLog.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	h.loads.Wait() // the user actors have stopped and canceled their loads
	h.stopWorkers()
	return errors.Join(errs...)
}

// stopWorkers ends the goroutines the hub started besides its streams'.
func (h *Hub) stopWorkers() {
	h.hangups.Stop()
	h.pool.stop()
	h.control.stop()
}

// retryJitter is a retry hint for a forced close, in milliseconds: the
// normal delay plus a random part of ShutdownRetrySpread.
func (h *Hub) retryJitter() int64 {
	return h.cfg.Retry.Milliseconds() + rand.Int64N(h.cfg.ShutdownRetrySpread.Milliseconds()+1)
}

// admission counts streams against the hub's limits.
type admission struct {
	max, perUser int

	mu    sync.Mutex // guards total and users
	total int
	users map[string]int // streams by user, kept only when perUser bounds them
}

func (a *admission) admit(user string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.max > 0 && a.total >= a.max {
		return ErrTooManyStreams
	}
	if a.perUser > 0 && a.users[user] >= a.perUser {
		return ErrTooManyUserStreams
	}
	a.total++
	if a.perUser > 0 {
		a.users[user]++
	}
	return nil
}

func (a *admission) release(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.perUser > 0 {
		if a.users[user]--; a.users[user] <= 0 {
			delete(a.users, user)
		}
	}
}

// lifetime is how long a stream may live: StreamLifetime, or its token's
// expiry plus ReauthGrace, whichever ends first, each jittered ±10% so that
// streams opened together do not end together.
func (h *Hub) lifetime(expires time.Time) (time.Duration, bool) {
	jitter := func(d time.Duration) time.Duration {
		return d + time.Duration(rand.Int64N(int64(d/5)+1)) - d/10
	}
	var d time.Duration
	if h.cfg.StreamLifetime > 0 {
		d = jitter(h.cfg.StreamLifetime)
	}
	if !expires.IsZero() {
		untilExpiry := max(time.Until(expires), 0) + jitter(h.cfg.ReauthGrace)
		if d == 0 || untilExpiry < d {
			d = max(untilExpiry, time.Millisecond)
		}
	}
	return d, d > 0
}

// Authorize returns user's permissions, from their user actor's cache or
// from the permissions source, and keeps the user actor alive for a TTL.
// It returns ErrPermissionsUnavailable when the source fails and nothing it
// said is still trusted.
func (h *Hub) Authorize(ctx context.Context, user string) (*authz.Permissions, error) {
	if h.isClosing() {
		return nil, ErrClosed
	}
	// The user actor's load is bounded by AuthTimeout; a second more for the hops.
	r, err := ask(h, ctx, h.cfg.AuthTimeout+time.Second, func(reply chan authResult) any {
		return &authorize{user: user, reply: reply}
	})
	if err != nil {
		return nil, err
	}
	return r.perms, r.err
}

// Invalidate makes user's actor reload their permissions now, and returns
// once the result is in force: live streams then carry only what the new
// permissions allow, and end if they allow nothing. A user without an
// actor has nothing cached.
func (h *Hub) Invalidate(ctx context.Context, user string) error {
	if h.isClosing() {
		return ErrClosed
	}
	done := make(chan struct{}, 1)
	h.system.Root.Send(h.pid, &invalidate{user: user, reply: done})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrBusy, ctx.Err())
	}
}

// InvalidateAll makes every user actor reload its permissions, e.g. after
// the permissions file changed. It does not wait.
func (h *Hub) InvalidateAll() {
	if !h.isClosing() {
		h.system.Root.Send(h.pid, &invalidate{all: true})
	}
}

// RetryHint is the reconnection delay a stream announces when it starts.
func (h *Hub) RetryHint() time.Duration { return h.cfg.Retry }
