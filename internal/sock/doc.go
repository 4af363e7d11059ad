// Package sock is the hub's socket I/O: writing a stream's frames to its
// connection, ending the connection, and seeing its client hang up. The
// hub and its actors never touch a descriptor; what differs by operating
// system lives here, in files built for one.
//
// # Model
//
// A Conn is the writing side of one connection. It writes two ways:
//
//   - TryWrite never waits. On Linux, for a TCP socket, it writes straight
//     on the descriptor with write (one buffer) or writev (several), which
//     fail at once with EAGAIN when the socket is full: no deadline to arm
//     and none of Go's locks on the descriptor, so one frame costs one
//     system call. Elsewhere, and for connections that are not sockets, it
//     writes through the net.Conn under a deadline of a moment. Either way
//     a socket that takes less than everything is ErrWouldBlock, and what
//     it did not take is left in the caller's buffers.
//   - Write waits for the socket up to a timeout, through the net.Conn and
//     Go's poller: the path of a congested connection, on a goroutine that
//     may block.
//
// Shutdown ends a connection at once from any goroutine, also in the middle
// of a write; Close releases it after the last write.
//
// A Watcher sees clients hang up. A client sends nothing after its
// request, so all there is to learn from its socket is that it went away.
// On Linux one goroutine waits in epoll on every watched socket at once;
// where a Watcher cannot watch a connection (another OS, a connection that
// is not a socket), Watch says so and the caller runs Conn.AwaitHangUp on a
// goroutine of its own.
//
// # Concurrency
//
// One goroutine at a time writes to a Conn (TryWrite, Write), and the same
// writer calls Close, once, after its last write. Shutdown and
// AwaitHangUp may run on any goroutine at any time. A Watcher's Watch and
// Unwatch may be called concurrently from any goroutine; Stop comes once,
// after every watched connection has ended. Its callback runs on the
// Watcher's goroutine.
package sock
