package actors

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/internal/sock"
	"github.com/finexbot/eventhub/jobs"
)

// stream is one open SSE connection. Its fields are set by Hub.Open before
// any goroutine sees it and never change, except reason, which the first
// closer sets.
type stream struct {
	// The fields a fan-out and a write touch come first, in the order they
	// are touched, and a stream holds its mailbox and its actor (conn)
	// rather than pointing to them: delivering to a stream, then writing to
	// it, misses the cache on one object rather than on four.
	filter *jobs.Filter // nil: every event; shared, read-only
	mb     mailbox
	conn   connActor
	// sock is the connection. The conn actor writes to it, and closes it
	// once it has stopped; anyone may shut it down (see close). The hub's
	// hangups watch it, or a reader goroutine (read) does.
	sock   sock.Conn
	reason atomic.Int32 // CloseReason; 0 while open
	// wrote is set by the conn actor after each write and cleared by the
	// heartbeat wheel: a stream that wrote since the last visit needs no ping.
	wrote atomic.Bool
	hub   *Hub
	head  []byte // the response head, written first; shared and read-only

	user   string
	ticket *Ticket
	pid    atomic.Pointer[actor.PID] // set once spawned; see close
	slot   int                       // in the heartbeat wheel; guarded by the wheel's mutex
	// lifetime ends the stream at StreamLifetime; nil when unlimited.
	lifetime *time.Timer
	// cancelRead cancels the read of the log for the stream's resume while
	// one runs (see hubActor.backfill): a closed stream stops its read.
	cancelRead atomic.Pointer[context.CancelFunc]
}

// newStream is a stream on conn for user, not yet open: Hub.Open opens it.
func newStream(h *Hub, conn net.Conn, user string, head []byte, t *Ticket) *stream {
	s := &stream{hub: h, sock: sock.Wrap(conn), user: user, head: head, ticket: t}
	s.mb.init(h.cfg.Mailbox, h.cfg.MailboxBytes, s.overflow)
	s.conn.s = s
	return s
}

// close ends the stream for reason r, once: whoever calls first (the
// hang-up watcher, a full mailbox, a failed write, shutdown) names the
// reason. It never blocks: hanging up unblocks a write in progress and the
// reader, and the conn actor stops and accounts for the stream.
func (s *stream) close(r CloseReason) {
	if !s.reason.CompareAndSwap(0, int32(r)) {
		return
	}
	s.mb.close()
	if cancel := s.cancelRead.Load(); cancel != nil {
		(*cancel)()
	}
	// Shut down, not closed: that fails a write in progress, wakes the
	// reader and sends the client its FIN, but the conn actor, which may
	// be writing to the descriptor directly, closes it when it stops.
	s.sock.Shutdown()
	// A stream closed while Open is still spawning its actor has no pid yet:
	// Open, which stores the pid and then checks reason, stops it instead.
	if pid := s.pid.Load(); pid != nil {
		s.hub.system.Root.Stop(pid)
	}
}

// closeGracefully asks the conn actor to write what is pending, then a
// retry hint, then close.
func (s *stream) closeGracefully(r CloseReason, retryMs int64) {
	if !s.mb.postAlways(&closeStream{reason: r, retryMs: retryMs}) {
		s.close(r) // already closing
	}
}

// overflow is the mailbox's refusal, over its frames or (bytes) its bytes:
// the client is not reading fast enough. Closing it is the decision, not an
// accident: it resumes with Last-Event-ID.
func (s *stream) overflow(bytes bool) {
	s.hub.m.mailboxOverflow.Inc()
	if bytes {
		s.hub.m.mailboxOverflowBytes.Inc()
	}
	s.close(CloseSlow)
}

// read is the stream's reader goroutine, where the hub's hangups cannot
// watch it: it closes the stream when the client goes away.
func (s *stream) read() {
	defer s.hub.goroutines.Done()
	s.sock.AwaitHangUp()
	s.close(CloseClientGone)
}

// hangups sees the hub's streams' clients hang up (see sock.Watcher).
type hangups = sock.Watcher[*stream]

// newHangups starts the hub's hangups. It fails only where epoll could not
// be set up; every stream then has a reader goroutine (read).
func newHangups() (*hangups, error) {
	// A func, not a method value: one for every stream, none allocated.
	return sock.NewWatcher(func(s *stream) { s.close(CloseClientGone) })
}

// maxCoalesce bounds how many frames one write may gather, so a stream whose
// mailbox never empties still writes regularly.
const maxCoalesce = 64

// connActor owns a stream's writing side: what is pending, and the
// writing half of s.sock. It lives in its stream (stream.conn).
type connActor struct {
	s         *stream
	pending   net.Buffers // frames to write, shared and read-only
	frames    int         // event frames in pending
	oldest    int64       // ingest time of the oldest live frame in pending, unix ns
	delivered int         // event frames written, for the close log
	opened    int64       // unix ns
	attached  bool        // the hub has attached the stream: its replay came
	headDone  bool        // the response head is written
}

