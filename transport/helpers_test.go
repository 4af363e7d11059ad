package transport

import (
	"context"
	"github.com/nats-io/nats.go"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/jobs"
)

const testKey = "test-publish-key"

// testServer is a real hub on a real fasthttp listener on loopback.
type testServer struct {
	t        *testing.T
	addr     string
	hub      *actors.Hub
	workers  *jobs.Workers
	reg      *prometheus.Registry
	source   *authz.FileSource // the permissions file, for tests that change it
	permFile string
	stop     func()                                // shuts the server, workers and hub down; idempotent
	submit   func(context.Context, jobs.Job) error // where POST /api/jobs goes; set before any request
	system   *actor.ActorSystem
	queue    jobs.Queue // in a cluster, stopped before the workers
	nc       *nats.Conn // in a cluster, the hub's connection
	srv      *Server
	// closeLog, when set, closes the event log the test gave the hub in
	// its Config, after the hub has stopped.
	closeLog func() error
}

const testPermissions = `{"users": {
	"alice": {"assets": ["a1","a2"], "scenarios": ["s1"]},
	"bob":   {"assets": ["a2"], "scenarios": ["s2"]},
	"ops":   {"admin": true},
	"nobody": {}
}}`

func newTestServer(t *testing.T, cfg actors.Config, permissions string) *testServer {
	t.Helper()
	return newTestServerAuth(t, cfg, permissions, authz.DevAuthenticate)
}

// newTestServerAuth is newTestServer with another authenticator (Clerk's).
func newTestServerAuth(t *testing.T, cfg actors.Config, permissions string, authenticate func(string) (authz.Identity, error)) *testServer {
	t.Helper()
	return newTestServerWith(t, cfg, permissions, authenticate, nil)
}

