package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// poolSpec says what one pool of streams does. It travels to worker
// processes as JSON, so it holds only plain values.
type poolSpec struct {
	URL     string   `json:"url"`     // the stream URL, http://host:port/path?query
	Headers []string `json:"headers"` // "Name: value" lines added to each request
	Streams int      `json:"streams"`
	// FirstIndex is the harness-wide index of this pool's first stream: it
	// picks the source addresses and which streams are slow, so they do not
	// depend on how the streams were split over processes.
	FirstIndex int `json:"firstIndex"`
	// PerAddr is how many streams share one source address 127.0.X.Y; zero
	// means the default address chosen by the kernel for every stream.
	PerAddr int `json:"perAddr"`
	// DialConcurrency bounds the connections being opened at once.
	DialConcurrency int `json:"dialConcurrency"`
	// ReadBuffer is the size of each stream's bufio.Reader (a slow
	// stream's is at least slowReadBuffer).
	ReadBuffer int `json:"readBuffer"`
	// MaxSeq is the highest {seq} the publisher will send; deliveries are
	// tracked per seq up to it (fan-out completion).
	MaxSeq int `json:"maxSeq"`
	// Start (unix ns) and SeriesLen define the per-second latency series.
	Start     int64 `json:"start"`
	SeriesLen int   `json:"seriesLen"`
	// SlowFraction of the streams are slow: a small receive buffer, left out
	// of every figure, and they stop reading when told to stall.
	SlowFraction float64 `json:"slowFraction"`
	SlowRcvBuf   int     `json:"slowRcvBuf"`
	// SlowReaders, when set, is how many of the AllStreams streams
	// (harness-wide) are slow, spread evenly, instead of SlowFraction.
	SlowReaders int `json:"slowReaders,omitempty"`
	AllStreams  int `json:"allStreams,omitempty"`
	// SlowURL, when set, is the slow streams' URL (the others use URL), so
	// that filler events can reach only them.
	SlowURL string `json:"slowURL,omitempty"`
	// ReconnectDelay is how long a stream waits after the server closed it
	// before it reconnects with Last-Event-ID.
	ReconnectDelay time.Duration `json:"reconnectDelay"`
	// Users, when set, gives stream i (harness-wide) the token of user
	// bench-u<(i / Tabs) mod Users> (Config.Users).
	Users int `json:"users,omitempty"`
	Tabs  int `json:"tabs,omitempty"`
	// Assets, when set (with Users), is how many assets the users are
	// spread over, user u on asset u mod Assets (Config.Assets): the pool
	// counts its streams by asset (poolStats.Audience).
	Assets int `json:"assets,omitempty"`
	// Epoll reads the live streams (but the slow ones) from one epoll loop
	// instead of a goroutine each (Linux; see poller).
	Epoll bool `json:"epoll,omitempty"`
}

// poolStats are a pool's live counters.
type poolStats struct {
	Connected      int64 `json:"connected"`      // streams open now
	Opened         int64 `json:"opened"`         // successful handshakes, reconnects included
	Failed         int64 `json:"failed"`         // streams that gave up connecting
	ClosedByServer int64 `json:"closedByServer"` // streams the server ended
	Reconnects     int64 `json:"reconnects"`
	Events         int64 `json:"events"`    // data events received, duplicates included
	Delivered      int64 `json:"delivered"` // new in-order {seq} events on counted streams
	Duplicates     int64 `json:"duplicates"`
	NoTS           int64 `json:"noTS"` // events with no "ts" in their data
	StormBack      int64 `json:"stormBack"`
	// SlowCaughtUp is the slow streams caught up since the resume,
	// SlowDone the events of the "done" phase they read (slowResult).
	SlowCaughtUp int64          `json:"slowCaughtUp,omitempty"`
	SlowDone     int64          `json:"slowDone,omitempty"`
	FailReasons  map[string]int `json:"failReasons,omitempty"`
	// Audience is, with poolSpec.Assets, the streams that count toward
	// loss (not slow, connected at least once) on each asset.
	Audience []int64 `json:"audience,omitempty"`
}

