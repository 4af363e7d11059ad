package actors

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// hangups sees clients go away. A client sends nothing after its request,
// so all there is to learn from a stream's socket is that the client hung
// up (or sent something, which is read and dropped). One goroutine waits in
// epoll_wait on every stream's socket at once, where a reader goroutine per
// stream would block in Read: that spares each stream a goroutine (its g
// and a 2 KiB stack, about a third of what a stream costs) and each connect
// a goroutine start, and a hang-up is still seen at once.
//
// A socket joins the epoll set when its stream opens and leaves it by
// itself when it is closed (the hub never duplicates a stream's socket).
// Events carry the stream's id, never a pointer: an event still in flight
// for a stream that has ended finds no stream and is dropped.
//
// The Hub owns it: newHangups starts its goroutine and stop ends it.
type hangups struct {
	epfd int
	wake [2]int // a pipe whose read end is in the set with id 0: stop writes to it

	mu      sync.Mutex // guards streams and last
	streams map[uint64]*stream
	last    uint64

	done chan struct{}
}

func newHangups() (*hangups, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	w := &hangups{epfd: epfd, streams: map[uint64]*stream{}, done: make(chan struct{})}
	if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		w.release()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	go w.run()
	return w, nil
}

func (w *hangups) release() {
	syscall.Close(w.epfd)
	syscall.Close(w.wake[0])
	syscall.Close(w.wake[1])
}

// watch adds s's socket to the set and reports whether it did; a stream
// that is not watched needs a reader goroutine (stream.read).
func (w *hangups) watch(s *stream) bool {
	if w == nil || s.raw == nil {
		return false
	}
	w.mu.Lock()
	w.last++
	id := w.last
	w.streams[id] = s
	w.mu.Unlock()
	s.hupID = id
	var addErr error
	err := s.raw.Control(func(fd uintptr) {
		// Edge-triggered: each arrival is one event, and a socket is read
		// only when something arrived.
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		addErr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil && addErr == nil {
		return true
	}
	w.forget(s)
	s.hupID = 0
	return false
}

// forget drops a stream that has ended; its socket has left the set when
// it was closed.
func (w *hangups) forget(s *stream) {
	w.mu.Lock()
	delete(w.streams, s.hupID)
	w.mu.Unlock()
}

// epollET is EPOLLET as the uint32 that EpollEvent.Events holds (the
// syscall package declares it negative).
const epollET = 1 << 31

// run is the watching goroutine: it closes the stream of every socket that
// hung up, until stop.
func (w *hangups) run() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 128)
	var buf [512]byte
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return // only a bad epfd fails here: stop has released it
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return // stop
			}
			w.mu.Lock()
			s := w.streams[id]
			w.mu.Unlock()
			if s == nil {
				continue // ended meanwhile
			}
			if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 || !s.drain(buf[:]) {
				s.close(CloseClientGone)
			}
		}
	}
}

// drain reads and drops what a client sent, and reports whether its
// connection is still open. It reads a bounded amount, so a client that
// floods its socket cannot hold the watcher: what it sends next is a new
// event.
func (s *stream) drain(buf []byte) bool {
	open := false
	err := s.raw.Read(func(fd uintptr) bool {
		for range 8 {
			n, err := syscall.Read(int(fd), buf)
			switch {
			case n > 0, err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				open = true
			}
			return true // never wait in the netpoller
		}
		open = true
		return true
	})
	return err == nil && open
}

// stop ends the goroutine and releases the set. Call it once, after every
// stream has ended.
func (w *hangups) stop() {
	if w == nil {
		return
	}
	syscall.Write(w.wake[1], []byte{0})
	<-w.done
	w.release()
}
