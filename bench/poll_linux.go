package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// poller reads the streams of a pool from one goroutine with epoll
// (poolSpec.Epoll), so that a delivery costs the client one read() and a
// share of an epoll_wait, instead of a goroutine's wake-up and two reads
// (the data, then EAGAIN) through Go's netpoller. At 100,000 streams on
// loopback that cut the clients' CPU by a third, but the server was charged
// as much more (TCP work is charged to whoever runs when it happens) and
// latency was no better: see docs/benchmarks.md. It is an option, off by
// default.
//
// A stream's goroutine still dials, does the handshake and reconnects; once
// the stream is live it registers the socket here and waits on s.ended.
// The loop reads a socket only under the stream's mu while s.polled is set
// and through the conn's RawConn, so a socket closed meanwhile (storm,
// finish) is never read under a reused descriptor number.
type poller struct {
	p    *pool
	epfd int
}

func newPoller(p *pool) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &poller{p: p, epfd: epfd}, nil
}

// close releases the epoll instance; call it after run has returned.
func (pl *poller) close() { syscall.Close(pl.epfd) }

// run is the loop: it reads every socket epoll reports ready, once, until
// the pool is finished. A socket with more to read is reported again
// (level-triggered).
func (pl *poller) run() {
	p := pl.p
	events := make([]syscall.EpollEvent, 512)
	buf := make([]byte, 64<<10) // shared: each chunk is parsed before the next read
	for p.ctx.Err() == nil {
		n, err := syscall.EpollWait(pl.epfd, events, 100)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
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
	}
}

// readStream reads what one socket holds and parses it; at the end of the
// connection it hands the stream back to its goroutine.
func (pl *poller) readStream(s *stream, buf []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.polled {
		return // a stale event: the stream has moved on
	}
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		if n == 0 && rerr == nil || rerr != nil && rerr != syscall.EAGAIN {
			// Over: stop the level-triggered reports while the fd is valid.
			syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		}
		return true // never wait in Go's netpoller
	})
	if n > 0 {
		pl.p.feed(s, buf[:n], time.Now().UnixNano())
		return
	}
	if err == nil {
		err = rerr
	}
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return
	case err == nil:
		err = io.EOF
	}
	s.polled = false
	select {
	case s.ended <- err:
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
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return p.read(s)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return p.read(s)
	}
	if s.ended == nil {
		s.ended = make(chan error, 1) // capacity 1: the loop and closeConn never block on it
	}
	s.mu.Lock()
	s.rc, s.polled = rc, true
	s.mu.Unlock()
	var addErr error
	err = rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(s.idx - p.spec.FirstIndex)}
		addErr = syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = addErr
	}
	if err == nil {
		select {
		case err = <-s.ended:
		case <-p.ctx.Done():
			err = errStopped
		}
	}
	s.mu.Lock()
	s.rc, s.polled = nil, false
	s.mu.Unlock()
	rc.Control(func(fd uintptr) { syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) })
	select { // nothing sends once polled is false: empty it for the next connection
	case <-s.ended:
	default:
	}
	return err
}