func (s *poolStats) add(o poolStats) {
	s.Connected += o.Connected
	s.Opened += o.Opened
	s.Failed += o.Failed
	s.ClosedByServer += o.ClosedByServer
	s.Reconnects += o.Reconnects
	s.Events += o.Events
	s.Delivered += o.Delivered
	s.Duplicates += o.Duplicates
	s.NoTS += o.NoTS
	s.StormBack += o.StormBack
	s.SlowCaughtUp += o.SlowCaughtUp
	s.SlowDone += o.SlowDone
	for k, v := range o.FailReasons {
		if s.FailReasons == nil {
			s.FailReasons = map[string]int{}
		}
		s.FailReasons[k] += v
	}
	if len(s.Audience) < len(o.Audience) {
		s.Audience = append(s.Audience, make([]int64, len(o.Audience)-len(s.Audience))...)
	}
	for i, n := range o.Audience {
		s.Audience[i] += n
	}
}

// poolResult is what a pool hands back when it finishes.
type poolResult struct {
	Stats    poolStats     `json:"stats"`
	Phases   []phaseResult `json:"phases"`
	Series   []*Histogram  `json:"series"` // nil entries for empty seconds
	SeqMax   []int64       `json:"seqMax"` // latest receive time (unix ns) per seq, 0 if none
	SeqCount []int32       `json:"seqCount"`
	// Counted is the number of streams that count toward loss: not slow,
	// and connected at least once.
	Counted int64      `json:"counted"`
	Storm   *Histogram `json:"storm"` // from storm start to each stream back
	// Slow is what the slow streams saw, when they were told to resume.
	Slow *slowResult `json:"slow,omitempty"`
}

// slowResult is what a pool's slow streams saw after they were told to
// stall, then to resume (pool.resume).
type slowResult struct {
	Streams int64 `json:"streams"` // slow streams that connected
	// Closed is the slow streams the server ended at least once (each
	// reconnected with Last-Event-ID once it read again).
	Closed int64 `json:"closed"`
	// CaughtUp is the slow streams that, after resuming, read an event at
	// least as new as the newest published when they resumed; CatchUp the
	// time each took, from the resume; CatchUpEvents the {seq} events they
	// read until then, summed.
	CaughtUp      int64      `json:"caughtUp"`
	CatchUp       *Histogram `json:"catchUp"`
	CatchUpEvents int64      `json:"catchUpEvents"`
	// AllDone is the slow streams that read every event of the "done"
	// phase (each job's completed event), when there was one.
	AllDone int64 `json:"allDone"`
}

func (s *slowResult) add(o *slowResult) {
	s.Streams += o.Streams
	s.Closed += o.Closed
	s.CaughtUp += o.CaughtUp
	if o.CatchUp != nil {
		s.CatchUp.Merge(o.CatchUp)
	}
	s.CatchUpEvents += o.CatchUpEvents
	s.AllDone += o.AllDone
}

type phaseResult struct {
	Name    string     `json:"name"`
	FromSeq int64      `json:"fromSeq"`
	Latency *Histogram `json:"latency"`
}

// phase is a measurement window: events with seq ≥ fromSeq (or, without a
// seq, those received after it began) are recorded into its histogram.
type phase struct {
	name    string
	fromSeq int64
	hist    *Histogram
}

// pool holds a set of SSE streams, one goroutine each, and records what
// they receive. Its methods may be called concurrently; the goroutines it
// starts are stopped and waited for by finish.
type pool struct {
	spec    poolSpec
	addr    string // host:port to dial
	reqHead []byte // request line and headers, without Last-Event-ID and the final CRLF
	slowReq []byte // the same for slow streams
	local   func(idx int) *net.TCPAddr

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
	// polls read the live streams, stream i in polls[i % len(polls)]; none
	// when a goroutine reads each stream.
	polls []*poller

	streams []*stream

	connected, opened, failed, closedByServer, reconnects atomic.Int64
	events, delivered, duplicates, noTS, stormBack        atomic.Int64
	slowCaughtUp, slowDone                                atomic.Int64

	phases    atomic.Pointer[[]*phase]
	series    []*Histogram
	seqMax    []atomic.Int64
	seqCount  []atomic.Int32
	audience  []atomic.Int64 // with spec.Assets: counted streams by asset
	stormHist *Histogram
	stormAt   atomic.Int64 // unix ns of the last storm
	stormGen  atomic.Int64

	// resumed is closed by resume, once: stalled slow streams read again.
	// resumeAt (unix ns) and resumeSeq (the newest seq published then)
	// are set before; catchUp records each slow stream's catch-up.
	resumed    chan struct{}
	resumeOnce sync.Once
	resumeAt   atomic.Int64
	resumeSeq  atomic.Int64
	catchUp    *Histogram

	failMu      sync.Mutex
	failReasons map[string]int
}

