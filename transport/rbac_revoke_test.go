package transport

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
)

// TestRevokedStreamWritesNothingQueued: a client stops reading, so its
// socket fills and 10 MB of events it may see wait in its stream (a write
// in progress and the mailbox). Its user then loses the asset. Once the
// revocation is in force, the hub writes none of those frames: when the
// client reads again it gets what was already in the kernel's buffers,
// then the end of the stream, not the rest.
func TestRevokedStreamWritesNothingQueued(t *testing.T) {
	backend := &permBackend{perms: map[string]string{"u": `{"assets":["a1","a2"]}`}}
	srv := httptest.NewServer(backend)
	t.Cleanup(srv.Close)
	src, err := authz.NewHTTPSource(srv.URL, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, actors.Config{Permissions: src, PermissionsTTL: time.Hour,
		Mailbox: 1024, MailboxBytes: 64 << 20, WriteTimeout: time.Minute}, `{"users": {}}`)
	paused := ts.openSmallStream("dev:u", "")
	const n = 200 // 10 MB: more than the kernel buffers on both sides
	pad := strings.Repeat("x", 50<<10)
	for i := 0; i < n; i += 10 {
		var evs []string
		for j := i; j < i+10; j++ {
			evs = append(evs, fmt.Sprintf(`{"type":"growth","jobId":"j%d","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":%q}}`, j, pad))
		}
		ts.publish("[" + strings.Join(evs, ",") + "]")
	}
	// An authorization of u is answered by u's actor after it has posted
	// every event before it to the stream: they are all queued or written.
	if status, body := ts.do("GET", "/api/jobs?limit=1", "dev:u", nil); status != 200 {
		t.Fatalf("snapshot: %d %s", status, body)
	}
	written := ts.metric("eventhub_events_delivered_total")
	if written >= n {
		t.Fatalf("all %d frames were written before the revocation: the test proves nothing", n)
	}

	backend.set("u", `{"assets":["a2"]}`)
	if status, body := ts.do("POST", "/api/permissions/invalidate", testKey, []byte(`{"userId":"u"}`)); status != 200 {
		t.Fatalf("invalidate: %d %s", status, body)
	}
	waitFor(t, "the stream closed forbidden", 5*time.Second, func() bool {
		return ts.metric(`eventhub_streams_closed_total{reason="forbidden"}`) == 1
	})

	got := 0
	for {
		f, err := paused.next(10 * time.Second)
		if err != nil {
			break // the end of the stream
		}
		if f.event == "job" {
			if id := jobIDOf(t, f.data); id != fmt.Sprintf("j%d", got) {
				t.Fatalf("event %d is %s", got, id)
			}
			got++
		}
	}
	t.Logf("%v frames written before the revocation, %d read by the client of %d queued", written, got, n)
	if got >= n {
		t.Errorf("the client read all %d events: frames queued before the revocation were written after it", n)
	}
	if after := ts.metric("eventhub_events_delivered_total"); after != written {
		t.Errorf("%v frames written after the revocation", after-written)
	}
}

// TestNoPermissionsKeepsNoUserActor: an identity that may see nothing is
// answered 403, and leaves no user actor behind for a TTL.
func TestNoPermissionsKeepsNoUserActor(t *testing.T) {
	ts := newTestServer(t, actors.Config{PermissionsTTL: time.Hour}, testPermissions)
	for _, path := range []string{"/api/events", "/api/jobs"} {
		if status, body := ts.do("GET", path, "dev:nobody", nil); status != 403 {
			t.Fatalf("GET %s as nobody: %d %s", path, status, body)
		}
	}
	waitFor(t, "no user actor", 5*time.Second, func() bool { return ts.metric("eventhub_users_active") == 0 })
	// One with permissions keeps hers, for the TTL.
	if status, body := ts.do("GET", "/api/jobs", "dev:alice", nil); status != 200 {
		t.Fatalf("GET /api/jobs as alice: %d %s", status, body)
	}
	if got := ts.metric("eventhub_users_active"); got != 1 {
		t.Errorf("eventhub_users_active = %v after alice's request, want 1", got)
	}
}
