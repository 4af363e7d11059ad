package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller reads the streams of a pool from one goroutine with epoll
// (poolSpec.Epoll), so that a delivery costs the client one read() and a
// share of an epoll_wait, instead of a goroutine's wake-up and two reads
// (the data, then EAGAIN) through Go's netpoller.
//
// Two things keep the loop from charging the server for the client. A
// polled socket is a duplicate descriptor taken out of Go's netpoller
// (whose epoll would otherwise be signalled too, and perhaps woken, on every
// arrival), and the loop never sleeps in epoll_wait: it polls without
// waiting and, when a poll came back short, sleeps pollPace. On loopback the
// sender's write() runs the receiver's TCP path, so a reader asleep in
// epoll_wait makes every delivery pay for a thread's wake-up; a reader that
// polls costs the sender only a place on epoll's ready list. The price is at
// most pollPace of latency.
//
// A stream's goroutine still dials, does the handshake and reconnects; once
// the stream is live it hands the socket here and waits on s.ended. The loop
// reads a socket only under the stream's mu while s.polled is set, and the
// descriptor is closed only under mu as polled is cleared, so a descriptor
// number reused after a close is never read.
type poller struct {
	p    *pool
	epfd int
}

// pollPace is how long the loop sleeps after a poll that did not fill its
// batch.
const pollPace = time.Millisecond

func newPoller(p *pool) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &poller{p: p, epfd: epfd}, nil
}

// close releases the epoll instance; call it after run has returned.
func (pl *poller) close() { unix.Close(pl.epfd) }

// run is the loop: it reads every socket epoll reports ready until the
// pool is finished. Sockets are edge-triggered, so epoll does not poll a
// socket again after reporting it; readStream reads until a read comes back
// short, and data that arrives after that read is a new edge.
func (pl *poller) run() {
	p := pl.p
	events := make([]unix.EpollEvent, 512)
	buf := make([]byte, 64<<10) // shared: each chunk is parsed before the next read
	for p.ctx.Err() == nil {
		n, err := unix.EpollWait(pl.epfd, events, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			p.fail(fmt.Errorf("epoll_wait: %w", err))
			return
		}
		for _, ev := range events[:n] {
			if i := int(ev.Fd); i >= 0 && i < len(p.streams) {
				pl.readStream(p.streams[i], buf)
			}
		}
		if n < len(events) {
			time.Sleep(pollPace)
		}
	}
}

// readStream reads what one socket holds and parses it; at the end of the
// connection it closes the socket and hands the stream back to its
// goroutine.
func (pl *poller) readStream(s *stream, buf []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.polled {
		return // a stale event: the stream has moved on
	}
	var n int
	var err error
	for {
		n, err = unix.Read(s.fd, buf)
		if n <= 0 {
			break
		}
		pl.p.feed(s, buf[:n], time.Now().UnixNano())
		if n < len(buf) {
			return // drained: what comes later is a new edge
		}
	}
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if err == nil {
		err = io.EOF // the server closed the stream
	}
	s.unpoll(err)
}

// unpoll closes a polled socket (which takes it out of epoll) and tells
// the stream's goroutine why. Call it with s.mu held and s.polled set.
func (s *stream) unpoll(why error) {
	unix.Close(s.fd)
	s.fd, s.polled = -1, false
	select {
	case s.ended <- why:
	default:
	}
}

// wait hands a live stream to the loop and returns when its connection
// has ended (or the pool finishes), with why.
func (pl *poller) wait(s *stream, conn net.Conn) error {
	p := pl.p
	s.pending = s.pending[:0]
	// What the handshake read past the response head is the first data.
	if n := s.raw.Buffered(); n > 0 {
		b, _ := s.raw.Peek(n)
		p.feed(s, b, time.Now().UnixNano())
		s.raw.Discard(n)
	}
	if s.ended == nil {
		s.ended = make(chan error, 1) // capacity 1: unpoll never blocks on it
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return p.read(s)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return p.read(s)
	}
	// Under mu, so that closeConn either ran before (the conn is closed and
	// Control fails) or runs after (and closes the duplicate).
	s.mu.Lock()
	fd := -1
	err = rc.Control(func(sfd uintptr) {
		var derr error
		if fd, derr = unix.Dup(int(sfd)); derr == nil {
			unix.CloseOnExec(fd)
		}
	})
	if err != nil || fd < 0 {
		s.mu.Unlock()
		return p.read(s)
	}
	conn.Close() // out of Go's netpoller: the duplicate keeps the socket open
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(s.idx - p.spec.FirstIndex)}
	if err = unix.EpollCtl(pl.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		s.mu.Unlock()
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	s.fd, s.polled = fd, true
	s.mu.Unlock()

	select {
	case err = <-s.ended:
	case <-p.ctx.Done():
		err = errStopped
	}
	s.mu.Lock()
	if s.polled {
		s.unpoll(err)
	}
	s.mu.Unlock()
	select { // nothing sends once polled is false: empty it for the next connection
	case <-s.ended:
	default:
	}
	return err
}
