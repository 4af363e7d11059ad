package transport

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

func TestStreamWireBytes(t *testing.T) {
	ts := newTestServer(t, actors.Config{Heartbeat: 50 * time.Millisecond}, testPermissions)
	c := ts.openStream("dev:alice", "")
	wantHead := "HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/event-stream; charset=utf-8\r\n" +
		"Cache-Control: no-cache\r\n" +
		"Connection: keep-alive\r\n" +
		"X-Accel-Buffering: no\r\n\r\n"
	if c.Head != wantHead {
		t.Fatalf("head:\n%q\nwant\n%q", c.Head, wantHead)
	}
	expectBytes(t, c, "retry: 3000\n\n")
	// A ping comes within the first interval (its phase is random).
	expectBytes(t, c, ":ping\n\n")

	// A client that has the head gets every event published after. A ping
	// may come before the event; nothing else may.
	ids := ts.publish(event("growth", "j-1", "completed", "a1", ""))
	want := fmt.Sprintf("id: %d\nevent: job\ndata: {\"type\":\"growth\",\"jobId\":\"j-1\",\"status\":\"completed\",\"timestamp\":\"2026-11-27T10:00:00.000Z\",\"data\":{\"assetId\":\"a1\"}}\n\n", ids[0])
	for {
		got := readN(t, c, len(pingFrame))
		if got == string(pingFrame) {
			continue
		}
		rest := readN(t, c, len(want)-len(got))
		if got+rest != want {
			t.Fatalf("frame:\n%q\nwant\n%q", got+rest, want)
		}
		break
	}
	expectBytes(t, c, ":ping\n\n")
}

var pingFrame = []byte(":ping\n\n")

func readN(t *testing.T, c *sseClient, n int) string {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.R, buf); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, buf)
	}
	return string(buf)
}

func expectBytes(t *testing.T, c *sseClient, want string) {
	t.Helper()
	if got := readN(t, c, len(want)); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCookieAuth(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	c := ts.openStream("", "", "Cookie", "theme=dark; __session=dev:bob")
	ts.publish(event("growth", "j-a", "queued", "a1", "")) // bob may not see a1
	ts.publish(event("growth", "j-b", "queued", "a2", ""))
	f := c.nextEvent(5 * time.Second)
	if !strings.Contains(f.data, `"jobId":"j-b"`) {
		t.Fatalf("bob got %s, want j-b only", f.data)
	}
}

func TestJobLifecycleReachesOwner(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	c := ts.openStream("dev:alice", "")
	for _, tc := range []struct {
		name, body, final string
	}{
		{"growth completes", `{"type":"growth","assetId":"a1","params":{"principal":100,"rate":0.1,"years":2}}`, "completed"},
		{"matrix completes", `{"type":"matrix","assetId":"a2","scenarioId":"s1","params":{}}`, "completed"},
		{"probability completes", `{"type":"probability","scenarioId":"s1"}`, "completed"},
		{"bad params fail", `{"type":"growth","assetId":"a1","params":{"years":-1}}`, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ts.do("POST", "/api/jobs", "dev:alice", []byte(tc.body))
			if status != http.StatusAccepted {
				t.Fatalf("submit: %d %s", status, body)
			}
			var resp struct{ JobID string }
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.JobID == "" {
				t.Fatalf("submit answer %s: %v", body, err)
			}
			var steps []string
			var last map[string]any
			for len(steps) < 3 {
				f := c.nextEvent(10 * time.Second)
				var ev map[string]any
				if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
					t.Fatalf("event data %q: %v", f.data, err)
				}
				if ev["jobId"] != resp.JobID {
					t.Fatalf("event of another job: %s", f.data)
				}
				if data, _ := ev["data"].(map[string]any); data["progress"] != nil {
					continue // a job slower than progressEvery reports how far it got
				}
				steps = append(steps, ev["status"].(string))
				last = ev
			}
			if want := []string{"queued", "started", tc.final}; strings.Join(steps, ",") != strings.Join(want, ",") {
				t.Fatalf("steps %v, want %v", steps, want)
			}
			data, _ := last["data"].(map[string]any)
			switch tc.final {
			case "completed":
				if data["result"] == nil {
					t.Errorf("completed without a result: %v", last)
				}
			case "failed":
				if msg, _ := data["error"].(string); !strings.Contains(msg, "years") {
					t.Errorf("failed without a useful error: %v", last)
				}
			}
		})
	}
}

