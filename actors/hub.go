package actors

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/jobs"
)

// Hub is the handle on a running hub actor and the streams it serves. Its
// methods may be called from any goroutine.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
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
	spawnMu   sync.Mutex
	spawning  *stream

	mu      sync.Mutex // guards closing
	closing bool
	// goroutines counts each stream's conn actor and reader goroutine (two
	// per stream), and the heartbeat wheel, so Shutdown can wait for all.
	goroutines sync.WaitGroup
	stopWheel  chan struct{}
	shutdown   sync.Once
}

// NewHub starts a hub actor on system. The caller owns system and shuts it
// down after Hub.Shutdown.
func NewHub(system *actor.ActorSystem, cfg Config) (*Hub, error) {
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	h := &Hub{
		cfg:       cfg,
		log:       cfg.Logger,
		m:         m,
		system:    system,
		admission: admission{max: cfg.MaxStreams, perUser: cfg.MaxStreamsPerUser, users: map[string]int{}},
		ping:      &heartbeat{},
		stopWheel: make(chan struct{}),
	}
	// A conn actor that panics has a bug, not a state worth keeping: stop it,
	// which closes its stream; the client resumes. Never restart it: its
	// producers only work inside Open.
	connGuardian := actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		h.log.Error("conn actor failed", "err", reason)
		return actor.StopDirective
	})
	h.connProps = actor.PropsFromProducer(func() actor.Actor { return &connActor{s: h.spawning} },
		actor.WithMailbox(func() actor.Mailbox { return h.spawning.mb }), actor.WithGuardian(connGuardian))
	// The hub and the user actors resume after a panic: restarting them would
	// lose the id counter, the history or a user's streams. The message that
	// failed is dropped and logged.
	resume := actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		h.log.Error("hub actor failed", "err", reason)
		return actor.ResumeDirective
	})
	props := actor.PropsFromProducer(func() actor.Actor { return newHubActor(h) },
		actor.WithGuardian(resume), actor.WithSupervisor(resume))
	h.pid, err = system.Root.SpawnNamed(props, "hub")
	if err != nil {
		return nil, fmt.Errorf("spawn hub: %w", err)
	}
	if cfg.Heartbeat > 0 {
		h.goroutines.Go(func() { h.streams.run(cfg.Heartbeat, h.ping, h.stopWheel) })
	}
	return h, nil
}

// PID is the hub actor, for in-process workers: send it *jobs.Event values
// built and validated in process.
func (h *Hub) PID() *actor.PID { return h.pid }

// Publish ingests validated events, all or none, and returns their ids in
// order. The hub owns events after the call. It returns ErrClosed during
// shutdown and ErrBusy if the hub does not answer in time (the events may
// still be published).
func (h *Hub) Publish(ctx context.Context, events []jobs.Event) ([]uint64, error) {
	if h.isClosing() {
		return nil, ErrClosed
	}
	reply := make(chan []uint64, 1)
	h.system.Root.Send(h.pid, &publish{events: events, reply: reply})
	t := time.NewTimer(h.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case ids := <-reply:
		return ids, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrBusy, ctx.Err())
	case <-t.C:
		return nil, ErrBusy
	}
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

// StreamRequest is what a stream asked for, validated by the transport.
type StreamRequest struct {
	User   string
	Perms  *authz.Permissions
	Filter jobs.Filter
	// Resume is true when the client sent a Last-Event-ID; LastEventID is it.
	Resume      bool
	LastEventID uint64
}

// Open serves an SSE stream on conn, whose response head the caller has
// written. From here the hub owns conn and t: it closes conn when the stream
// ends and releases t. Open does not block.
func (h *Hub) Open(conn net.Conn, t *Ticket, req StreamRequest) error {
	s := &stream{hub: h, conn: conn, user: req.User, perms: req.Perms, filter: req.Filter, ticket: t}
	s.mb = newMailbox(h.cfg.Mailbox, s.overflow)
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		t.Release()
		conn.Close()
		return ErrClosed
	}
	h.goroutines.Add(2)
	h.mu.Unlock()

	h.m.streamsOpened.Inc()
	h.m.streamsActive.Inc()
	h.streams.add(s) // before the actor exists, so its removal always comes after
	h.spawnMu.Lock()
	h.spawning = s
	s.pid = h.system.Root.Spawn(h.connProps)
	h.spawning = nil
	h.spawnMu.Unlock()
	h.system.Root.Send(h.pid, &subscribe{s: s, resume: req.Resume, lastID: req.LastEventID})
	go s.read()
	return nil
}

func (h *Hub) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}

// Ready reports whether the hub accepts streams and events.
func (h *Hub) Ready() bool { return !h.isClosing() }

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
	close(h.stopWheel)
	streams := h.streams.all()

	spread := h.cfg.ShutdownRetrySpread.Milliseconds()
	base := h.cfg.Retry.Milliseconds()
	for _, s := range streams {
		s.closeGracefully(CloseShutdown, base+rand.Int64N(spread+1))
	}
	done := make(chan struct{})
	go func() { h.goroutines.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: streams still open: %w", ctx.Err())
		for _, s := range h.streams.all() {
			s.close(CloseShutdown)
		}
		<-done // every socket is closed now: readers and actors end at once
	}
	if stopErr := h.system.Root.StopFuture(h.pid).Wait(); stopErr != nil && err == nil {
		err = fmt.Errorf("stop hub actor: %w", stopErr)
	}
	return err
}

// admission counts streams against the hub's limits.
type admission struct {
	max, perUser int

	mu    sync.Mutex // guards total and users
	total int
	users map[string]int
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
	a.users[user]++
	return nil
}

func (a *admission) release(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.users[user]--; a.users[user] <= 0 {
		delete(a.users, user)
	}
}

// RetryHint is the reconnection delay a stream announces when it starts.
func (h *Hub) RetryHint() time.Duration { return h.cfg.Retry }
