package actors

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/jobs"
)

// stream is one open SSE connection. Its fields are set by Hub.Open before
// any goroutine sees it and never change, except reason, which the first
// closer sets.
type stream struct {
	hub  *Hub
	conn net.Conn
	// raw is conn's descriptor when it has one (a TCP socket), and fd its
	// number, which the conn actor writes to without waiting (so without a
	// deadline to arm) and without Go's locks on it: the descriptor is
	// closed only by the conn actor itself, once it has stopped (see
	// hangUp). For other conns raw is nil and fd -1, and the actor writes
	// through conn with a short deadline.
	raw    syscall.RawConn
	fd     int
	user   string
	filter *jobs.Filter // nil: every event; shared, read-only
	head   []byte       // the response head, written first; shared and read-only
	ticket *Ticket
	mb     *mailbox
	// hupID is the stream's id among the hub's hangups, 0 when it is not
	// watched there (it has a reader goroutine instead).
	hupID uint64
	pid   atomic.Pointer[actor.PID] // set once spawned; see close
	slot  int                       // in the heartbeat wheel; guarded by the wheel's mutex
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

// newStream is a stream on conn for user, not yet open: Hub.Open opens it.
func newStream(h *Hub, conn net.Conn, user string, head []byte, t *Ticket) *stream {
	s := &stream{hub: h, conn: conn, user: user, head: head, ticket: t, fd: -1}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			if raw.Control(func(fd uintptr) { s.fd = int(fd) }) == nil {
				s.raw = raw
			} else {
				s.fd = -1
			}
		}
	}
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
	s.hangUp()
	// A stream closed while Open is still spawning its actor has no pid yet:
	// Open, which stores the pid and then checks reason, stops it instead.
	if pid := s.pid.Load(); pid != nil {
		s.hub.system.Root.Stop(pid)
	}
}

// hangUp ends the connection at once. A socket is shut down, not closed:
// that fails a write in progress, wakes whoever waits on it and sends the
// client its FIN, but keeps the descriptor number taken, so that the conn
// actor, which writes to the number directly, can never write to another
// connection that reused it. The actor closes it when it stops. Other
// conns are closed here.
func (s *stream) hangUp() {
	if s.fd < 0 {
		s.conn.Close()
		return
	}
	err := s.raw.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_RDWR) })
	if err != nil {
		s.conn.Close() // already closed: nothing to keep
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

// read is the stream's reader goroutine, where the hub's hangups cannot
// watch it. A client sends nothing after its request, so the only thing to
// learn here is that it went away, and a blocked Read learns that at once.
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

// poolWriteBudget is how long a write on the worker pool may wait for a
// full socket when the conn has no descriptor to write to without waiting
// (not a TCP socket: tests' pipes), before the stream is moved to a
// goroutine of its own.
const poolWriteBudget = 2 * time.Millisecond

// maxCoalesce bounds how many frames one write may gather, so a stream whose
// mailbox never empties still writes regularly.
const maxCoalesce = 64

// connActor owns a stream's writing side: what is pending and the socket's
// write deadline.
type connActor struct {
	s         *stream
	pending   net.Buffers // frames to write, shared and read-only
	rest      net.Buffers // scratch for writeWaiting
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

// flush writes everything pending in one write or writev. On the worker
// pool it does not wait: what a full socket did not take stays pending, and
// the stream goes on on a goroutine of its own (the mailbox moves it) that
// writes the rest under the full write timeout.
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
	switch {
	case congested:
		err = c.writeWaiting(s.hub.cfg.WriteTimeout)
	case s.fd >= 0:
		err = c.writeNow()
	default:
		// No descriptor to write to without waiting: wait only a moment.
		err = c.writeWaiting(poolWriteBudget)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errWouldBlock
		}
	}
	if err == errWouldBlock && s.reason.Load() == 0 {
		// The socket is full: keep what is left, and go on with the full
		// write timeout on a goroutine of our own (the mailbox moves us).
		s.mb.congested.Store(true)
		s.mb.postAlways(&resume{})
		return
	}
	if congested && err == nil {
		// Drained: back to the pool, which writes without a deadline. One
		// left on the socket would fail the pool's first write after it.
		err = s.conn.SetWriteDeadline(time.Time{})
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
	s.wrote.Store(true)
	clear(c.pending)
	if cap(c.pending) > maxCoalesce {
		c.pending = nil // a replay is over: give its memory back
	} else {
		c.pending = c.pending[:0]
	}
	c.frames = 0
}

// errWouldBlock is a write on the pool that the socket could not take
// whole.
var errWouldBlock = errors.New("socket full")

// maxIovec bounds the buffers of one writev.
const maxIovec = 64

// writeNow writes what the socket takes of c.pending now, without waiting:
// a write for one buffer, writev for more. It leaves what was not written
// in c.pending and returns errWouldBlock if anything was.
func (c *connActor) writeNow() error {
	fd := uintptr(c.s.fd)
	for len(c.pending) > 0 {
		var r1, want uintptr
		var errno syscall.Errno
		if len(c.pending) == 1 {
			// One frame is the common case: a plain write spares the
			// socket the iovec array that writev keeps per connection.
			b := c.pending[0]
			want = uintptr(len(b))
			r1, _, errno = syscall.Syscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		} else {
			// Declared here, so the common single write does not zero it.
			var iov [maxIovec]syscall.Iovec
			n := 0
			for _, b := range c.pending[:min(len(c.pending), maxIovec)] {
				iov[n].Base = unsafe.SliceData(b)
				iov[n].SetLen(len(b))
				want += uintptr(len(b))
				n++
			}
			r1, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		}
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return errWouldBlock
		default:
			return errno
		}
		c.consume(int(r1))
		if r1 < want {
			return errWouldBlock // a short write: the socket is full
		}
	}
	return nil
}

// consume drops the first n written bytes from c.pending.
func (c *connActor) consume(n int) {
	i := 0
	for ; i < len(c.pending) && n >= len(c.pending[i]); i++ {
		n -= len(c.pending[i])
	}
	if i < len(c.pending) && n > 0 {
		c.pending[i] = c.pending[i][n:]
		n = 0
	}
	// Shift in place: the array stays the connActor's.
	k := copy(c.pending, c.pending[i:])
	clear(c.pending[k:])
	c.pending = c.pending[:k]
}

// writeWaiting writes all of c.pending, waiting for the socket up to
// timeout; it leaves what was not written in c.pending.
func (c *connActor) writeWaiting(timeout time.Duration) error {
	s := c.s
	if err := s.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	// c.rest is a field, not a local, so that WriteTo's pointer receiver
	// allocates nothing; WriteTo consumes it down to what is left.
	c.rest = c.pending
	_, err := c.rest.WriteTo(s.conn)
	k := copy(c.pending, c.rest)
	clear(c.pending[k:])
	c.pending = c.pending[:k]
	c.rest = nil
	return err
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
	if s.hupID != 0 {
		h.hangups.forget(s)
		h.goroutines.Done() // what the reader goroutine's Done would be
	}
	s.conn.Close() // after the actor's last write: see hangUp
	if user := s.userPID.Load(); user != nil {
		h.system.Root.Send(user, &detach{s: s})
	}
	h.goroutines.Done()
}