// stream is one SSE connection. Its reader state is owned by its goroutine,
// or by the poller's loop while polled; conn is guarded by mu so that
// finish and storm can close it.
type stream struct {
	idx     int
	slow    bool
	stalled atomic.Bool
	got     atomic.Int64 // new in-order seqs received
	everUp  atomic.Bool

	mu     sync.Mutex
	conn   net.Conn
	polled bool       // the poller reads it (guarded by mu)
	fd     int        // the poller's descriptor for conn's socket, while polled (guarded by mu)
	ended  chan error // the poller's "connection over", to the goroutine
	// pending is a line cut by the end of what the poller read.
	pending []byte

	gen     int64 // storm generation at the last connect (goroutine-owned)
	lastSeq int64
	raw     *bufio.Reader
	rd      sseReader

	// A slow stream's own accounting (slowResult), owned by its goroutine
	// and read by finish once the goroutine is done.
	closed        bool  // the server ended it at least once
	caughtUp      bool  // read an event at least as new as resumeSeq
	catchUpEvents int64 // {seq} events read after the resume until caught up
	done          int64 // events of the "done" phase read
}

func (s *stream) setConn(c net.Conn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
}

func (s *stream) closeConn() {
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	if s.polled {
		s.unpoll(net.ErrClosed)
	}
	s.mu.Unlock()
}

// isSlow reports whether the stream of global index i is one of the slow
// fraction f: spread evenly over the indices.
func isSlow(i int, f float64) bool {
	if f <= 0 {
		return false
	}
	return int(float64(i+1)*f) > int(float64(i)*f)
}

// slowReadBuffer is the least a slow stream reads at once: when it reads
// again after a stall, what piled up in the kernel (megabytes on
// loopback) goes in reads as large as its receive buffer allows, and a
// filler event (16 KiB) fits in one.
const slowReadBuffer = 32 << 10

// isSlowOf reports whether the stream of global index i is one of k slow
// streams of n, spread evenly over the indices: exactly k of 0 … n-1 are.
func isSlowOf(i, k, n int) bool {
	if n <= 0 {
		return false
	}
	return (i+1)*k/n > i*k/n
}

// isSlow reports whether the stream of global index i is slow.
func (spec *poolSpec) isSlow(i int) bool {
	if spec.SlowReaders > 0 {
		return isSlowOf(i, spec.SlowReaders, spec.AllStreams)
	}
	return isSlow(i, spec.SlowFraction)
}

// streamUser is the user of the stream of global index i: tabs streams in
// a row each, over users users.
func streamUser(i, users, tabs int) int {
	return i / max(tabs, 1) % users
}

// streamAsset is the asset of the stream of global index i: its user's,
// user u on asset u mod assets.
func streamAsset(i, users, tabs, assets int) int {
	return streamUser(i, users, tabs) % assets
}

