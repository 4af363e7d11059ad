package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/clerktest"
)

// clerkAuth is the hub's verifier for k's tokens: offline, with the public
// key, as with CLERK_JWT_KEY.
func clerkAuth(t *testing.T, k *clerktest.Kit) func(string) (authz.Identity, error) {
	t.Helper()
	c, err := authz.NewClerk(authz.ClerkConfig{JWTKey: k.PEM, AuthorizedParties: []string{clerktest.AuthorizedParty}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Authenticate
}

// TestClerkTokenMatrix: every kind of bad token is a 401 with a JSON
// reason, counted by reason, and streams nothing; good ones stream, from
// the header or the __session cookie.
func TestClerkTokenMatrix(t *testing.T) {
	k := clerktest.New(t)
	ts := newTestServerAuth(t, actors.Config{}, `{"users": {"user_alice": {"assets": ["a1"]}}}`, clerkAuth(t, k))
	good := k.Token("user_alice", time.Minute, nil)
	for _, tc := range k.BadTokens("user_alice") {
		// An empty token is no token to the server: it never reaches Clerk.
		reason, says := tc.Reason, tc.Reason
		if tc.Token == "" {
			reason, says = "no_token", authz.ErrNoToken.Error()
		}
		t.Run(tc.Name, func(t *testing.T) {
			before := ts.metric(`eventhub_auth_failures_total{reason="` + reason + `"}`)
			_, status, body := ts.tryStream(nil, tc.Token, "")
			if status != 401 {
				t.Fatalf("status %d %s, want 401", status, body)
			}
			assertJSONError(t, body)
			if !strings.Contains(body, says) {
				t.Errorf("error %s does not give the reason %q", body, says)
			}
			if strings.Contains(body, tc.Token) && len(tc.Token) > 10 {
				t.Errorf("the error echoes the token")
			}
			if got := ts.metric(`eventhub_auth_failures_total{reason="` + reason + `"}`); got != before+1 {
				t.Errorf("auth failures{%s} = %v, want %v", reason, got, before+1)
			}
		})
	}
	if got := ts.metric("eventhub_streams_opened_total"); got != 0 {
		t.Fatalf("%v streams opened by bad tokens", got)
	}
	for _, how := range []string{"header", "cookie"} {
		t.Run("valid in the "+how, func(t *testing.T) {
			var c *sseClient
			if how == "header" {
				c = ts.openStream(good, "")
			} else {
				c = ts.openStream("", "", "Cookie", "__session="+good)
			}
			ts.publish(event("growth", "for-alice-"+how, "queued", "a1", ""))
			if id := jobIDOf(t, c.nextEvent(5*time.Second).data); id != "for-alice-"+how {
				t.Fatalf("got %s", id)
			}
		})
	}
}

// TestStreamEndsAtTokenExpiryAndResumes: a stream lives until its token's
// exp plus the grace, ends with a retry hint, and the client resumes with a
// fresh token, missing nothing.
func TestStreamEndsAtTokenExpiryAndResumes(t *testing.T) {
	k := clerktest.New(t)
	ts := newTestServerAuth(t, actors.Config{ReauthGrace: 500 * time.Millisecond, Retry: time.Second, ShutdownRetrySpread: time.Second},
		`{"users": {"user_alice": {"assets": ["a1"]}}}`, clerkAuth(t, k))
	// Two seconds, not one: exp is whole seconds, so a one-second token may
	// have under a second left, which a loaded machine can spend before the
	// stream is authenticated (a 401 "expired", not what is tested here).
	c := ts.openStream(k.Token("user_alice", 2*time.Second, nil), "")
	start := time.Now()
	ts.publish(event("growth", "before", "queued", "a1", ""))
	last := c.nextEvent(5 * time.Second).id
	var retry string
	for {
		f, err := c.next(10 * time.Second)
		if err != nil {
			break
		}
		if f.retry != "" {
			retry = f.retry
		}
	}
	// exp is whole seconds: the stream ends between 1 and 2s plus the
	// grace (±10%) after it opened.
	if lived := time.Since(start); lived < 400*time.Millisecond || lived > 8*time.Second {
		t.Errorf("stream lived %v; its token expired within 2s, grace 500ms", lived)
	}
	if retry == "" {
		t.Error("the stream ended without a retry hint")
	}
	waitFor(t, "lifetime close counted", 5*time.Second, func() bool {
		return ts.metric(`eventhub_streams_closed_total{reason="lifetime"}`) == 1
	})
	ts.publish(event("growth", "while-away", "queued", "a1", ""))
	again := ts.openStream(k.Token("user_alice", time.Minute, nil), "", "Last-Event-ID", last)
	if id := jobIDOf(t, again.nextEvent(5*time.Second).data); id != "while-away" {
		t.Fatalf("after resuming: %s, want while-away", id)
	}
}

// permBackend is an application backend answering GET ?userId= with one
// user's permissions, or failing when down.
type permBackend struct {
	mu    sync.Mutex
	perms map[string]string
	down  bool
}

func (b *permBackend) set(user, doc string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.perms[user] = doc
}

func (b *permBackend) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

func (b *permBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	// Clerk's Backend API (GET /v1/users/{id}) or a plain backend.
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/users/"); ok {
		doc, found := b.perms[id]
		if !found {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"code":"resource_not_found"}]}`)
			return
		}
		fmt.Fprintf(w, `{"object":"user","id":%q,"public_metadata":{"eventhub":%s}}`, id, doc)
		return
	}
	doc, found := b.perms[r.URL.Query().Get("userId")]
	if !found {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, doc)
}

// TestPermissionChangesWhileStreaming: for each source, a grant and a
// revocation take effect on an open stream (file reload, the invalidate
// endpoint, TTL expiry), a user who loses everything is closed
// "forbidden", and a source that goes down is trusted until the TTL, then
// denied.
func TestPermissionChangesWhileStreaming(t *testing.T) {
	type source struct {
		name   string
		ttl    time.Duration
		setup  func(t *testing.T, b *permBackend) authz.Source // nil: the file
		change func(t *testing.T, ts *testServer, b *permBackend, doc string)
	}
	invalidate := func(t *testing.T, ts *testServer) {
		status, body := ts.do("POST", "/api/permissions/invalidate", testKey, []byte(`{"userId":"alice"}`))
		if status != 200 {
			t.Fatalf("invalidate: %d %s", status, body)
		}
	}
	httpSource := func(t *testing.T, b *permBackend) authz.Source {
		srv := httptest.NewServer(b)
		t.Cleanup(srv.Close)
		s, err := authz.NewHTTPSource(srv.URL+"/perms", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	clerkSource := func(t *testing.T, b *permBackend) authz.Source {
		srv := httptest.NewServer(b)
		t.Cleanup(srv.Close)
		s, err := authz.NewClerkSource("sk_test_1", srv.URL+"/v1", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, src := range []source{
		{"file reload", time.Hour, nil, func(t *testing.T, ts *testServer, _ *permBackend, doc string) {
			if err := os.WriteFile(ts.permFile, []byte(`{"users": {"alice": `+doc+`}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			if changed, err := ts.source.Reload(); !changed || err != nil {
				t.Fatalf("reload: %v %v", changed, err)
			}
			invalidate(t, ts) // what the watcher's InvalidateAll does, but waited for
		}},
		{"http + invalidate endpoint", time.Hour, httpSource, func(t *testing.T, ts *testServer, b *permBackend, doc string) {
			b.set("alice", doc)
			invalidate(t, ts)
		}},
		{"clerk + invalidate endpoint", time.Hour, clerkSource, func(t *testing.T, ts *testServer, b *permBackend, doc string) {
			b.set("alice", doc)
			invalidate(t, ts)
		}},
		{"http + TTL expiry", 200 * time.Millisecond, httpSource, func(t *testing.T, ts *testServer, b *permBackend, doc string) {
			b.set("alice", doc) // picked up by the next background refresh
		}},
	} {
		t.Run(src.name, func(t *testing.T) {
			b := &permBackend{perms: map[string]string{"alice": `{"assets": ["a1"]}`}}
			cfg := actors.Config{PermissionsTTL: src.ttl}
			if src.setup != nil {
				cfg.Permissions = src.setup(t, b)
			}
			ts := newTestServer(t, cfg, `{"users": {"alice": {"assets": ["a1"]}}}`)
			c := ts.openStream("dev:alice", "")
			seen := func(want string) {
				t.Helper()
				if id := jobIDOf(t, c.nextEvent(5*time.Second).data); id != want {
					t.Fatalf("got %s, want %s", id, want)
				}
			}
			ts.publish(event("growth", "a1-first", "queued", "a1", ""))
			seen("a1-first")

			// a1 → a2: from the change on, a1 is gone and a2 arrives. With a
			// TTL the change lands at the next refresh: publish pairs until
			// an a2 one comes through, and check no a1 one follows it.
			src.change(t, ts, b, `{"assets": ["a2"]}`)
			deadline := time.Now().Add(15 * time.Second)
			lastA1 := -1
			for n := 0; ; n++ {
				if time.Now().After(deadline) {
					t.Fatal("the grant of a2 never took effect")
				}
				ts.publish("[" + event("growth", fmt.Sprintf("a1-%d", n), "queued", "a1", "") + "," + event("growth", fmt.Sprintf("a2-%d", n), "queued", "a2", "") + "]")
				// The change may land while this pair's a1 frame waits in
				// the mailbox: the new permissions drop it, and its a2 one
				// was routed under the old. Nothing of the pair comes then:
				// on to the next.
				id, ok := nextJobWithin(t, c, 500*time.Millisecond)
				if !ok {
					continue
				}
				if strings.HasPrefix(id, "a2-") {
					break
				}
				// An a1 one of this pair or, late, of an earlier one; in order.
				k, err := strconv.Atoi(strings.TrimPrefix(id, "a1-"))
				if err != nil || k > n || k <= lastA1 {
					t.Fatalf("before the change took effect: %s after a1-%d, pair %d", id, lastA1, n)
				}
				lastA1 = k
				// A batch is routed as a whole: the switch falls between
				// batches, so this one's a2 was not for the old permissions.
			}
			ts.publish(event("growth", "a1-late", "queued", "a1", ""))
			ts.publish(event("growth", "a2-late", "queued", "a2", ""))
			seen("a2-late")

			// Everything revoked: the stream ends, counted as forbidden.
			src.change(t, ts, b, `{}`)
			for {
				f, err := c.next(5 * time.Second)
				if err != nil {
					break
				}
				if f.event == "job" && !strings.HasPrefix(jobIDOf(t, f.data), "a2-") {
					t.Fatalf("after the revocation: %s", f.data)
				}
			}
			waitFor(t, "forbidden close", 5*time.Second, func() bool {
				return ts.metric(`eventhub_streams_closed_total{reason="forbidden"}`) == 1
			})
			if _, status, _ := ts.tryStream(nil, "dev:alice", ""); status != 403 {
				t.Fatalf("a user without permissions opened a stream: %d", status)
			}
		})
	}

	t.Run("source down: last known until the TTL, then deny", func(t *testing.T) {
		b := &permBackend{perms: map[string]string{"alice": `{"assets": ["a1"]}`}}
		srv := httptest.NewServer(b)
		t.Cleanup(srv.Close)
		src, _ := authz.NewHTTPSource(srv.URL, nil, 0)
		ts := newTestServer(t, actors.Config{Permissions: src, PermissionsTTL: 500 * time.Millisecond}, `{"users": {}}`)
		c := ts.openStream("dev:alice", "")
		b.setDown(true)
		downAt := time.Now()
		// Still served from what the source said last.
		ts.publish(event("growth", "while-down", "queued", "a1", ""))
		if id := jobIDOf(t, c.nextEvent(5*time.Second).data); id != "while-down" {
			t.Fatalf("got %s", id)
		}
		for {
			if _, err := c.next(5 * time.Second); err != nil {
				break
			}
		}
		if d := time.Since(downAt); d < 200*time.Millisecond {
			t.Errorf("denied %v after the source went down; the TTL is 500ms", d)
		}
		waitFor(t, "authz_unavailable close", 5*time.Second, func() bool {
			return ts.metric(`eventhub_streams_closed_total{reason="authz_unavailable"}`) == 1
		})
		if _, status, body := ts.tryStream(nil, "dev:alice", ""); status != 503 {
			t.Fatalf("stream while the source is down: %d %s, want 503", status, body)
		}
		if got := ts.metric(`eventhub_authz_cache_total{result="error"}`); got < 1 {
			t.Errorf("authz cache errors = %v", got)
		}
		b.setDown(false)
		waitFor(t, "source back", 10*time.Second, func() bool {
			_, status, _ := ts.tryStream(nil, "dev:alice", "")
			return status == 200
		})
	})
}

func TestInvalidateEndpointBadInput(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	for _, tc := range []struct {
		key, body string
		status    int
	}{
		{"", `{"userId":"alice"}`, 401},
		{"dev:ops", `{"userId":"alice"}`, 401},
		{testKey, `{"userId":`, 400},
		{testKey, `{"user":"alice"}`, 400},
		{testKey, `{"userId":""}`, 422},
		{testKey, `{"userId":"a b"}`, 422},
		{testKey, `{"userId":"nobody-connected"}`, 200},
	} {
		status, body := ts.do("POST", "/api/permissions/invalidate", tc.key, []byte(tc.body))
		if status != tc.status {
			t.Errorf("%s with key %q: %d %s, want %d", tc.body, tc.key, status, body, tc.status)
		}
	}
}

// nextJobWithin returns the job id of the next event on c, skipping
// comments and retry hints, or false if none comes within d. The stream
// ending fails the test.
func nextJobWithin(t *testing.T, c *sseClient, d time.Duration) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := c.next(time.Until(deadline))
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return "", false
		case err != nil:
			t.Fatalf("waiting for an event: %v", err)
		case f.event == "job":
			return jobIDOf(t, f.data), true
		}
	}
}
