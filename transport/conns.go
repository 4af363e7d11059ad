package transport

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/finexbot/eventhub/internal/ratelog"
)

// connLimits is the server's connection budget, kept where connections are
// accepted so that it covers every client connection, requests and streams
// alike: a stream's socket stays counted (against its address, and against
// MaxConns) until the hub closes it, although fasthttp no longer sees it.
//
//   - MaxConnsPerIP: a new connection from an address that holds as many is
//     refused with 429 at once. Loopback peers are not counted (a reverse
//     proxy on the same host, whose own per-client limits apply, connects
//     from loopback for everyone).
//   - MaxConns: at the cap, a new connection evicts the request connection
//     idle the longest (a keep-alive connection between requests, or one
//     that has sent nothing yet), if it has been idle for minIdle; else the
//     new connection is refused with 503. So idle connections cannot take
//     the descriptors a publisher or a new stream needs.
//
// Accept, the connections' Close and fasthttp's ConnState hook call it from
// many goroutines; mu guards the counts and the idle list. It is taken once
// per connection and per request, never per frame.
type connLimits struct {
	maxConns      int
	maxPerIP      int
	countLoopback bool          // test seam: count loopback peers too
	minIdle       time.Duration // an idle connection younger than this is not evicted

	refusedPerIP prometheus.Counter
	refusedFull  prometheus.Counter
	evicted      prometheus.Counter

	mu    sync.Mutex
	open  int // connections accepted and not yet closed, streams included
	perIP map[netip.Addr]int
	idle  list.List // *trackedConn idle (no request in progress), longest idle first
}

// Over-budget answers, written on a connection that is then closed. The
// connection is refused before any request is read, so the answer is
// written whole and at once.
var (
	perIPRefusal = fixedResponse(fasthttp.StatusTooManyRequests, "5", "too many connections from this address")
	fullRefusal  = fixedResponse(fasthttp.StatusServiceUnavailable, "1", "too many connections")
)

func fixedResponse(status int, retryAfter, msg string) []byte {
	body := `{"error":"` + msg + `"}` + "\n"
	return []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + fasthttp.StatusMessage(status) + "\r\n" +
		"Content-Type: application/json\r\n" +
		"Cache-Control: no-store\r\n" +
		"Retry-After: " + retryAfter + "\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func newConnLimits(maxConns, maxPerIP int, countLoopback bool, reg prometheus.Registerer) (*connLimits, error) {
	l := &connLimits{maxConns: maxConns, maxPerIP: maxPerIP, countLoopback: countLoopback, minIdle: time.Second,
		perIP: map[netip.Addr]int{}}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_conns_refused_total",
		Help: "Connections refused when accepted, by reason: per_ip (--max-conns-per-ip, 429) or max_conns (--max-conns, 503).",
	}, []string{"reason"})
	l.refusedPerIP, l.refusedFull = refused.WithLabelValues("per_ip"), refused.WithLabelValues("max_conns")
	evicted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventhub_conns_evicted_total",
		Help: "Idle request connections closed to make room for a new connection at --max-conns.",
	})
	l.evicted = evicted
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventhub_conns_open",
		Help: "Client connections open: requests and streams.",
	}, func() float64 { l.mu.Lock(); defer l.mu.Unlock(); return float64(l.open) })
	for _, c := range []prometheus.Collector{refused, evicted, open} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// limitedListener applies connLimits to what its Listener accepts.
type limitedListener struct {
	net.Listener
	l *connLimits
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, victim, refusal := ln.l.admit(c)
		if victim != nil {
			victim.Conn.Close() // its reader fails, and fasthttp lets it go
		}
		if tc != nil {
			return tc, nil
		}
		// A fresh socket's send buffer is empty: the answer goes at once.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.Write(refusal)
		c.Close()
	}
}

// admit counts c in, or returns the answer that refuses it. victim, when
// not nil, is an idle connection already counted out, for the caller to
// close.
func (l *connLimits) admit(c net.Conn) (tc, victim *trackedConn, refusal []byte) {
	var ip netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(a.IP)
		ip = ip.Unmap()
	}
	perIP := l.maxPerIP > 0 && ip.IsValid() && (l.countLoopback || !ip.IsLoopback())
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if perIP && l.perIP[ip] >= l.maxPerIP {
		l.refusedPerIP.Inc()
		return nil, nil, perIPRefusal
	}
	if l.maxConns > 0 && l.open >= l.maxConns {
		front := l.idle.Front()
		if front == nil || now.Sub(time.Unix(0, front.Value.(*trackedConn).idleSince)) < l.minIdle {
			l.refusedFull.Inc()
			return nil, nil, fullRefusal
		}
		victim = front.Value.(*trackedConn)
		l.releaseLocked(victim)
		l.evicted.Inc()
	}
	tc = &trackedConn{Conn: c, l: l, ip: ip, perIP: perIP}
	l.open++
	if perIP {
		l.perIP[ip]++
	}
	tc.idleSince = now.UnixNano() // nothing read yet: idle until its first byte
	tc.idleElem = l.idle.PushBack(tc)
	return tc, victim, nil
}

