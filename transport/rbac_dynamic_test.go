package transport

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/authz"
)

// TestRBACRandomizedWithChangingPermissions: the randomized no-leak test,
// with users' permissions changing between batches of events (through the
// backend and the invalidate endpoint, which answers once the change is in
// force). Every stream receives exactly what its user might see when each
// event was published: nothing leaks after a revocation, nothing is lost
// after a grant.
func TestRBACRandomizedWithChangingPermissions(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	assets := []string{"a0", "a1", "a2", "a3"}
	scenarios := []string{"s0", "s1", "s2", "s3"}
	type perm struct {
		admin             bool
		assets, scenarios map[string]bool
	}
	randomPerm := func() perm {
		p := perm{admin: rng.IntN(12) == 0, assets: map[string]bool{"zz": true}, scenarios: map[string]bool{"zz": true}}
		for _, a := range assets {
			p.assets[a] = rng.IntN(2) == 0
		}
		for _, s := range scenarios {
			p.scenarios[s] = rng.IntN(2) == 0
		}
		return p
	}
	doc := func(p perm) string {
		var as, ss []string
		for a, ok := range p.assets {
			if ok {
				as = append(as, a)
			}
		}
		for s, ok := range p.scenarios {
			if ok {
				ss = append(ss, s)
			}
		}
		b, _ := json.Marshal(map[string]any{"admin": p.admin, "assets": as, "scenarios": ss})
		return string(b)
	}
	const nUsers, phases, perPhase = 16, 12, 40
	backend := &permBackend{perms: map[string]string{}}
	current := map[string]perm{}
	for i := range nUsers {
		u := fmt.Sprintf("u%d", i)
		current[u] = randomPerm()
		backend.set(u, doc(current[u]))
	}
	srv := httptest.NewServer(backend)
	t.Cleanup(srv.Close)
	src, err := authz.NewHTTPSource(srv.URL, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, actors.Config{Permissions: src, PermissionsTTL: time.Hour, Mailbox: 4096}, `{"users": {}}`)
	streams := map[string]*sseClient{}
	for u := range current {
		streams[u] = ts.openStream("dev:"+u, "")
	}

	type ev struct{ typ, id, asset, scenario string }
	allowed := func(p perm, e ev) bool {
		return p.admin || (e.asset == "" || p.assets[e.asset]) && (e.scenario == "" || p.scenarios[e.scenario])
	}
	want, got := map[string][]string{}, map[string][]string{}
	n := 0
	for phase := range phases {
		var batch []string
		for range perPhase {
			e := ev{id: fmt.Sprintf("p%d-e%d", phase, n)}
			n++
			e.typ, e.asset, e.scenario = randomScope(rng, assets, scenarios)
			batch = append(batch, event(e.typ, e.id, "completed", e.asset, e.scenario))
			for u, p := range current {
				if allowed(p, e) {
					want[u] = append(want[u], e.id)
				}
			}
		}
		ts.publish("[" + strings.Join(batch, ",") + "]")
		// Every stream has what it may see of the batch before permissions
		// change: a revocation applies at once, also to frames still
		// queued, so one racing the batch could take some of it away.
		for u, c := range streams {
			for len(got[u]) < len(want[u]) {
				got[u] = append(got[u], jobIDOf(t, c.nextEvent(10*time.Second).data))
			}
		}
		// Change some users' permissions before the next batch.
		for range 1 + rng.IntN(6) {
			u := fmt.Sprintf("u%d", rng.IntN(nUsers))
			current[u] = randomPerm()
			backend.set(u, doc(current[u]))
			if status, body := ts.do("POST", "/api/permissions/invalidate", testKey, []byte(`{"userId":"`+u+`"}`)); status != 200 {
				t.Fatalf("invalidate %s: %d %s", u, status, body)
			}
		}
	}
	ts.publish(event("matrix", "end", "completed", "zz", "zz"))
	for u, c := range streams {
		got := append(got[u], readUntil(t, c, "end")...)
		if !slices.Equal(got, want[u]) {
			t.Errorf("%s: got %d events, want %d\n got %v\nwant %v", u, len(got), len(want[u]), got, want[u])
		}
	}
}