// newPool checks spec and prepares a pool; start opens its streams.
func newPool(spec poolSpec) (*pool, error) {
	u, err := url.Parse(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: stream url %q: %w", ErrConfig, spec.URL, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%w: stream url %q: only http:// is supported", ErrConfig, spec.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if spec.Assets > 0 && spec.Users <= 0 {
		return nil, fmt.Errorf("%w: %d assets need users", ErrConfig, spec.Assets)
	}
	if spec.DialConcurrency <= 0 {
		spec.DialConcurrency = 128
	}
	if spec.ReadBuffer < 64 {
		spec.ReadBuffer = 1024
	}
	head, err := requestHead(u, spec.Headers)
	if err != nil {
		return nil, err
	}
	slowHead := head
	if spec.SlowURL != "" {
		su, err := url.Parse(spec.SlowURL)
		if err != nil || su.Host != u.Host {
			return nil, fmt.Errorf("%w: slow stream url %q: want the stream URL's host", ErrConfig, spec.SlowURL)
		}
		if slowHead, err = requestHead(su, spec.Headers); err != nil {
			return nil, err
		}
	}
	p := &pool{
		spec:        spec,
		addr:        addr,
		reqHead:     head,
		slowReq:     slowHead,
		sem:         make(chan struct{}, spec.DialConcurrency),
		series:      make([]*Histogram, spec.SeriesLen),
		seqMax:      make([]atomic.Int64, spec.MaxSeq+1),
		seqCount:    make([]atomic.Int32, spec.MaxSeq+1),
		audience:    make([]atomic.Int64, spec.Assets),
		stormHist:   NewHistogram(),
		resumed:     make(chan struct{}),
		catchUp:     NewHistogram(),
		failReasons: map[string]int{},
	}
	for i := range p.series {
		p.series[i] = NewHistogram()
	}
	p.phases.Store(&[]*phase{{name: "all", hist: NewHistogram()}})
	ip := net.ParseIP(u.Hostname())
	if spec.PerAddr > 0 && ip != nil && ip.To4() != nil && ip.IsLoopback() {
		p.local = func(idx int) *net.TCPAddr { return sourceAddr(idx, spec.PerAddr) }
	}
	if spec.Epoll {
		// One loop a core: at hundreds of thousands of events a second,
		// one loop's parsing is what would limit the figures.
		for range runtime.GOMAXPROCS(0) {
			pl, err := newPoller(p)
			if err != nil {
				for _, pl := range p.polls {
					pl.close()
				}
				return nil, err
			}
			if pl != nil {
				p.polls = append(p.polls, pl)
			}
		}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// requestHead returns the request line and headers of a stream request,
// without the final CRLF.
func requestHead(u *url.URL, headers []string) ([]byte, error) {
	var head strings.Builder
	fmt.Fprintf(&head, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n", u.RequestURI(), u.Host)
	for _, h := range headers {
		if strings.ContainsAny(h, "\r\n") || !strings.Contains(h, ":") {
			return nil, fmt.Errorf("%w: header %q: want \"Name: value\" on one line", ErrConfig, h)
		}
		head.WriteString(h)
		head.WriteString("\r\n")
	}
	return []byte(head.String()), nil
}

// sourceAddr spreads streams over 127.0.1.1, 127.0.1.2, …, perAddr each,
// so that no source address runs out of ephemeral ports.
func sourceAddr(idx, perAddr int) *net.TCPAddr {
	k := idx/perAddr + 1 + 256 // 127.0.1.1 onward
	return &net.TCPAddr{IP: net.IPv4(127, byte(k>>16), byte(k>>8), byte(k))}
}

// start opens every stream in the background. Call it once.
func (p *pool) start() {
	p.streams = make([]*stream, p.spec.Streams)
	for i := range p.streams {
		idx := p.spec.FirstIndex + i
		p.streams[i] = &stream{idx: idx, slow: p.spec.isSlow(idx)}
	}
	for _, pl := range p.polls {
		p.wg.Go(pl.run)
	}
	p.wg.Add(len(p.streams))
	for _, s := range p.streams {
		go p.run(s)
	}
}

var errStopped = errors.New("stopped")

// run is one stream's goroutine: connect, read until the connection ends,
// reconnect with Last-Event-ID if it was not asked to stop.
func (p *pool) run(s *stream) {
	defer p.wg.Done()
	for first, stormed := true, false; ; first = false {
		conn, err := p.open(s, !first, stormed)
		if err != nil {
			if p.ctx.Err() == nil {
				p.fail(err)
			}
			return
		}
		if !s.everUp.Swap(true) && !s.slow && len(p.audience) > 0 {
			p.audience[streamAsset(s.idx, p.spec.Users, p.spec.Tabs, p.spec.Assets)].Add(1)
		}
		if len(p.polls) > 0 && !s.slow && s.rd.br == s.raw {
			err = p.polls[s.idx%len(p.polls)].wait(s, conn)
		} else {
			err = p.read(s)
		}
		p.connected.Add(-1)
		s.setConn(nil)
		conn.Close()
		if p.ctx.Err() != nil || errors.Is(err, errStopped) {
			return
		}
		stormed = s.gen != p.stormGen.Load()
		if !stormed {
			// The server ended the stream.
			p.closedByServer.Add(1)
			s.closed = s.closed || s.slow
			if s.stalled.Load() {
				return // stalled for good: it noticed only as the run ended
			}
			select {
			case <-time.After(p.spec.ReconnectDelay):
			case <-p.ctx.Done():
				return
			}
		}
		p.reconnects.Add(1)
	}
}

// fail records why a stream gave up.
func (p *pool) fail(err error) {
	p.failed.Add(1)
	reason := err.Error()
	var se *statusError
	switch {
	case errors.As(err, &se):
		reason = "status " + strconv.Itoa(se.code)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		reason = "EADDRNOTAVAIL"
	case errors.Is(err, syscall.ECONNREFUSED):
		reason = "ECONNREFUSED"
	case errors.Is(err, syscall.ECONNRESET):
		reason = "ECONNRESET"
	case errors.Is(err, syscall.EMFILE):
		reason = "EMFILE"
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = "timeout"
	}
	p.failMu.Lock()
	p.failReasons[reason]++
	p.failMu.Unlock()
}

// statusError is a stream request answered with a status other than 200.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("%v: status %d", ErrStatus, e.code) }
func (e *statusError) Unwrap() error { return ErrStatus }

// retryable reports whether opening a stream is worth another try.
func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code == 429 || se.code == 503
	}
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EAGAIN) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, syscall.EPIPE)
}

