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

	"github.com/finexbot/eventhub/jobs"
)

// stream is one open SSE connection. Its fields are set by Hub.Open before
// any goroutine sees it and never change, except reason, which the first
// closer sets.
type stream struct {
	hub    *Hub
	conn   net.Conn
	user   string
	filter *jobs.Filter // nil: every event; shared, read-only
	head   []byte       // the response head, written first; shared and read-only
	ticket *Ticket
	mb     *mailbox
	pid    atomic.Pointer[actor.PID] // set once spawned; see close
	slot   int                       // in the heartbeat wheel; guarded by the wheel's mutex
	// lifetime ends the stream at StreamLifetime; nil when unlimited.
	lifetime *time.Timer

	reason atomic.Int32 // CloseReason; 0 while open
	// wrote is set by the conn actor after each write and cleared by the
	// heartbeat wheel: a stream that wrote since the last visit needs no ping.
	wrote atomic.Bool
	// userPID is the user actor the hub attached the stream to, once it has;
	// the conn actor tells it when the stream is gone.
	userPID atomic.Pointer[actor.PID]
}

// close ends the stream for reason r, once: whoever calls first (the reader
// seeing EOF, a full mailbox, a failed write, shutdown) names the reason.
// It never blocks: closing the socket unblocks a write in progress and the
// reader, and the conn actor stops and accounts for the stream.
func (s *stream) close(r CloseReason) {
	if !s.reason.CompareAndSwap(0, int32(r)) {
		return
	}
	s.mb.close()
	s.conn.Close()
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

// overflow is the mailbox's refusal: the client is not reading fast enough.
// Closing it is the decision, not an accident: it resumes with Last-Event-ID.
func (s *stream) overflow() {
	s.hub.m.mailboxOverflow.Inc()
	s.close(CloseSlow)
}

// read is the stream's reader goroutine. A client sends nothing after its
// request, so the only thing to learn here is that it went away, and a
// blocked Read learns that at once.
func (s *stream) read() {
	defer s.hub.goroutines.Done()
	var buf [1]byte // the client sends nothing: the Read is only there to see EOF
	for {
		if _, err := s.conn.Read(buf[:]); err != nil {
			s.close(CloseClientGone)
			return
		}
	}
}

// poolWriteBudget is how long a write may wait for a full socket on the
// worker pool before the stream is moved to a goroutine of its own.
const poolWriteBudget = 2 * time.Millisecond

// maxCoalesce bounds how many frames one write may gather, so a stream whose
// mailbox never empties still writes regularly.
const maxCoalesce = 64

// connActor owns a stream's writing side: what is pending and the socket's
// write deadline.
type connActor struct {
	s         *stream
	pending   net.Buffers // frames to write, shared and read-only
	rest      net.Buffers // scratch for flush
	frames    int         // event frames in pending
	oldest    int64       // ingest time of the oldest live frame in pending, unix ns
	delivered int         // event frames written, for the close log
	opened    int64       // unix ns
	attached  bool        // the user actor has taken the stream: its replay came
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
		// subscribed: it gets every event published from then on.
		c.attached = true
		c.pending = append(c.pending, msg.frames...)
		c.frames += len(msg.frames)
		c.flush()
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

// flush writes everything pending in one writev, under the write deadline.
func (c *connActor) flush() {
	s := c.s
	if !c.headDone && s.head != nil && s.reason.Load() == 0 {
		c.pending = slices.Insert(c.pending, 0, s.head)
	}
	c.headDone = true
	if len(c.pending) == 0 || s.reason.Load() != 0 {
		return
	}
	// On the pool a write may wait only a moment for a full socket; a
	// stream that is congested has a goroutine of its own and its full
	// write timeout.
	congested := s.mb.congested.Load()
	timeout := poolWriteBudget
	if congested {
		timeout = s.hub.cfg.WriteTimeout
	}
	err := s.conn.SetWriteDeadline(time.Now().Add(timeout))
	// c.rest ends up holding what the socket did not take. It is a field,
	// not a local, so that WriteTo's pointer receiver allocates nothing.
	c.rest = c.rest[:0]
	if err == nil {
		if len(c.pending) == 1 {
			// One frame is the common case: a plain write spares the
			// socket the iovec array that writev keeps per connection.
			var n int
			n, err = s.conn.Write(c.pending[0])
			if n < len(c.pending[0]) {
				c.rest = append(c.rest, c.pending[0][n:])
			}
		} else {
			c.rest = c.pending // WriteTo consumes its receiver down to what is left
			_, err = c.rest.WriteTo(s.conn)
		}
	}
	rest := c.rest
	c.rest = nil // it may share pending's array
	if err != nil && !congested && errors.Is(err, os.ErrDeadlineExceeded) && s.reason.Load() == 0 {
		// The socket is full: keep what is left, and go on with the full
		// write timeout on a goroutine of our own (the mailbox moves us).
		c.pending = append(c.pending[:0], rest...)
		s.mb.congested.Store(true)
		s.mb.postAlways(&resume{})
		return
	}
	if congested && err == nil {
		s.mb.congested.Store(false) // drained: back to the pool
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
	if user := s.userPID.Load(); user != nil {
		h.system.Root.Send(user, &detach{s: s})
	}
	h.goroutines.Done()
}