func TestJobMetrics(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	c := ts.openStream("dev:alice", "?statuses=completed,failed")
	for _, body := range []string{`{"type":"growth","assetId":"a1"}`, `{"type":"growth","assetId":"a1","params":{"years":-1}}`} {
		if status, resp := ts.do("POST", "/api/jobs", "dev:alice", []byte(body)); status != 202 {
			t.Fatalf("submit: %d %s", status, resp)
		}
		c.nextEvent(10 * time.Second)
	}
	for result, want := range map[string]float64{"completed": 1, "failed": 1} {
		if got := ts.metric(`eventhub_jobs_total{result="` + result + `",type="growth"}`); got != want {
			t.Errorf("jobs_total{%s} = %v, want %v", result, got, want)
		}
	}
	if got := ts.metric(`eventhub_job_duration_seconds_count{type="growth"}`); got != 2 {
		t.Errorf("job durations observed: %v, want 2", got)
	}
	if got := ts.metric(`eventhub_delivery_latency_seconds_count`); got < 1 {
		t.Errorf("delivery latency observed %v times", got)
	}
	if got := ts.metric(`eventhub_history_events`); got != 6 {
		t.Errorf("history holds %v events, want the 6 of two jobs", got)
	}
}

func TestSubmitJobRefusesWhatTheUserMayNotSee(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	for _, tc := range []struct {
		name, auth, body string
		status           int
	}{
		{"other asset", "dev:alice", `{"type":"growth","assetId":"a9"}`, 403},
		{"matrix with one of two scopes", "dev:alice", `{"type":"matrix","assetId":"a1","scenarioId":"s2"}`, 403},
		{"no token", "", `{"type":"growth","assetId":"a1"}`, 401},
		{"bad token", "alice", `{"type":"growth","assetId":"a1"}`, 401},
		{"user without permissions", "dev:nobody", `{"type":"growth","assetId":"a1"}`, 403},
		{"unknown user", "dev:mallory", `{"type":"growth","assetId":"a1"}`, 403},
		{"malformed json", "dev:alice", `{"type":`, 400},
		{"unknown type", "dev:alice", `{"type":"fusion","assetId":"a1"}`, 422},
		{"missing scope", "dev:alice", `{"type":"growth"}`, 422},
		{"admin may", "dev:ops", `{"type":"matrix","assetId":"a9","scenarioId":"s9"}`, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ts.do("POST", "/api/jobs", tc.auth, []byte(tc.body))
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			if status >= 400 {
				assertJSONError(t, body)
			}
		})
	}
	if got := ts.metric("eventhub_events_ingested_total{status=\"queued\",type=\"growth\"}"); got != 0 {
		t.Errorf("refused jobs were queued: %v", got)
	}
}

// TestSubmitJobNeedsJSON: a job must be declared application/json, so a form
// on another site cannot post one with the user's cookie.
func TestSubmitJobNeedsJSON(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded"} {
		status, body := ts.do("POST", "/api/jobs", "", []byte(`{"type":"growth","assetId":"a1"}`), "Content-Type", ct, "Cookie", "__session=dev:alice")
		if status != 415 {
			t.Errorf("%s: %d %s, want 415", ct, status, body)
		}
	}
	if status, body := ts.do("POST", "/api/jobs", "", []byte(`{"type":"growth","assetId":"a1"}`), "Cookie", "__session=dev:alice"); status != 202 {
		t.Errorf("application/json with the cookie: %d %s", status, body)
	}
}

func assertJSONError(t *testing.T, body string) {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("error body %q is not {\"error\":\"…\"}", body)
	}
}

// TestLargeCookies: a browser's 9 KB of cookies (Clerk's __session is about
// 4.5 KB) is read, past the 4 KiB read buffer; 100 KB of headers is a 431
// in JSON.
func TestLargeCookies(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	big := "other=" + strings.Repeat("x", 9000) + "; __session=dev:alice"
	ts.openStream("", "", "Cookie", big)
	_, status, body := ts.tryStream(nil, "", "", "Cookie", "other="+strings.Repeat("x", 100000)+"; __session=dev:alice")
	if status != 431 {
		t.Fatalf("100 KB of headers: %d %s, want 431", status, body)
	}
	assertJSONError(t, body)
}
