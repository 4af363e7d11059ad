package transport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/jobs"
)

// rawRequest dials addr, writes req (a request head, perhaps part of a
// body) and reads one response within d. It returns the response and the
// connection, still open, for the test to go on with or close.
func rawRequest(t *testing.T, addr, req string, d time.Duration) (*http.Response, string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %v to %q: %v", d, firstLine(req), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), c
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }

// TestBodyLimitChosenFromTheHead: each route's body limit is decided when
// the request's head arrives: a declared body over it is answered 413 at
// once, before a byte of it is sent, and nothing is published or queued.
func TestBodyLimitChosenFromTheHead(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	var submitted atomic.Int32
	ts.submit = func(context.Context, jobs.Job) error { submitted.Add(1); return nil }
	for _, tc := range []struct {
		name, method, path, auth string
		length                   int
	}{
		{"publish just over 1 MiB", "POST", "/api/events", "Bearer " + testKey, 1<<20 + 1},
		{"publish of 100 MB", "POST", "/api/events", "Bearer " + testKey, 100 << 20},
		{"publish of 100 MB without a key", "POST", "/api/events", "", 100 << 20},
		{"job just over 64 KiB", "POST", "/api/jobs", "Bearer dev:alice", 64<<10 + 1},
		{"job of 100 MB", "POST", "/api/jobs", "Bearer dev:alice", 100 << 20},
		{"invalidate just over 64 KiB", "POST", "/api/permissions/invalidate", "Bearer " + testKey, 64<<10 + 1},
		{"a body on GET /api/jobs", "GET", "/api/jobs", "Bearer dev:alice", 1000},
		{"a body on GET /api/events", "GET", "/api/events", "Bearer dev:alice", 1000},
		{"a body on an unknown route", "POST", "/api/nothing", "", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
			if tc.auth != "" {
				head += "Authorization: " + tc.auth + "\r\n"
			}
			head += fmt.Sprintf("Content-Length: %d\r\n\r\n", tc.length)
			// Only the head is sent: the answer must not wait for the body.
			resp, body, c := rawRequest(t, ts.addr, head, 2*time.Second)
			if resp.StatusCode != 413 {
				t.Fatalf("%d %s, want 413", resp.StatusCode, body)
			}
			assertJSONError(t, body)
			if !resp.Close {
				t.Error("the connection is kept after a refused body")
			}
			// The server closes: a read ends, not times out.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Errorf("connection still open after 413: %v", err)
			}
		})
	}
	// A client that sends its whole oversized body at once still reads
	// the 413 (the server drains a little before it closes).
	big := bytes.Repeat([]byte("x"), 2<<20)
	for range 5 {
		if status, body := ts.do("POST", "/api/events", testKey, big); status != 413 {
			t.Fatalf("a 2 MiB publish sent whole: %d %s, want 413", status, body)
		}
	}
	if got := ts.metric(`eventhub_http_refused_total{reason="body_too_large"}`); got != 14 {
		t.Errorf("eventhub_http_refused_total{reason=body_too_large} = %v, want 14", got)
	}
	if got := ts.metric(`eventhub_events_ingested_total{status="queued",type="growth"}`); got != 0 {
		t.Errorf("%v events ingested", got)
	}
	if n := submitted.Load(); n != 0 {
		t.Errorf("%d jobs submitted", n)
	}
	// The hub goes on serving.
	ts.publish(event("growth", "after", "queued", "a1", ""))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestConnsPerIP: one address holds at most MaxConnsPerIP connections,
// streams included; the next is refused with 429 before any request is
// read, and a slot comes back when a stream ends.
func TestConnsPerIP(t *testing.T) {
	ts := newTestServerWith(t, actors.Config{}, testPermissions, authz.DevAuthenticate, func(c *Config) {
		c.MaxConnsPerIP = 3
		c.countLoopback = true
	})
	s1 := ts.openStream("dev:ops", "")
	ts.openStream("dev:alice", "")
	idle, err := net.Dial("tcp", ts.addr) // a connection that asks nothing
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	resp, body, _ := rawRequest(t, ts.addr, "", 2*time.Second)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th connection: %d %s (Retry-After %q), want 429 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	assertJSONError(t, body)
	if _, status, _ := ts.tryStream(nil, "dev:bob", ""); status != 429 {
		t.Fatalf("a stream over the per-address cap: %d, want 429", status)
	}

	s1.conn.Close()
	hubtest.WaitFor(t, "the closed stream's slot to come back", 5*time.Second, func() bool {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			return false
		}
		defer c.Close()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		return err == nil && resp.StatusCode == 200
	})
	// (Read in process: a scrape would be one more connection.)
	var m dto.Metric
	ts.srv.conns.refusedPerIP.Write(&m)
	if got := m.GetCounter().GetValue(); got < 2 {
		t.Errorf("eventhub_conns_refused_total{reason=per_ip} = %v, want at least 2", got)
	}
}