const (
	openAttempts     = 10
	handshakeTimeout = 15 * time.Second
)

// open connects stream s and reads its response head, retrying what may
// pass (no free port, a full backlog, 429/503) with backoff. At most
// DialConcurrency opens run at once.
func (p *pool) open(s *stream, resume, stormed bool) (net.Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-p.ctx.Done():
		return nil, errStopped
	}
	defer func() { <-p.sem }()
	var lastErr error
	for attempt := range openAttempts {
		if attempt > 0 {
			backoff := min(20*time.Millisecond<<attempt, 2*time.Second)
			select {
			case <-time.After(backoff):
			case <-p.ctx.Done():
				return nil, errStopped
			}
		}
		conn, err := p.dial(s)
		if err == nil {
			err = p.handshake(s, conn, resume, stormed)
			if err == nil {
				return conn, nil
			}
			s.setConn(nil)
			conn.Close()
		}
		if p.ctx.Err() != nil {
			return nil, errStopped
		}
		lastErr = err
		if !retryable(err) {
			break
		}
	}
	return nil, lastErr
}

func (p *pool) dial(s *stream) (net.Conn, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	rcvbuf := 0
	if s.slow {
		rcvbuf = p.spec.SlowRcvBuf
	}
	if p.local != nil {
		d.LocalAddr = p.local(s.idx)
	}
	d.Control = socketControl(p.local != nil, rcvbuf)
	conn, err := d.DialContext(p.ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", p.addr, err)
	}
	return conn, nil
}

// handshake sends the stream request and reads the response head.
func (p *pool) handshake(s *stream, conn net.Conn, resume, stormed bool) error {
	s.setConn(conn)
	if p.ctx.Err() != nil { // finish may have missed the conn
		return errStopped
	}
	s.gen = p.stormGen.Load()
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	head := p.reqHead
	if s.slow {
		head = p.slowReq
	}
	req := make([]byte, 0, len(head)+64)
	req = append(req, head...)
	if p.spec.Users > 0 {
		req = append(req, "Authorization: Bearer dev:"+benchUser...)
		req = strconv.AppendInt(req, int64(streamUser(s.idx, p.spec.Users, p.spec.Tabs)), 10)
		req = append(req, "\r\n"...)
	}
	if resume && len(s.rd.lastID) > 0 {
		req = append(req, "Last-Event-ID: "...)
		req = append(req, s.rd.lastID...)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("writing stream request: %w", err)
	}
	if s.raw == nil {
		size := p.spec.ReadBuffer
		if s.slow {
			size = max(size, slowReadBuffer)
		}
		s.raw = bufio.NewReaderSize(conn, size)
	} else {
		s.raw.Reset(conn)
	}
	code, chunked, err := readResponseHead(s.raw)
	if err != nil {
		return err
	}
	if code != 200 {
		return &statusError{code}
	}
	s.rd.br = s.raw
	s.rd.cut() // what the last connection left half-read is gone
	if chunked {
		s.rd.br = bufio.NewReaderSize(httputil.NewChunkedReader(s.raw), p.spec.ReadBuffer)
	}
	conn.SetDeadline(time.Time{})
	p.opened.Add(1)
	p.connected.Add(1)
	if stormed {
		if at := p.stormAt.Load(); at > 0 {
			p.stormHist.Record(time.Duration(time.Now().UnixNano() - at))
			p.stormBack.Add(1)
		}
	}
	return nil
}

