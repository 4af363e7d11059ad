package actors

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/jobs"
)

// waitTimeout bounds every wait in these tests. It is generous because the
// race detector slows everything down; a passing test never waits for it.
const waitTimeout = 10 * time.Second

// testConn is the one seam a stream needs, faked as narrowly as it can be: a
// net.Conn whose Read blocks until Close (a client sends nothing after its
// request and stays until it goes) and whose Write records what the hub
// wrote. When block is set, Write waits for it to be closed, or for Close: a
// client that stopped reading.
type testConn struct {
	closed    chan struct{}
	closeOnce sync.Once
	block     chan struct{} // nil: writes never block

	mu     sync.Mutex // guards buf and read
	buf    []byte
	read   int           // offset up to which nextFrame has returned frames
	notify chan struct{} // capacity 1: "something was written", coalesced
}

var _ net.Conn = (*testConn)(nil)

func newTestConn() *testConn {
	return &testConn{closed: make(chan struct{}), notify: make(chan struct{}, 1)}
}

// newBlockedConn is a client that never reads: every Write blocks until Close.
func newBlockedConn() *testConn {
	c := newTestConn()
	c.block = make(chan struct{})
	return c
}

func (c *testConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *testConn) Write(p []byte) (int, error) {
	if c.block != nil {
		select {
		case <-c.block:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *testConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *testConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *testConn) LocalAddr() net.Addr              { return testAddr{} }
func (c *testConn) RemoteAddr() net.Addr             { return testAddr{} }
func (c *testConn) SetDeadline(time.Time) error      { return nil }
func (c *testConn) SetReadDeadline(time.Time) error  { return nil }
func (c *testConn) SetWriteDeadline(time.Time) error { return nil }

type testAddr struct{}

func (testAddr) Network() string { return "test" }
func (testAddr) String() string  { return "test" }

// written returns everything written so far.
func (c *testConn) written() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

// nextFrame waits until one more complete SSE frame (up to and including its
// blank line) has been written and returns it. Frames written by the hub
// contain no CR, so "\n\n" ends each one.
func (c *testConn) nextFrame(t testing.TB) string {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		rest := c.buf[c.read:]
		if i := bytes.Index(rest, []byte("\n\n")); i >= 0 {
			f := string(rest[:i+2])
			c.read += i + 2
			c.mu.Unlock()
			return f
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.closed:
			// A last write may have raced with Close: look once more.
			c.mu.Lock()
			rest := string(c.buf[c.read:])
			c.mu.Unlock()
			if i := bytes.Index([]byte(rest), []byte("\n\n")); i >= 0 {
				continue
			}
			t.Fatalf("stream closed while waiting for a frame; unread: %q", rest)
		case <-deadline.C:
			t.Fatalf("no frame within %v; unread: %q", waitTimeout, c.written()[c.read:])
		}
	}
}

// waitClosed waits until the hub has closed the connection.
func (c *testConn) waitClosed(t testing.TB) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(waitTimeout):
		t.Fatalf("connection not closed within %v", waitTimeout)
	}
}

// waitFor polls cond until it holds, or fails the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	hubtest.WaitFor(t, what, waitTimeout, cond)
}

// testHub is a real Hub on its own real actor system, with a fresh registry
// and a permissions source the test fills.
type testHub struct {
	*Hub
	system *actor.ActorSystem
	reg    *prometheus.Registry
	src    *testSource
}

// testSource is a permissions source held in memory.
type testSource struct {
	mu    sync.Mutex
	perms map[string]*authz.Permissions
	calls int
}

func (s *testSource) Permissions(_ context.Context, user string) (*authz.Permissions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if p, ok := s.perms[user]; ok {
		return p, nil
	}
	return &authz.Permissions{}, nil
}

func (s *testSource) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *testSource) set(user string, p *authz.Permissions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms[user] = p
}

// authorized gives user perms in the source and authorizes them, as the
// transport does before it opens a stream; it returns req.
func (h *testHub) authorized(t testing.TB, perms *authz.Permissions, req StreamRequest) StreamRequest {
	t.Helper()
	h.src.set(req.User, perms)
	got, err := h.Authorize(context.Background(), req.User)
	if err != nil {
		t.Fatalf("authorize %s: %v", req.User, err)
	}
	if !got.Equal(perms) {
		// The user actor had other permissions cached: have it reload.
		if err := h.Invalidate(context.Background(), req.User); err != nil {
			t.Fatalf("invalidate %s: %v", req.User, err)
		}
	}
	return req
}

