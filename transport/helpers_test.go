package transport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/nats-io/nats.go"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
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
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
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
	workers, err := jobs.StartWorkers(system.Root, jobs.WorkersConfig{Publish: hub.Publish, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var ts *testServer // Submit goes through ts.submit, set below
	srv, err := New(Config{
		Hub: hub, Authenticate: authenticate,
		PublishKey: testKey, Submit: func(ctx context.Context, j jobs.Job) error { return ts.submit(ctx, j) }, Gatherer: reg, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ts = &testServer{t: t, addr: ln.Addr().String(), hub: hub, workers: workers, reg: reg, source: source, permFile: permFile, system: system}
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
	req, err := http.NewRequest(method, ts.url(path), bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
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

// metric reads one sample from GET /metrics: name with its labels as they
// print, e.g. `eventhub_streams_closed_total{reason="slow"}`.
func (ts *testServer) metric(series string) float64 {
	ts.t.Helper()
	status, body := ts.do("GET", "/metrics", "", nil)
	if status != http.StatusOK {
		ts.t.Fatalf("metrics: %d", status)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				ts.t.Fatal(err)
			}
			return f
		}
	}
	ts.t.Fatalf("no series %s in /metrics", series)
	return 0
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sseClient is a raw-socket SSE client with a small line decoder.
type sseClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	head string
}

type sseFrame struct {
	id, event, data, retry string
	comment                string
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

// openSmallStream is openStream for a client whose socket receive buffer
// is 4 KiB, so that a client that stops reading fills the hub's side fast.
func (ts *testServer) openSmallStream(auth string) *sseClient {
	ts.t.Helper()
	small := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	c, status, body := ts.tryStream(small, auth, "")
	if status != 200 {
		ts.t.Fatalf("stream: %d %s", status, body)
	}
	return c
}

// tryStream is openStream that returns the status and, when not 200, the
// body. dialer may shrink the socket buffers.
func (ts *testServer) tryStream(dialer *net.Dialer, auth, query string, header ...string) (*sseClient, int, string) {
	ts.t.Helper()
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	conn, err := dialer.Dial("tcp", ts.addr)
	if err != nil {
		ts.t.Fatal(err)
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET /api/events%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", query, ts.addr)
	if auth != "" {
		fmt.Fprintf(&req, "Authorization: Bearer %s\r\n", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&req, "%s: %s\r\n", header[i], header[i+1])
	}
	req.WriteString("\r\n")
	if _, err := conn.Write([]byte(req.String())); err != nil {
		ts.t.Fatal(err)
	}
	c := &sseClient{t: ts.t, conn: conn, r: bufio.NewReader(conn)}
	ts.t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, err := readHead(c.r)
	if err != nil {
		ts.t.Fatalf("read head: %v", err)
	}
	c.head = head
	status, _ := strconv.Atoi(strings.Fields(head)[1])
	if status != 200 {
		var n int
		for _, line := range strings.Split(head, "\r\n") {
			if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c.r, body); err != nil {
			ts.t.Fatalf("read error body: %v", err)
		}
		conn.Close()
		return nil, status, string(body)
	}
	conn.SetReadDeadline(time.Time{})
	return c, status, ""
}

func readHead(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// next reads one SSE frame (or comment) within d.
func (c *sseClient) next(d time.Duration) (sseFrame, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	defer c.conn.SetReadDeadline(time.Time{})
	var f sseFrame
	seen := false
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				return f, nil
			}
			continue
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			f.comment = value
		case "id":
			f.id = value
		case "event":
			f.event = value
		case "data":
			f.data = value
		case "retry":
			f.retry = value
		default:
			c.t.Errorf("unexpected SSE field %q", line)
		}
	}
}

// nextEvent skips comments and retry hints and returns the next event.
func (c *sseClient) nextEvent(d time.Duration) sseFrame {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := c.next(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for an event: %v", err)
		}
		if f.event != "" {
			return f
		}
	}
}

// event is a compact JobEvent for tests.
func event(typ, jobID, status, asset, scenario string) string {
	data := map[string]string{}
	if asset != "" {
		data["assetId"] = asset
	}
	if scenario != "" {
		data["scenarioId"] = scenario
	}
	var d strings.Builder
	d.WriteString("{")
	first := true
	for _, k := range []string{"assetId", "scenarioId"} {
		if v, ok := data[k]; ok {
			if !first {
				d.WriteString(",")
			}
			fmt.Fprintf(&d, "%q:%q", k, v)
			first = false
		}
	}
	d.WriteString("}")
	return fmt.Sprintf(`{"type":%q,"jobId":%q,"status":%q,"timestamp":"2026-11-27T10:00:00.000Z","data":%s}`, typ, jobID, status, d.String())
}
