package transport

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

// TestBadInput: every endpoint answers bad input with its documented status
// and a JSON error, publishes nothing, and the hub goes on serving.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, actors.Config{MaxStreamsPerUser: 2}, testPermissions)
	watcher := ts.openStream("dev:ops", "")

	valid := event("growth", "ok-1", "queued", "a1", "")
	big := `{"type":"growth","jobId":"big","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":"` + strings.Repeat("x", 1<<20) + `"}}`
	dataTooBig := `{"type":"growth","jobId":"big","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":"` + strings.Repeat("x", 65<<10) + `"}}`
	var tooMany []string
	for i := range 1001 {
		tooMany = append(tooMany, event("growth", fmt.Sprintf("m%d", i), "queued", "a1", ""))
	}
	publishCases := []struct {
		name, key, body string
		status          int
		mention         string
	}{
		{"no key", "", valid, 401, "publish key"},
		{"wrong key", "nope", valid, 401, "publish key"},
		{"user token is not a key", "dev:ops", valid, 401, "publish key"},
		{"malformed json", testKey, `{"type":"growth",`, 400, "malformed"},
		{"not an object", testKey, `"hello"`, 400, "malformed"},
		{"empty body", testKey, ``, 400, "malformed"},
		{"empty array", testKey, `[]`, 400, "malformed"},
		{"unknown type", testKey, event("fusion", "j", "queued", "a1", ""), 422, "type"},
		{"unknown status", testKey, event("growth", "j", "paused", "a1", ""), 422, "status"},
		{"bad job id", testKey, event("growth", "j 1", "queued", "a1", ""), 422, "jobId"},
		{"long job id", testKey, event("growth", strings.Repeat("j", 129), "queued", "a1", ""), 422, "jobId"},
		{"bad timestamp", testKey, strings.Replace(valid, "2026-11-27T10:00:00.000Z", "yesterday", 1), 422, "timestamp"},
		{"data not an object", testKey, `{"type":"growth","jobId":"j","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":[1]}`, 422, "data"},
		{"matrix without scenario", testKey, event("matrix", "j", "queued", "a1", ""), 422, "scenarioId"},
		{"growth without asset", testKey, event("growth", "j", "queued", "", "s1"), 422, "assetId"},
		{"probability without scenario", testKey, event("probability", "j", "queued", "a1", ""), 422, "scenarioId"},
		{"unknown field", testKey, strings.Replace(valid, `"jobId"`, `"color":"red","jobId"`, 1), 422, "color"},
		{"data over 64 KiB", testKey, dataTooBig, 422, "data"},
		{"body over 1 MiB", testKey, big, 413, "bytes"},
		{"batch over 1000 events", testKey, "[" + strings.Join(tooMany, ",") + "]", 413, "batch"},
		{"one bad event spoils the batch", testKey, "[" + valid + "," + event("growth", "j", "paused", "a1", "") + "]", 422, "event 1"},
	}
	for _, tc := range publishCases {
		t.Run("publish/"+tc.name, func(t *testing.T) {
			status, body := ts.do("POST", "/api/events", tc.key, []byte(tc.body))
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			assertJSONError(t, body)
			if !strings.Contains(body, tc.mention) {
				t.Errorf("error %s does not mention %q", body, tc.mention)
			}
		})
	}

	for _, key := range []string{strings.Repeat("k", 129), "job:j-1/end", "a b"} {
		t.Run("publish/Idempotency-Key "+key[:min(len(key), 12)], func(t *testing.T) {
			status, body := ts.do("POST", "/api/events", testKey, []byte(valid), "Idempotency-Key", key)
			if status != 400 || !strings.Contains(body, "Idempotency-Key") {
				t.Fatalf("status %d (%s), want 400 naming Idempotency-Key", status, body)
			}
			assertJSONError(t, body)
		})
	}

	streamCases := []struct {
		name, auth, query string
		header            []string
		status            int
	}{
		{"no token", "", "", nil, 401},
		{"bad token", "alice", "", nil, 401},
		{"not bearer", "", "", []string{"Authorization", "Basic YWxpY2U6eA=="}, 401},
		{"bad cookie", "", "", []string{"Cookie", "__session=eyJhbGciOi"}, 401},
		{"unknown user", "dev:mallory", "", nil, 403},
		{"user without permissions", "dev:nobody", "", nil, 403},
		{"unknown type", "dev:alice", "?types=fusion", nil, 400},
		{"unknown status", "dev:alice", "?statuses=paused", nil, 400},
		{"empty filter", "dev:alice", "?types=", nil, 400},
		{"trailing comma", "dev:alice", "?types=matrix,", nil, 400},
		{"bad asset id", "dev:alice", "?assets=a%201", nil, 400},
		{"too many values", "dev:alice", "?jobs=" + strings.Repeat("j,", 64) + "j", nil, 400},
		{"bad Last-Event-ID", "dev:alice", "", []string{"Last-Event-ID", "abc"}, 400},
		{"negative Last-Event-ID", "dev:alice", "", []string{"Last-Event-ID", "-1"}, 400},
		{"Last-Event-ID out of range", "dev:alice", "", []string{"Last-Event-ID", "99999999999999999999"}, 400},
		{"bad lastEventId", "dev:alice", "?lastEventId=0x10", nil, 400},
		{"bad conflate", "dev:alice", "?conflate=yes", nil, 400},
	}
	for _, tc := range streamCases {
		t.Run("stream/"+tc.name, func(t *testing.T) {
			_, status, body := ts.tryStream(nil, tc.auth, tc.query, tc.header...)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			assertJSONError(t, body)
		})
	}

	t.Run("stream/per-user limit", func(t *testing.T) {
		ts.openStream("dev:bob", "")
		ts.openStream("dev:bob", "")
		_, status, body := ts.tryStream(nil, "dev:bob", "")
		if status != 429 {
			t.Fatalf("third stream: %d %s, want 429", status, body)
		}
		assertJSONError(t, body)
	})

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/nothing", 404},
		{"DELETE", "/api/events", 405},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, body := ts.do(tc.method, tc.path, "", nil)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			assertJSONError(t, body)
		})
	}

	// Nothing was published, and the hub still serves: the watcher's first
	// event is the valid one published now.
	for _, s := range []string{"queued"} {
		if got := ts.metric(`eventhub_events_ingested_total{status="` + s + `",type="growth"}`); got != 0 {
			t.Fatalf("bad input published %v events", got)
		}
	}
	ts.publish(valid)
	if id := jobIDOf(t, watcher.nextEvent(5*time.Second).data); id != "ok-1" {
		t.Fatalf("watcher's first event is %s, want ok-1", id)
	}
	if got := ts.metric(`eventhub_stream_errors_total{reason="bad_request"}`); got != 11 {
		t.Errorf("bad_request stream errors = %v, want 11", got)
	}
}