// releaseLocked counts c out, once.
func (l *connLimits) releaseLocked(c *trackedConn) {
	if c.released {
		return
	}
	c.released = true
	l.open--
	if c.perIP {
		if n := l.perIP[c.ip] - 1; n > 0 {
			l.perIP[c.ip] = n
		} else {
			delete(l.perIP, c.ip)
		}
	}
	if c.idleElem != nil {
		l.idle.Remove(c.idleElem)
		c.idleElem = nil
	}
}

// connState is fasthttp's ConnState hook: a connection between requests
// may be evicted, one serving a request may not.
func (l *connLimits) connState(nc net.Conn, state fasthttp.ConnState) {
	c, ok := nc.(*trackedConn)
	if !ok {
		return
	}
	switch state {
	case fasthttp.StateActive:
		l.mu.Lock()
		if c.idleElem != nil {
			l.idle.Remove(c.idleElem)
			c.idleElem = nil
		}
		l.mu.Unlock()
	case fasthttp.StateIdle:
		l.mu.Lock()
		if !c.released && !c.stream && c.idleElem == nil {
			c.idleSince = time.Now().UnixNano()
			c.idleElem = l.idle.PushBack(c)
		}
		l.mu.Unlock()
	}
}

// toStream marks c as a stream's: never evicted, counted until the hub
// closes it.
func (l *connLimits) toStream(c *trackedConn) {
	l.mu.Lock()
	if !c.released && !c.stream {
		c.stream = true
		if c.idleElem != nil {
			l.idle.Remove(c.idleElem)
			c.idleElem = nil
		}
	}
	l.mu.Unlock()
}

// trackedConn is an accepted connection counted in its connLimits until
// it is closed. It passes SyscallConn through, so the hub still writes
// straight on a stream's descriptor.
type trackedConn struct {
	net.Conn
	l     *connLimits
	ip    netip.Addr
	perIP bool // counted against ip

	// Guarded by l.mu.
	released  bool
	stream    bool
	idleSince int64 // unix ns; a word, not a time.Time, in every connection
	idleElem  *list.Element

	// linger asks Close to let the client read an answer it sent a body
	// for (see lingerClose). Set by the request's goroutine.
	linger atomic.Bool
}

// Close counts the connection out and closes it. It may be called more
// than once, from any goroutine.
func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	if c.linger.Swap(false) {
		lingerClose(c.Conn)
	}
	return c.Conn.Close()
}

// SyscallConn is the socket's, for the hub's direct writes.
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

var _ syscall.Conn = (*trackedConn)(nil)

// Lingering close bounds: what the server reads and drops after refusing a
// body, and for how long at most. A client that declared a large body and
// waits for an answer sends nothing more and costs nothing; one that sends
// its whole body at once (most HTTP clients do) gets to send up to this
// much, so that its kernel is not reset while it still writes, and reads
// the 413.
const (
	lingerBytes = 4 << 20
	lingerTime  = 500 * time.Millisecond
)

// lingerClose is for a connection answered before its request's body was
// read (413): closing a socket with unread data resets it, and the reset
// can destroy the answer before the client reads it. So the server sends
// its FIN first, then reads and drops what the client is still sending,
// a bounded amount for a bounded time, and only then closes.
func lingerClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() != nil {
			return
		}
	}
	if c.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	io.CopyN(io.Discard, c, lingerBytes)
}

// quoted matches a Go-quoted string (%q), as fasthttp's messages hold them.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// rateLogger is fasthttp's logger: its lines go to slog at most once a
// minute per format, with how many were held back since, so a flood of bad
// requests is a line a minute. A request holds session tokens and keys:
// fasthttp is told not to dump requests (SecureErrorLogMessage), and what it
// still quotes is cut out here.
type rateLogger struct {
	limit *ratelog.Limiter
}

func newRateLogger(log *slog.Logger, every time.Duration) *rateLogger {
	return &rateLogger{limit: ratelog.New(log, every)}
}

func (r *rateLogger) Printf(format string, args ...any) {
	ok, suppressed := r.limit.Allow(format) // formats are fasthttp's constants
	if !ok {
		return
	}
	attrs := []any{"lib", "fasthttp"}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	// fasthttp quotes what it could not parse (a header line, with
	// SecureErrorLogMessage too): every quoted string goes.
	r.limit.Logger().Warn(quoted.ReplaceAllString(fmt.Sprintf(format, args...), `"…"`), attrs...)
}