// read reads events until the connection ends. A slow stream told to
// stall stops reading after its next event, so that the server's buffers
// fill up, until it is told to resume.
func (p *pool) read(s *stream) error {
	for {
		ev, err := s.rd.next()
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		p.events.Add(1)
		if !s.slow {
			p.record(s, ev, now)
			continue
		}
		p.recordSlow(s, ev, now)
		if s.stalled.Load() {
			select {
			case <-p.resumed:
			case <-p.ctx.Done():
				return errStopped
			}
		}
	}
}

// recordSlow accounts one event received at now by a slow stream: after
// the resume, until it catches up, and in the "done" phase. Slow streams
// count toward no other figure.
func (p *pool) recordSlow(s *stream, ev sseEvent, now int64) {
	if !ev.hasSeq || ev.seq <= s.lastSeq {
		return // the filler, or a duplicate
	}
	s.lastSeq = ev.seq
	if at := p.resumeAt.Load(); at > 0 && !s.caughtUp {
		s.catchUpEvents++
		if ev.seq >= p.resumeSeq.Load() {
			s.caughtUp = true
			p.catchUp.Record(time.Duration(now - at))
			p.slowCaughtUp.Add(1)
		}
	}
	if p.phaseFor(ev.seq).name == phaseDone {
		s.done++
		p.slowDone.Add(1)
	}
}

// feed parses a chunk of a stream read by the poller, recording each event
// it completes; a line cut at the chunk's end waits in s.pending.
func (p *pool) feed(s *stream, b []byte, now int64) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.pending = append(s.pending, b...)
			return
		}
		line := b[:i]
		b = b[i+1:]
		if len(s.pending) > 0 {
			s.pending = append(s.pending, line...)
			line = s.pending
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		ev, ok := s.rd.line(line)
		s.pending = s.pending[:0]
		if ok {
			p.events.Add(1)
			p.record(s, ev, now)
		}
	}
}

// record accounts one event received at now by a counted stream.
func (p *pool) record(s *stream, ev sseEvent, now int64) {
	seq := int64(-1)
	if ev.hasSeq {
		seq = ev.seq
		if seq <= s.lastSeq {
			p.duplicates.Add(1)
			return
		}
		s.lastSeq = seq
		s.got.Add(1)
		p.delivered.Add(1)
		if seq < int64(len(p.seqMax)) {
			m := &p.seqMax[seq]
			for {
				old := m.Load()
				if now <= old || m.CompareAndSwap(old, now) {
					break
				}
			}
			p.seqCount[seq].Add(1)
		}
	}
	if !ev.hasTS {
		p.noTS.Add(1)
		return
	}
	lat := time.Duration(now - ev.ts)
	p.phaseFor(seq).hist.Record(lat)
	if sec := (now - p.spec.Start) / int64(time.Second); sec >= 0 && sec < int64(len(p.series)) {
		p.series[sec].Record(lat)
	}
}

// phaseFor returns the phase an event of sequence seq (-1: none) belongs to.
func (p *pool) phaseFor(seq int64) *phase {
	ph := *p.phases.Load()
	if seq < 0 {
		return ph[len(ph)-1]
	}
	for i := len(ph) - 1; i > 0; i-- {
		if seq >= ph[i].fromSeq {
			return ph[i]
		}
	}
	return ph[0]
}

// setPhase starts a new phase at fromSeq. Phases must be set in order.
func (p *pool) setPhase(name string, fromSeq int64) {
	old := *p.phases.Load()
	next := append(old[:len(old):len(old)], &phase{name: name, fromSeq: fromSeq, hist: NewHistogram()})
	p.phases.Store(&next)
}

// phaseHist returns the histogram of the named phase, or nil.
func (p *pool) phaseHist(name string) *Histogram {
	for _, ph := range *p.phases.Load() {
		if ph.name == name {
			return ph.hist
		}
	}
	return nil
}