// newTestServerWith is newTestServerAuth whose transport Config edit may
// change before the server is built.
func newTestServerWith(t *testing.T, cfg actors.Config, permissions string, authenticate func(string) (authz.Identity, error), edit func(*Config)) *testServer {
	t.Helper()
	permFile := filepath.Join(t.TempDir(), "permissions.json")
	if err := os.WriteFile(permFile, []byte(permissions), 0o600); err != nil {
		t.Fatal(err)
	}
	source, err := authz.NewFileSource(permFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Permissions == nil {
		cfg.Permissions = source
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	system := actors.NewSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	// A test that gives the hub a log of its own registers the log's
	// metrics in the registry it passes here.
	reg, _ := cfg.Registerer.(*prometheus.Registry)
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cfg.Registerer = reg
	hub, err := actors.NewHub(system, cfg)
	if err != nil {
		t.Fatal(err)
	}
	workers, err := jobs.StartWorkers(system.Root, jobs.WorkersConfig{Publish: hub.PublishWithKey, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var ts *testServer // Submit goes through ts.submit, set below
	tcfg := Config{
		Hub: hub, Authenticate: authenticate,
		PublishKey: testKey, Submit: func(ctx context.Context, j jobs.Job) error { return ts.submit(ctx, j) }, Gatherer: reg, Registerer: reg,
	}
	if edit != nil {
		edit(&tcfg)
	}
	srv, err := New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ts = &testServer{t: t, addr: ln.Addr().String(), hub: hub, workers: workers, reg: reg, source: source, permFile: permFile, system: system, srv: srv}
	ts.submit = workers.Submit
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("server shutdown: %v", err)
			}
			if ts.queue != nil {
				ts.queue.Stop()
			}
			workers.Stop()
			if err := hub.Shutdown(ctx); err != nil {
				t.Errorf("hub shutdown: %v", err)
			}
			if ts.closeLog != nil {
				if err := ts.closeLog(); err != nil {
					t.Errorf("close the event log: %v", err)
				}
			}
			system.Shutdown()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) url(path string) string { return "http://" + ts.addr + path }

// do sends a request and returns the status and body.
func (ts *testServer) do(method, path, auth string, body []byte, header ...string) (int, string) {
	ts.t.Helper()
	resp, b := hubtest.Request(ts.t, method, ts.url(path), auth, body, header...)
	return resp.StatusCode, b
}

// publish posts events (JSON) and returns their ids.
func (ts *testServer) publish(body string) []uint64 {
	ts.t.Helper()
	status, resp := ts.do("POST", "/api/events", testKey, []byte(body))
	if status != http.StatusAccepted {
		ts.t.Fatalf("publish: %d %s", status, resp)
	}
	var ids []uint64
	for _, m := range regexp.MustCompile(`\d+`).FindAllString(resp, -1) {
		id, _ := strconv.ParseUint(m, 10, 64)
		ids = append(ids, id)
	}
	return ids
}

// metric reads one sample from GET /metrics through hubtest's selector,
// e.g. `eventhub_streams_closed_total{reason="slow"}`.
func (ts *testServer) metric(series string) float64 {
	ts.t.Helper()
	return hubtest.Metric(ts.t, ts.url("/metrics"), series)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	hubtest.WaitFor(t, what, d, cond)
}

// sseClient is a hubtest stream on the test server; conn is its socket
// (Stream.Conn), by the name these tests have always used.
type sseClient struct {
	*hubtest.Stream
	t    *testing.T
	conn net.Conn
}

// sseFrame is a hubtest.Frame under the field names these tests use.
type sseFrame struct {
	id, event, data, retry string
	comment                string
}

func frameOf(f hubtest.Frame) sseFrame {
	return sseFrame{id: f.ID, event: f.Event, data: f.Data, retry: f.Retry, comment: f.Comment}
}

// openStream dials the hub, asks for a stream and reads the response head.
// It fails the test unless the answer is 200.
func (ts *testServer) openStream(auth, query string, header ...string) *sseClient {
	ts.t.Helper()
	c, status, body := ts.tryStream(nil, auth, query, header...)
	if status != 200 {
		ts.t.Fatalf("stream %q: %d %s", query, status, body)
	}
	return c
}

// smallDialer dials sockets whose receive buffer is 4 KiB, so that a
// client that stops reading fills the hub's side fast.
var smallDialer = &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var err error
	c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	return err
}}

// openSmallStream is openStream through smallDialer.
func (ts *testServer) openSmallStream(auth, query string) *sseClient {
	ts.t.Helper()
	c, status, body := ts.tryStream(smallDialer, auth, query)
	if status != 200 {
		ts.t.Fatalf("stream: %d %s", status, body)
	}
	return c
}

// tryStream is openStream that returns the status and, when not 200, the
// body. dialer may shrink the socket buffers.
func (ts *testServer) tryStream(dialer *net.Dialer, auth, query string, header ...string) (*sseClient, int, string) {
	ts.t.Helper()
	if auth != "" {
		header = append([]string{"Authorization", "Bearer " + auth}, header...)
	}
	s, status, body := hubtest.DialStream(ts.t, dialer, ts.addr, "/api/events"+query, header...)
	if s == nil {
		return nil, status, body
	}
	return &sseClient{Stream: s, t: ts.t, conn: s.Conn}, status, ""
}

// next reads one SSE frame (or comment) within d.
func (c *sseClient) next(d time.Duration) (sseFrame, error) {
	f, err := c.Next(d)
	return frameOf(f), err
}

// nextEvent skips comments and retry hints and returns the next event.
func (c *sseClient) nextEvent(d time.Duration) sseFrame {
	c.t.Helper()
	return frameOf(c.NextEvent(c.t, d))
}

// eventTime is the timestamp of every event the tests publish.
var eventTime = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// event is a compact JobEvent for tests (hubtest.JobEvent at eventTime).
func event(typ, jobID, status, asset, scenario string) string {
	return hubtest.JobEvent(typ, jobID, status, asset, scenario, eventTime)
}
