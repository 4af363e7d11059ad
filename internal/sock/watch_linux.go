package sock

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Watcher sees clients hang up. One goroutine waits in epoll_wait on every
// watched socket at once, where a reader goroutine per connection would
// block in Read: that spares each connection a goroutine (its g and a 2 KiB
// stack, about a third of what a hub's stream costs) and each connect a
// goroutine start, and a hang-up is still seen at once.
//
// A socket joins the epoll set in Watch and leaves it by itself when it is
// closed (nothing here duplicates a descriptor). Events carry the
// connection's id, never a pointer: an event still in flight for a
// connection that has been unwatched finds nothing and is dropped.
//
// Its owner starts it with NewWatcher and ends it with Stop. Watch and
// Unwatch may be called concurrently, from any goroutine.
type Watcher[T any] struct {
	hungUp func(T)
	epfd   int
	wake   [2]int // a pipe whose read end is in the set with id 0: Stop writes to it

	mu    sync.Mutex // guards conns and last
	conns map[uint64]watched[T]
	last  uint64

	done chan struct{}
}

// watched is a connection in the set and what its owner is told about.
type watched[T any] struct {
	c *Conn
	v T
}

// NewWatcher starts a Watcher that calls hungUp(v) when the client of a
// connection watched with v hangs up. hungUp runs on the Watcher's
// goroutine, so it must not block; it may run for a v more than once, and
// once more just after Unwatch, so it must also be idempotent. It fails
// only when epoll cannot be set up; the caller then reads every
// connection itself (Conn.AwaitHangUp).
func NewWatcher[T any](hungUp func(T)) (*Watcher[T], error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	w := &Watcher[T]{hungUp: hungUp, epfd: epfd, conns: map[uint64]watched[T]{}, done: make(chan struct{})}
	if err := unix.Pipe2(w.wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		w.release()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	go w.run()
	return w, nil
}

func (w *Watcher[T]) release() {
	unix.Close(w.epfd)
	unix.Close(w.wake[0])
	unix.Close(w.wake[1])
}

// Watch adds c's socket to the set, to report a hang-up as v, and reports
// whether it did. A connection that is not watched (not a socket, or a nil
// Watcher) needs a reader: Conn.AwaitHangUp on a goroutine of the caller's.
// c must stay where it is until Unwatch.
func (w *Watcher[T]) Watch(c *Conn, v T) bool {
	if w == nil || c.sys.raw == nil {
		return false
	}
	w.mu.Lock()
	w.last++
	id := w.last
	w.conns[id] = watched[T]{c: c, v: v}
	w.mu.Unlock()
	c.watchID = id
	var addErr error
	err := c.sys.raw.Control(func(fd uintptr) {
		// Edge-triggered: each arrival is one event, and a socket is read
		// only when something arrived.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		addErr = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil && addErr == nil {
		return true
	}
	w.Unwatch(c)
	return false
}

// Unwatch drops c, which Watch added, and reports whether it was watched.
// Its socket leaves the epoll set by itself when it is closed (before or
// after Unwatch). Call it once the connection has ended.
func (w *Watcher[T]) Unwatch(c *Conn) bool {
	if w == nil || c.watchID == 0 {
		return false
	}
	w.mu.Lock()
	delete(w.conns, c.watchID)
	w.mu.Unlock()
	c.watchID = 0
	return true
}

// run is the watching goroutine: it reports every socket that hung up,
// until Stop.
func (w *Watcher[T]) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 128)
	var buf [512]byte
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // only a bad epfd fails here: Stop has released it
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return // Stop
			}
			w.mu.Lock()
			e, ok := w.conns[id]
			w.mu.Unlock()
			if !ok {
				continue // unwatched meanwhile
			}
			if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 || !drain(e.c, buf[:]) {
				w.hungUp(e.v)
			}
		}
	}
}

// drain reads and drops what a client sent, and reports whether its
// connection is still open. It reads a bounded amount, so a client that
// floods its socket cannot hold the watcher: what it sends next is a new
// event. It reads through the RawConn, which holds the descriptor for the
// length of the read, so a connection closed meanwhile fails here rather
// than reading from a descriptor that was reused.
func drain(c *Conn, buf []byte) bool {
	open := false
	err := c.sys.raw.Read(func(fd uintptr) bool {
		for range 8 {
			n, err := unix.Read(int(fd), buf)
			switch {
			case n > 0, err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				open = true
			}
			return true // never wait in the netpoller
		}
		open = true
		return true
	})
	return err == nil && open
}

// Stop ends the goroutine and releases the set. Call it once, after every
// watched connection has ended; Stop of a nil Watcher does nothing.
func (w *Watcher[T]) Stop() {
	if w == nil {
		return
	}
	unix.Write(w.wake[1], []byte{0})
	<-w.done
	w.release()
}
