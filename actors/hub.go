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

	connGuardian actor.SupervisorStrategy
	admission    admission

	mu      sync.Mutex // guards closing and live; held for map updates only
	closing bool
	live    map[*stream]struct{}
	// goroutines counts each stream's conn actor and reader goroutine (two
	// per stream) so Shutdown can wait for all of them.
	goroutines sync.WaitGroup
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
		live:      map[*stream]struct{}{},
	}
	// A conn actor that panics has a bug, not a state worth keeping: stop it,
	// which closes its stream; the client resumes.
	h.connGuardian = actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		h.log.Error("conn actor failed", "err", reason)
		return actor.StopDirective
	})
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
	h.live[s] = struct{}{}
	h.goroutines.Add(2)
	h.mu.Unlock()

	h.m.streamsOpened.Inc()
	h.m.streamsActive.Inc()
	props := actor.PropsFromProducer(func() actor.Actor { return &connActor{s: s} },
		actor.WithMailbox(func() actor.Mailbox { return s.mb }), actor.WithGuardian(h.connGuardian))
	s.pid = h.system.Root.Spawn(props)
	h.system.Root.Send(h.pid, &subscribe{s: s, resume: req.Resume, lastID: req.LastEventID})
	go s.read()
	return nil
}

// forget is called once by each stream's conn actor when it has stopped.
func (h *Hub) forget(s *stream) {
	h.mu.Lock()
	delete(h.live, s)
	h.mu.Unlock()
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
	streams := make([]*stream, 0, len(h.live))
	for s := range h.live {
		streams = append(streams, s)
	}
	h.mu.Unlock()

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
		h.mu.Lock()
		for s := range h.live {
			s.close(CloseShutdown)
		}
		h.mu.Unlock()
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
