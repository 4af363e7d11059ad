package transport

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

// TestRBACPerType: for each job type, a user with access receives the event,
// users without it do not, and an admin receives everything.
func TestRBACPerType(t *testing.T) {
	// alice: a1,a2 / s1; bob: a2 / s2; ops: admin.
	cases := []struct {
		event string
		sees  []string
	}{
		{event("growth", "g-a1", "queued", "a1", ""), []string{"alice", "ops"}},
		{event("growth", "g-a2", "queued", "a2", ""), []string{"alice", "bob", "ops"}},
		{event("growth", "g-a9", "queued", "a9", ""), []string{"ops"}},
		{event("probability", "p-s1", "queued", "", "s1"), []string{"alice", "ops"}},
		{event("probability", "p-s2", "queued", "", "s2"), []string{"bob", "ops"}},
		{event("matrix", "m-a1s1", "queued", "a1", "s1"), []string{"alice", "ops"}},
		{event("matrix", "m-a2s2", "queued", "a2", "s2"), []string{"bob", "ops"}},
		{event("matrix", "m-a2s1", "queued", "a2", "s1"), []string{"alice", "ops"}},
		{event("matrix", "m-a1s2", "queued", "a1", "s2"), []string{"ops"}}, // alice has a1 but not s2
		// A growth event that also carries a scenario needs both.
		{event("growth", "g-a2s2", "queued", "a2", "s2"), []string{"bob", "ops"}},
	}
	ts := newTestServer(t, actors.Config{}, testPermissions)
	users := []string{"alice", "bob", "ops"}
	streams := map[string]*sseClient{}
	for _, u := range users {
		streams[u] = ts.openStream("dev:"+u, "")
	}
	var all []string
	for _, c := range cases {
		all = append(all, c.event)
	}
	ts.publish("[" + strings.Join(all, ",") + "]")
	// Each user's own end marker, published last.
	ts.publish(event("growth", "end-alice", "queued", "a1", ""))
	ts.publish(event("growth", "end-bob", "queued", "a2", ""))
	ts.publish(event("matrix", "end-ops", "queued", "zz", "zz"))
	for _, u := range users {
		var want []string
		for _, c := range cases {
			if slices.Contains(c.sees, u) {
				want = append(want, jobIDOf(t, c.event))
			}
		}
		got := readUntil(t, streams[u], "end-"+u)
		if !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v", u, got, want)
		}
	}
}

// readUntil reads events until the one with jobId end, and returns the
// jobIds before it, skipping other users' end markers.
func readUntil(t *testing.T, c *sseClient, end string) []string {
	t.Helper()
	var got []string
	for {
		f := c.nextEvent(10 * time.Second)
		id := jobIDOf(t, f.data)
		if id == end {
			return got
		}
		if !strings.HasPrefix(id, "end-") {
			got = append(got, id)
		}
	}
}

func jobIDOf(t *testing.T, data string) string {
	t.Helper()
	var ev struct{ JobID string }
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	return ev.JobID
}

// TestRBACRandomized: many users with random permissions, many events with
// random scopes: every stream receives exactly what its user may see, in
// publication order. The rule is written out again here, independently of
// authz, so a bug there cannot agree with itself.
func TestRBACRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	assets := []string{"a0", "a1", "a2", "a3", "a4", "a5"}
	scenarios := []string{"s0", "s1", "s2", "s3", "s4"}
	type perm struct {
		admin     bool
		assets    map[string]bool
		scenarios map[string]bool
	}
	const nUsers = 40
	perms := map[string]perm{}
	doc := map[string]map[string]any{}
	for i := range nUsers {
		user := fmt.Sprintf("u%d", i)
		p := perm{admin: rng.IntN(10) == 0, assets: map[string]bool{}, scenarios: map[string]bool{}}
		var as, ss []string
		for _, a := range assets {
			if rng.IntN(3) == 0 {
				p.assets[a] = true
				as = append(as, a)
			}
		}
		for _, s := range scenarios {
			if rng.IntN(3) == 0 {
				p.scenarios[s] = true
				ss = append(ss, s)
			}
		}
		// Everyone may see the end-marker scope "zz".
		p.assets["zz"], p.scenarios["zz"] = true, true
		as, ss = append(as, "zz"), append(ss, "zz")
		perms[user] = p
		doc[user] = map[string]any{"admin": p.admin, "assets": as, "scenarios": ss}
	}
	permJSON, _ := json.Marshal(map[string]any{"users": doc})
	ts := newTestServer(t, actors.Config{History: 10, Mailbox: 4096}, string(permJSON))

	streams := map[string]*sseClient{}
	for u := range perms {
		streams[u] = ts.openStream("dev:"+u, "")
	}

	type ev struct{ typ, id, asset, scenario string }
	var events []ev
	var batch []string
	for i := range 600 {
		e := ev{id: fmt.Sprintf("e%d", i)}
		e.typ, e.asset, e.scenario = randomScope(rng, assets, scenarios)
		events = append(events, e)
		batch = append(batch, event(e.typ, e.id, "completed", e.asset, e.scenario))
		if len(batch) == 100 {
			ts.publish("[" + strings.Join(batch, ",") + "]")
			batch = batch[:0]
		}
	}
	ts.publish(event("matrix", "end", "completed", "zz", "zz"))

	allowed := func(p perm, e ev) bool {
		if p.admin {
			return true
		}
		return (e.asset == "" || p.assets[e.asset]) && (e.scenario == "" || p.scenarios[e.scenario])
	}
	for u, p := range perms {
		var want []string
		for _, e := range events {
			if allowed(p, e) {
				want = append(want, e.id)
			}
		}
		got := readUntil(t, streams[u], "end")
		if !slices.Equal(got, want) {
			t.Errorf("%s (admin=%v assets=%v scenarios=%v): got %d events, want %d\ngot  %v\nwant %v",
				u, p.admin, p.assets, p.scenarios, len(got), len(want), got, want)
		}
	}
}

// randomScope picks a job type and the scope it needs, from assets and
// scenarios.
func randomScope(rng *rand.Rand, assets, scenarios []string) (typ, asset, scenario string) {
	switch rng.IntN(3) {
	case 0:
		return "matrix", assets[rng.IntN(len(assets))], scenarios[rng.IntN(len(scenarios))]
	case 1:
		return "growth", assets[rng.IntN(len(assets))], ""
	default:
		return "probability", "", scenarios[rng.IntN(len(scenarios))]
	}
}