// TestIdleConnsCannotStarveOthers: with the connection budget held by
// connections that send nothing, a publisher still gets 202 and a stream
// still opens: the connection idle the longest makes room.
func TestIdleConnsCannotStarveOthers(t *testing.T) {
	const budget = 20
	ts := newTestServerWith(t, actors.Config{}, testPermissions, authz.DevAuthenticate, func(c *Config) { c.MaxConns = budget })
	ts.srv.conns.mu.Lock()
	ts.srv.conns.minIdle = 50 * time.Millisecond
	ts.srv.conns.mu.Unlock()
	var idle []net.Conn
	for range budget {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	hubtest.WaitFor(t, "the idle connections to be accepted and idle a while", 5*time.Second, func() bool {
		l := ts.srv.conns
		l.mu.Lock()
		defer l.mu.Unlock()
		front := l.idle.Front()
		return l.open == budget && front != nil && time.Since(time.Unix(0, front.Value.(*trackedConn).idleSince)) > l.minIdle
	})
	// Each request below needs a connection; each finds the budget full
	// of connections that sent nothing, and one of them makes room.
	start := time.Now()
	ids := ts.publish(event("growth", "p1", "queued", "a1", ""))
	if len(ids) != 1 || time.Since(start) > 3*time.Second {
		t.Fatalf("publish with the budget held by idle connections: %v after %v", ids, time.Since(start))
	}
	s := ts.openStream("dev:ops", "")
	ts.publish(event("growth", "p2", "queued", "a1", ""))
	if id := jobIDOf(t, s.nextEvent(5*time.Second).data); id != "p2" {
		t.Fatalf("stream got %s, want p2", id)
	}
	if got := ts.metric("eventhub_conns_evicted_total"); got < 2 {
		t.Errorf("eventhub_conns_evicted_total = %v, want at least 2", got)
	}
}

// TestNoSecretInLogs: malformed requests carrying a session token, a
// __session cookie and the publish key are refused, and no log line holds
// any of them; a flood of them is a line or two, not one each.
func TestNoSecretInLogs(t *testing.T) {
	var logs hubtest.LogBuffer
	ts := newTestServerWith(t, actors.Config{}, testPermissions, authz.DevAuthenticate, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	const token, cookie = "dev:secret-session-token-1234", "secret-cookie-5678"
	secrets := []string{token, cookie, testKey}
	auth := "Authorization: Bearer " + token + "\r\nCookie: __session=" + cookie + "\r\n"
	keyed := "Authorization: Bearer " + testKey + "\r\n"
	bad := []string{
		// fasthttp quotes a header line it cannot parse in its error.
		"GET /api/events HTTP/1.1\r\nHost: hub\r\n" + auth + "Bad Header " + cookie + "\r\n\r\n",
		"GET /api/jobs HTTP/1.1\r\nHost: hub\r\nAuthorization Bearer " + token + "\r\n\r\n",
		"POST /api/events HTTP/1.1\r\nHost: hub\r\n" + keyed + "Content-Length: 12x\r\n\r\n",
		"POST /api/events HTTP/1.1\r\nHost: hub\r\n" + keyed + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + testKey + "\r\n0\r\n\r\n",
		"GET /api/jobs HTTP/1.1\r\nHost: hub\r\n" + auth + "X-Pad: " + strings.Repeat("p", 20<<10) + "\r\n\r\n",
		"G\x00T /api/jobs HTTP/1.1\r\nHost: hub\r\n" + auth + "\r\n",
		"GET /api/jobs HTTP/1.1\r\nHost: hub\r\nCookie __session=" + cookie + "\r\n\r\n",
		"POST /api/events HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " + testKey + "\x00\r\nContent-Length: 2\r\n\r\n{}",
	}
	for range 10 {
		for _, req := range bad {
			resp, body, _ := rawRequest(t, ts.addr, req, 2*time.Second)
			if resp.StatusCode < 400 {
				t.Fatalf("%q: %d %s, want a refusal", firstLine(req), resp.StatusCode, body)
			}
		}
	}
	ts.stop()
	out := logs.String()
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines > 2*len(bad) {
		t.Errorf("%d log lines for %d bad requests: not rate-limited:\n%s", lines, 10*len(bad), out)
	}
}

// TestPublishKeyComparison: only the exact key is accepted; a prefix, an
// extension or another key of the same length is refused.
func TestPublishKeyComparison(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	valid := []byte(event("growth", "k", "queued", "a1", ""))
	for _, key := range []string{testKey[:len(testKey)-1], testKey + "x", strings.ToUpper(testKey), strings.Repeat("k", len(testKey))} {
		if status, _ := ts.do("POST", "/api/events", key, valid); status != 401 {
			t.Errorf("key %q: %d, want 401", key, status)
		}
	}
	if status, body := ts.do("POST", "/api/events", testKey, valid); status != 202 {
		t.Errorf("the key: %d %s", status, body)
	}
}