func quietSystem() *actor.ActorSystem {
	return NewSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// newTestHubTTL is a quiet test hub that trusts permissions for ttl.
func newTestHubTTL(t testing.TB, ttl time.Duration) *testHub {
	cfg := quiet
	cfg.PermissionsTTL = ttl
	return newTestHub(t, cfg)
}

func newTestHub(t testing.TB, cfg Config) *testHub {
	t.Helper()
	system := quietSystem()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	src := &testSource{perms: map[string]*authz.Permissions{}}
	if cfg.Permissions == nil {
		cfg.Permissions = src
	}
	h, err := NewHub(system, cfg)
	if err != nil {
		t.Fatal(err)
	}
	th := &testHub{Hub: h, system: system, reg: reg, src: src}
	t.Cleanup(func() {
		if err := th.shutdown(context.Background()); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		system.Shutdown()
	})
	return th
}

// shutdown runs Shutdown, failing the test if it does not return within
// waitTimeout. A context without a deadline makes Shutdown close every
// stream at once rather than spread over the time it has.
func (h *testHub) shutdown(ctx context.Context) error {
	done := make(chan error, 1) // the test may have given up on it
	go func() { done <- h.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		return fmt.Errorf("Shutdown did not return within %v", waitTimeout)
	}
}

// open admits and opens a stream on a new testConn.
func (h *testHub) open(t testing.TB, req StreamRequest) *testConn {
	t.Helper()
	c := newTestConn()
	h.openOn(t, c, req)
	return c
}

func (h *testHub) openOn(t testing.TB, c net.Conn, req StreamRequest) {
	t.Helper()
	tk, err := h.Admit(req.User)
	if err != nil {
		t.Fatalf("admit %s: %v", req.User, err)
	}
	if err := h.Open(c, tk, req); err != nil {
		t.Fatalf("open %s: %v", req.User, err)
	}
	t.Cleanup(func() { c.Close() })
}

func (h *testHub) publish(t testing.TB, evs ...jobs.Event) []uint64 {
	t.Helper()
	ids, err := h.Publish(context.Background(), evs)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if len(ids) != len(evs) {
		t.Fatalf("publish %d events: %d ids", len(evs), len(ids))
	}
	return ids
}

// metric reads one gauge or counter from the hub's registry: name and label
// pairs ("reason", "slow").
func (h *testHub) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, err := gatherValue(h.reg, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func gatherValue(g prometheus.Gatherer, name string, labels ...string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				match = match && found
			}
			switch {
			case !match:
			case m.Gauge != nil:
				return m.Gauge.GetValue(), nil
			case m.Counter != nil:
				return m.Counter.GetValue(), nil
			}
		}
	}
	return 0, fmt.Errorf("no series %s%v", name, labels)
}

// waitMetric polls a metric until it equals want.
func (h *testHub) waitMetric(t testing.TB, want float64, name string, labels ...string) {
	t.Helper()
	var got float64
	if !hubtest.Poll(waitTimeout, func() bool { got = h.metric(t, name, labels...); return got == want }) {
		t.Fatalf("%s%v = %v after %v, want %v", name, labels, got, waitTimeout, want)
	}
}

var testTime = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// mkEvent builds a valid event scoped to asset and/or scenario ("" = none).
func mkEvent(t testing.TB, typ jobs.Type, job string, st jobs.Status, asset, scenario string) jobs.Event {
	t.Helper()
	ev := jobs.Event{Type: typ, JobID: job, Status: st, Timestamp: testTime, AssetID: asset, ScenarioID: scenario}
	switch {
	case asset != "" && scenario != "":
		ev.Data = fmt.Appendf(nil, `{"assetId":%q,"scenarioId":%q}`, asset, scenario)
	case asset != "":
		ev.Data = fmt.Appendf(nil, `{"assetId":%q}`, asset)
	case scenario != "":
		ev.Data = fmt.Appendf(nil, `{"scenarioId":%q}`, scenario)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("mkEvent: %v", err)
	}
	return ev
}

func permsFor(assets, scenarios []string) *authz.Permissions {
	return &authz.Permissions{Assets: authz.NewSet(assets...), Scenarios: authz.NewSet(scenarios...)}
}

var adminPerms = &authz.Permissions{Admin: true}

// mkFilter parses a query string the way the transport does.
func mkFilter(t testing.TB, query string) jobs.Filter {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	f, err := jobs.ParseFilter(func(key string) (string, bool) {
		if !q.Has(key) {
			return "", false
		}
		return q.Get(key), true
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// frameOf is the exact frame the hub must write for ev under id.
func frameOf(id uint64, ev *jobs.Event) string { return string(appendEventFrame(nil, id, ev)) }
