package sock

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysConn is a TCP socket's descriptor, which TryWrite writes to without
// waiting (so without a deadline to arm) and without Go's locks on it: the
// descriptor is closed only by the writer itself, after its last write
// (see Conn.Shutdown). For other connections raw is nil and fd -1.
type sysConn struct {
	raw syscall.RawConn
	fd  int
}

func newSysConn(nc net.Conn) sysConn {
	s := sysConn{fd: -1}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return s
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return s
	}
	if raw.Control(func(fd uintptr) { s.fd = int(fd) }) != nil {
		s.fd = -1
		return s
	}
	s.raw = raw
	return s
}

func (s *sysConn) direct() bool { return s.fd >= 0 }

// tryWrite writes what the socket takes of *bufs now, without waiting: a
// write for one buffer, writev for more.
func (s *sysConn) tryWrite(bufs *net.Buffers) error {
	for len(*bufs) > 0 {
		var n, want int
		var err error
		if len(*bufs) == 1 {
			// One frame is the common case: a plain write spares the
			// socket the iovec array that writev copies in.
			b := (*bufs)[0]
			want = len(b)
			n, err = unix.Write(s.fd, b)
		} else {
			n, want, err = writev(s.fd, *bufs)
		}
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return ErrWouldBlock
		default:
			return err
		}
		consume(bufs, n)
		if n < want {
			return ErrWouldBlock // a short write: the socket is full
		}
	}
	return nil
}

// maxIovec bounds the buffers of one writev.
const maxIovec = 64

// writev writes up to maxIovec of bufs with one writev and returns how many
// bytes it wrote of the want it tried. It is not unix.Writev, which
// allocates its iovec array beyond 8 buffers: this one lives on the stack,
// and in this function rather than in tryWrite so that the common single
// write does not zero 1 KiB.
func writev(fd int, bufs [][]byte) (n, want int, err error) {
	var iov [maxIovec]unix.Iovec
	k := 0
	for _, b := range bufs[:min(len(bufs), maxIovec)] {
		iov[k].Base = unsafe.SliceData(b)
		iov[k].SetLen(len(b))
		want += len(b)
		k++
	}
	r, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if errno != 0 {
		return 0, want, errno
	}
	return int(r), want, nil
}

// shutdown shuts the socket down in both directions and reports whether it
// did; a connection without a descriptor, or one already closed, is for
// the caller to close.
func (s *sysConn) shutdown() bool {
	if s.raw == nil {
		return false
	}
	return s.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) }) == nil
}