// stall makes the slow streams stop reading after their next event.
func (p *pool) stall() {
	for _, s := range p.streams {
		if s.slow {
			s.stalled.Store(true)
		}
	}
}

// resume makes the stalled slow streams read again, each catching up once
// it reads an event of seq newest or later (the newest published now).
// Only the first call counts.
func (p *pool) resume(newest int64) {
	p.resumeOnce.Do(func() {
		p.resumeSeq.Store(newest)
		p.resumeAt.Store(time.Now().UnixNano())
		for _, s := range p.streams {
			s.stalled.Store(false)
		}
		close(p.resumed)
	})
}

// storm closes every stream at once; each reconnects at once with its
// Last-Event-ID.
func (p *pool) storm() {
	p.stormAt.Store(time.Now().UnixNano())
	p.stormBack.Store(0)
	p.stormGen.Add(1)
	for _, s := range p.streams {
		s.closeConn()
	}
}

func (p *pool) stats() poolStats {
	st := poolStats{
		Connected:      p.connected.Load(),
		Opened:         p.opened.Load(),
		Failed:         p.failed.Load(),
		ClosedByServer: p.closedByServer.Load(),
		Reconnects:     p.reconnects.Load(),
		Events:         p.events.Load(),
		Delivered:      p.delivered.Load(),
		Duplicates:     p.duplicates.Load(),
		NoTS:           p.noTS.Load(),
		StormBack:      p.stormBack.Load(),
		SlowCaughtUp:   p.slowCaughtUp.Load(),
		SlowDone:       p.slowDone.Load(),
	}
	if len(p.audience) > 0 {
		st.Audience = make([]int64, len(p.audience))
		for i := range p.audience {
			st.Audience[i] = p.audience[i].Load()
		}
	}
	p.failMu.Lock()
	if len(p.failReasons) > 0 {
		st.FailReasons = make(map[string]int, len(p.failReasons))
		for k, v := range p.failReasons {
			st.FailReasons[k] = v
		}
	}
	p.failMu.Unlock()
	return st
}

// finish stops every stream, waits for their goroutines and returns what
// was recorded. upTo is the last seq published: the per-seq arrays are cut
// there.
func (p *pool) finish(upTo int) *poolResult {
	p.cancel()
	for _, s := range p.streams {
		s.closeConn()
	}
	p.wg.Wait()
	for _, pl := range p.polls {
		pl.close()
	}
	r := &poolResult{Stats: p.stats(), Storm: p.stormHist}
	for _, ph := range *p.phases.Load() {
		r.Phases = append(r.Phases, phaseResult{Name: ph.name, FromSeq: ph.fromSeq, Latency: ph.hist})
	}
	r.Series = make([]*Histogram, len(p.series))
	last := -1
	for i, h := range p.series {
		if h.Count() > 0 {
			r.Series[i] = h
			last = i
		}
	}
	r.Series = r.Series[:last+1]
	upTo = min(max(upTo, 0), len(p.seqMax)-1)
	r.SeqMax = make([]int64, upTo+1)
	r.SeqCount = make([]int32, upTo+1)
	for i := range r.SeqMax {
		r.SeqMax[i] = p.seqMax[i].Load()
		r.SeqCount[i] = p.seqCount[i].Load()
	}
	for _, s := range p.streams {
		if !s.slow && s.everUp.Load() {
			r.Counted++
		}
	}
	if p.resumeAt.Load() > 0 {
		r.Slow = p.slowResult(upTo)
	}
	return r
}

// slowResult adds up the slow streams' accounting; upTo is the last seq
// published. Call it once their goroutines are done.
func (p *pool) slowResult(upTo int) *slowResult {
	r := &slowResult{CatchUp: p.catchUp}
	doneEvents := int64(0)
	for _, ph := range *p.phases.Load() {
		if ph.name == phaseDone {
			doneEvents = int64(upTo) - ph.fromSeq + 1
		}
	}
	for _, s := range p.streams {
		if !s.slow || !s.everUp.Load() {
			continue
		}
		r.Streams++
		if s.closed {
			r.Closed++
		}
		if s.caughtUp {
			r.CaughtUp++
			r.CatchUpEvents += s.catchUpEvents
		}
		if doneEvents > 0 && s.done == doneEvents {
			r.AllDone++
		}
	}
	return r
}
