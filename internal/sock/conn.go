package sock

import (
	"errors"
	"net"
	"os"
	"time"
)

// ErrWouldBlock is TryWrite's report that the socket did not take
// everything: it is full, and what is left is still in the buffers.
var ErrWouldBlock = errors.New("socket full")

// tryBudget is how long TryWrite may wait for a full socket when it cannot
// write without waiting (no descriptor to write to directly: another OS,
// or a connection that is not a TCP socket, such as tests' pipes).
const tryBudget = 2 * time.Millisecond

// Conn is the writing side of one connection, and what ends it. It is kept
// by value in whatever owns the connection (it is a few words), and must
// not be copied once in use: a Watcher holds its address.
//
// The writer (one goroutine at a time) owns rest and calls TryWrite, Write
// and Close; Shutdown and AwaitHangUp may be called from anywhere.
type Conn struct {
	nc  net.Conn
	sys sysConn // the descriptor to write to directly, where there is one
	// rest is Write's scratch, made on the first write through the
	// net.Conn and kept: net.Buffers.WriteTo's receiver escapes, so a local
	// would allocate each time, and most connections (those written
	// straight on their descriptor) never need it.
	rest *net.Buffers
	// watchID is the connection's id in the Watcher that watches it, 0
	// when none does. Set by Watch, cleared by Unwatch.
	watchID uint64
}

// Wrap returns the Conn that writes to nc. Wrap takes nc over: nc is closed
// by Conn.Close (or Shutdown, where it has no descriptor to keep).
func Wrap(nc net.Conn) Conn {
	return Conn{nc: nc, sys: newSysConn(nc)}
}

// TryWrite writes what the socket takes of *bufs without waiting (see the
// package doc), and removes it from *bufs: what is left is moved to the
// front of the same array, so a caller that appends to *bufs keeps reusing
// it. It returns ErrWouldBlock if anything is left.
func (c *Conn) TryWrite(bufs *net.Buffers) error {
	if c.sys.direct() {
		return c.sys.tryWrite(bufs)
	}
	err := c.writeWithin(bufs, tryBudget)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrWouldBlock
	}
	return err
}

// Write writes all of *bufs, waiting for the socket up to timeout; like
// TryWrite it leaves what was not written in *bufs. An error that
// errors.Is os.ErrDeadlineExceeded means the socket took too long.
func (c *Conn) Write(bufs *net.Buffers, timeout time.Duration) error {
	if err := c.writeWithin(bufs, timeout); err != nil {
		return err
	}
	// Drained: leave no deadline behind. One left on the socket would
	// fail a later write through the net.Conn that did not set its own.
	return c.nc.SetWriteDeadline(time.Time{})
}

// writeWithin writes *bufs through the net.Conn under a deadline.
func (c *Conn) writeWithin(bufs *net.Buffers, timeout time.Duration) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	// WriteTo consumes c.rest down to what is left (a writev where nc is a
	// socket, one Write per buffer otherwise).
	if c.rest == nil {
		c.rest = new(net.Buffers)
	}
	*c.rest = *bufs
	_, err := c.rest.WriteTo(c.nc)
	k := copy(*bufs, *c.rest)
	clear((*bufs)[k:])
	*bufs = (*bufs)[:k]
	*c.rest = nil
	return err
}

// consume drops the first n written bytes from *bufs, shifting what is
// left to the front in place: the array stays the caller's.
func consume(bufs *net.Buffers, n int) {
	v := *bufs
	i := 0
	for ; i < len(v) && n >= len(v[i]); i++ {
		n -= len(v[i])
	}
	if i < len(v) && n > 0 {
		v[i] = v[i][n:]
	}
	k := copy(v, v[i:])
	clear(v[k:])
	*bufs = v[:k]
}

// Shutdown ends the connection at once: it fails a write in progress,
// wakes whoever waits on the connection (AwaitHangUp, a Write) and sends
// the client its FIN. Where TryWrite writes to the descriptor directly,
// the socket is shut down, not closed: that keeps the descriptor number
// taken, so that a TryWrite in progress, which holds none of Go's locks on
// it, can never write to another connection that reused the number. The
// writer closes it with Close after its last write. Connections written
// only through Go's net.Conn are closed here: Go keeps their descriptor
// until no call uses it.
//
// Shutdown may be called from any goroutine, any number of times.
func (c *Conn) Shutdown() {
	if !c.sys.shutdown() {
		c.nc.Close()
	}
}

// Close releases the connection. The writer calls it once, after its last
// write; a connection that Shutdown closed already is no error. A Watcher
// forgets the socket by itself when it is closed, but Unwatch must still
// be called to drop the Watcher's entry.
func (c *Conn) Close() error {
	if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// AwaitHangUp blocks until the client hangs up, or until the connection is
// shut down or closed: the reader goroutine of a connection no Watcher
// watches. A client sends nothing after its request, so the only thing to
// learn here is that it went away, and a blocked Read learns that at once.
// What the client does send is read and dropped.
func (c *Conn) AwaitHangUp() {
	var buf [1]byte // the client sends nothing: the Read is only there to see EOF
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}