func (c *connActor) Receive(ctx actor.Context) {
	s := c.s
	switch msg := ctx.Message().(type) {
	case *frame:
		if c.oldest == 0 {
			c.oldest = msg.at
		}
		c.pending = append(c.pending, msg.bytes)
		c.frames++
	case *replay:
		// Every attach brings one, empty or not: the response head goes out
		// with it, so a client that has the head has a stream the hub has
		// attached: it gets every event published from then on.
		c.attached = true
		c.pending = append(c.pending, msg.frames...)
		c.frames += len(msg.frames)
		c.flush()
	case *revoked:
		// Event frames taken from the mailbox and not written yet were
		// checked against the permissions before: they are not written.
		// The stream closes instead; the client resumes, and its replay is
		// checked against the new ones.
		if c.frames > 0 {
			s.close(CloseRevoked)
			return
		}
	case *resume:
		c.flush() // what a congested socket did not take, now with the full timeout
	case *heartbeat:
		if c.attached && len(c.pending) == 0 {
			c.pending = append(c.pending, pingFrame)
		}
	case *closeStream:
		c.pending = append(c.pending, appendRetry(nil, msg.retryMs))
		c.flush()
		s.close(msg.reason)
		return
	case *actor.Started:
		c.opened = time.Now().UnixNano()
		if log := s.hub.log; log.Enabled(context.Background(), slog.LevelInfo) {
			log.LogAttrs(context.Background(), slog.LevelInfo, "stream opened",
				slog.String("user", s.user), slog.String("conn", ctx.Self().Id))
		}
	case *actor.Stopped:
		c.stopped(ctx)
		return
	}
	if len(c.pending) > 0 && (s.mb.pending() == 0 || len(c.pending) >= maxCoalesce) {
		c.flush()
	}
}

// flush writes everything pending in one write or writev. On the worker
// pool it does not wait (sock.Conn.TryWrite): what a full socket did not
// take stays pending, and the stream goes on on a goroutine of its own (the
// mailbox moves it) that writes the rest under the full write timeout.
func (c *connActor) flush() {
	s := c.s
	if !c.headDone && s.head != nil && s.reason.Load() == 0 {
		c.pending = slices.Insert(c.pending, 0, s.head)
	}
	c.headDone = true
	if len(c.pending) == 0 || s.reason.Load() != 0 {
		return
	}
	congested := s.mb.congested.Load()
	var err error
	if congested {
		err = s.sock.Write(&c.pending, s.hub.cfg.WriteTimeout)
	} else {
		err = s.sock.TryWrite(&c.pending)
	}
	if err == sock.ErrWouldBlock && s.reason.Load() == 0 {
		// The socket is full: keep what is left, and go on with the full
		// write timeout on a goroutine of our own (the mailbox moves us).
		s.mb.congested.Store(true)
		s.mb.postAlways(&resume{})
		return
	}
	if congested && err == nil {
		// Drained (Write leaves no deadline behind): back to the pool,
		// which writes without waiting.
		s.mb.congested.Store(false)
	}
	if err != nil {
		c.writeFailed(err)
	} else {
		s.hub.m.delivered.Add(float64(c.frames))
		c.delivered += c.frames
		if c.oldest != 0 {
			// Once per write, for its oldest live event: replays are not
			// deliveries late, and one sample per write keeps this cheap.
			s.hub.m.deliveryLatency.Observe(float64(time.Now().UnixNano()-c.oldest) / 1e9)
		}
	}
	c.oldest = 0
	if s.mb.conflate {
		if n := s.mb.takeConflated(); n > 0 {
			s.hub.m.framesConflated.Add(float64(n))
		}
	}
	s.wrote.Store(true)
	clear(c.pending)
	if cap(c.pending) > maxCoalesce {
		c.pending = nil // a replay is over: give its memory back
	} else {
		c.pending = c.pending[:0]
	}
	c.frames = 0
}

func (c *connActor) writeFailed(err error) {
	s := c.s
	if s.reason.Load() != 0 {
		return // closed meanwhile: the write failed because of that
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.hub.RecordStreamError(StreamWriteTimeout)
		s.close(CloseWriteTimeout)
		return
	}
	s.hub.RecordStreamError(StreamWriteError)
	s.close(CloseWriteError)
}

// stopped accounts for the stream once its actor is gone.
func (c *connActor) stopped(ctx actor.Context) {
	s := c.s
	s.close(CloseError) // a no-op unless the actor stopped on its own (a panic)
	if log := s.hub.log; log.Enabled(context.Background(), slog.LevelInfo) {
		log.LogAttrs(context.Background(), slog.LevelInfo, "stream closed",
			slog.String("user", s.user), slog.String("conn", ctx.Self().Id),
			slog.String("reason", CloseReason(s.reason.Load()).String()),
			slog.Float64("duration_s", float64(time.Now().UnixNano()-c.opened)/1e9), slog.Int("events", c.delivered))
	}
	if s.lifetime != nil {
		s.lifetime.Stop()
	}
	h := s.hub
	h.m.streamsClosed[s.reason.Load()].Inc()
	h.m.streamsActive.Dec()
	s.ticket.Release()
	h.streams.remove(s)
	if h.hangups.Unwatch(&s.sock) {
		h.goroutines.Done() // what the reader goroutine's Done would be
	}
	s.sock.Close()                           // after the actor's last write: see close
	h.system.Root.Send(h.pid, &detach{s: s}) // the hub stops routing to it
	h.goroutines.Done()
}
