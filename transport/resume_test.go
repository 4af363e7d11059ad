package transport

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/internal/disklog"
)

const resumePermissions = `{"users": {
	"alice": {"assets": ["a1","a2","zz"], "scenarios": ["s1","zz"]},
	"bob":   {"assets": ["a2","a3","zz"], "scenarios": ["s2","s3","zz"]},
	"carol": {"assets": ["a1","zz"], "scenarios": ["s1","s2","s3","zz"]},
	"ops":   {"admin": true}
}}`

// published is what a publisher sent, in id order, for tests to compute what
// each client should have seen.
type published struct {
	id                              uint64
	typ, jobID, status, asset, scen string
}

// visible is the RBAC rule of resumePermissions, written out again.
func visible(user string, p published) bool {
	perms := map[string][2][]string{
		"alice": {{"a1", "a2", "zz"}, {"s1", "zz"}},
		"bob":   {{"a2", "a3", "zz"}, {"s2", "s3", "zz"}},
		"carol": {{"a1", "zz"}, {"s1", "s2", "s3", "zz"}},
	}
	if user == "ops" {
		return true
	}
	pa := perms[user]
	return (p.asset == "" || slices.Contains(pa[0], p.asset)) && (p.scen == "" || slices.Contains(pa[1], p.scen))
}

func randomEvent(rng *rand.Rand, n int) published {
	p := published{jobID: fmt.Sprintf("r%d", n), status: []string{"queued", "started", "completed", "failed"}[rng.IntN(4)]}
	switch rng.IntN(3) {
	case 0:
		p.typ, p.asset, p.scen = "matrix", fmt.Sprintf("a%d", 1+rng.IntN(3)), fmt.Sprintf("s%d", 1+rng.IntN(3))
	case 1:
		p.typ, p.asset = "growth", fmt.Sprintf("a%d", 1+rng.IntN(3))
	default:
		p.typ, p.scen = "probability", fmt.Sprintf("s%d", 1+rng.IntN(3))
	}
	return p
}

// snapshotMark is GET /api/jobs' lastEventId for user.
func (ts *testServer) snapshotMark(t *testing.T, user string) uint64 {
	t.Helper()
	status, body := ts.do("GET", "/api/jobs?limit=1", "dev:"+user, nil)
	if status != 200 {
		t.Fatalf("snapshot: %d %s", status, body)
	}
	var snap struct{ LastEventID uint64 }
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	return snap.LastEventID
}

// TestResumeRandomCycles: clients of different users and filters drop and
// resume 200 times in all while a publisher keeps publishing: what each saw,
// end to end, is exactly what it may see and asked for, in order, once.
func TestResumeRandomCycles(t *testing.T) {
	ts := newTestServer(t, actors.Config{History: 100000, Mailbox: 1024}, resumePermissions)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	clients := []struct {
		user, query string
		match       func(published) bool
	}{
		{"alice", "", func(published) bool { return true }},
		{"bob", "types=growth,matrix", func(p published) bool { return p.typ != "probability" }},
		{"carol", "statuses=completed,failed", func(p published) bool { return p.status == "completed" || p.status == "failed" }},
		{"ops", "assets=a1,zz", func(p published) bool { return p.asset == "a1" || p.asset == "zz" }},
	}
	const cyclesPerClient = 50 // 200 in all
	start := ts.snapshotMark(t, "ops")

	var mu sync.Mutex
	var log []published
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		rng := rand.New(rand.NewPCG(seed, 1))
		for n := 0; ; {
			select {
			case <-stop:
				return
			default:
			}
			var batch []published
			var body []string
			for range 1 + rng.IntN(8) {
				p := randomEvent(rng, n)
				n++
				batch = append(batch, p)
				body = append(body, event(p.typ, p.jobID, p.status, p.asset, p.scen))
			}
			status, resp := ts.do("POST", "/api/events", testKey, []byte("["+strings.Join(body, ",")+"]"))
			if status != 202 {
				t.Errorf("publish: %d %s", status, resp)
				return
			}
			var ids struct{ IDs []uint64 }
			json.Unmarshal([]byte(resp), &ids)
			mu.Lock()
			for i := range batch {
				batch[i].id = ids.IDs[i]
				log = append(log, batch[i])
			}
			mu.Unlock()
			time.Sleep(time.Millisecond) // pace, not synchronisation
		}
	}()

	type result struct {
		got []string
		err error
	}
	results := make([]result, len(clients))
	var wg sync.WaitGroup
	for ci, c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(ci)+2))
			last := start
			var got []string
			for cycle := range cyclesPerClient {
				query := "?" + c.query
				var header []string
				if cycle%2 == 0 {
					header = []string{"Last-Event-ID", strconv.FormatUint(last, 10)}
				} else {
					query += "&lastEventId=" + strconv.FormatUint(last, 10)
				}
				sc, status, body := ts.tryStream(nil, "dev:"+c.user, query, header...)
				if status != 200 {
					results[ci].err = fmt.Errorf("cycle %d: %d %s", cycle, status, body)
					return
				}
				for range 1 + rng.IntN(15) {
					f, err := sc.next(10 * time.Second)
					if err != nil {
						results[ci].err = fmt.Errorf("cycle %d: %v", cycle, err)
						return
					}
					if f.event == "reset" {
						results[ci].err = fmt.Errorf("cycle %d: reset %s", cycle, f.data)
						return
					}
					if f.event != "job" {
						continue
					}
					got = append(got, f.id+"/"+jobIDOf(t, f.data))
					last, _ = strconv.ParseUint(f.id, 10, 64)
				}
				sc.conn.Close()
			}
			results[ci].got = got
		})
	}
	wg.Wait()
	close(stop)
	<-pubDone
	mu.Lock()
	defer mu.Unlock()
	for ci, c := range clients {
		r := results[ci]
		if r.err != nil {
			t.Errorf("%s: %v", c.user, r.err)
			continue
		}
		var want []string
		for _, p := range log {
			if visible(c.user, p) && c.match(p) {
				want = append(want, strconv.FormatUint(p.id, 10)+"/"+p.jobID)
			}
		}
		// The client stopped somewhere in the log: compare up to there.
		if len(r.got) > len(want) || !slices.Equal(r.got, want[:len(r.got)]) {
			t.Errorf("%s saw %d events that are not the first %d of the %d it may see\n got %v\nwant %v",
				c.user, len(r.got), len(r.got), len(want), r.got, want[:min(len(want), len(r.got)+5)])
		}
		if len(r.got) < cyclesPerClient {
			t.Errorf("%s saw only %d events", c.user, len(r.got))
		}
	}
}

// TestResumeReset: a Last-Event-ID below the history window, or above the
// newest id, gets "event: reset" first, carrying the newest id, then live
// events; one inside the window gets exactly what followed it.
func TestResumeReset(t *testing.T) {
	// Each case on a fresh hub: its live event moves the window.
	setup := func(t *testing.T) (*testServer, []uint64) {
		ts := newTestServer(t, actors.Config{History: 5}, testPermissions)
		var evs []string
		for i := range 20 {
			evs = append(evs, event("growth", fmt.Sprintf("j%d", i), "queued", "a1", ""))
		}
		return ts, ts.publish("[" + strings.Join(evs, ",") + "]")
	}
	for _, tc := range []struct {
		name       string
		last       func(ids []uint64) uint64
		wantReset  string
		wantReplay []string
	}{
		{"below the window", func(ids []uint64) uint64 { return ids[0] }, "expired", nil},
		{"just below the window", func(ids []uint64) uint64 { return ids[14] - 1 }, "expired", nil},
		{"oldest kept minus one: full replay", func(ids []uint64) uint64 { return ids[14] }, "", []string{"j15", "j16", "j17", "j18", "j19"}},
		{"inside the window", func(ids []uint64) uint64 { return ids[17] }, "", []string{"j18", "j19"}},
		{"newest: nothing to replay", func(ids []uint64) uint64 { return ids[19] }, "", nil},
		{"above the newest", func(ids []uint64) uint64 { return ids[19] + 100 }, "ahead", nil},
		{"zero", func([]uint64) uint64 { return 0 }, "expired", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, ids := setup(t)
			newest := ids[len(ids)-1]
			c := ts.openStream("dev:alice", "", "Last-Event-ID", strconv.FormatUint(tc.last(ids), 10))
			if tc.wantReset != "" {
				f := c.nextEvent(5 * time.Second)
				if f.event != "reset" || f.data != `{"reason":"`+tc.wantReset+`"}` || f.id != strconv.FormatUint(newest, 10) {
					t.Fatalf("first frame %+v, want reset %q with id %d", f, tc.wantReset, newest)
				}
			}
			for _, want := range tc.wantReplay {
				if got := jobIDOf(t, c.nextEvent(5*time.Second).data); got != want {
					t.Fatalf("replayed %s, want %s", got, want)
				}
			}
			// Then live, with nothing in between.
			live := fmt.Sprintf("live-%d", time.Now().UnixNano())
			ts.publish(event("growth", live, "queued", "a1", ""))
			if got := jobIDOf(t, c.nextEvent(5*time.Second).data); got != live {
				t.Fatalf("after the replay: %s, want %s", got, live)
			}
		})
	}
}

// TestResumeRespectsRBACAndFilters: a replay holds only what the live stream
// would carry.
func TestResumeRespectsRBACAndFilters(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, resumePermissions)
	mark := ts.snapshotMark(t, "bob")
	ts.publish("[" + strings.Join([]string{
		event("growth", "g-a1", "completed", "a1", ""),          // bob may not
		event("growth", "g-a2", "completed", "a2", ""),          // bob may
		event("growth", "g-a3-queued", "queued", "a3", ""),      // filtered out
		event("probability", "p-s2", "failed", "", "s2"),        // bob may
		event("matrix", "m-a2s1", "completed", "a2", "s1"),      // bob may not (s1)
		event("matrix", "m-a3s3", "completed", "a3", "s3"),      // bob may
		event("probability", "p-s1", "completed", "", "s1"),     // bob may not
		event("growth", "g-a3-started", "started", "a3", ""),    // filtered out
		event("matrix", "m-a2s2-queued", "queued", "a2", "s2"),  // filtered out
		event("matrix", "m-a2s2-done", "completed", "a2", "s2"), // bob may
	}, ",") + "]")
	c := ts.openStream("dev:bob", "?statuses=completed,failed&lastEventId="+strconv.FormatUint(mark, 10))
	for _, want := range []string{"g-a2", "p-s2", "m-a3s3", "m-a2s2-done"} {
		if got := jobIDOf(t, c.nextEvent(5*time.Second).data); got != want {
			t.Fatalf("replayed %s, want %s", got, want)
		}
	}
	ts.publish(event("growth", "live", "completed", "a2", ""))
	if got := jobIDOf(t, c.nextEvent(5*time.Second).data); got != "live" {
		t.Fatalf("after the replay: %s, want live", got)
	}
}

// TestRestartWithDataDir: with the event log on disk (--data-dir) a
// client resumes across a restart with no gap, ids go on from where they
// were, and GET /api/jobs shows every job again; without it, it gets a
// reset.
func TestRestartWithDataDir(t *testing.T) {
	dir := t.TempDir()
	// A node with its log on disk, as eventhub serve --data-dir opens it.
	withDisk := func() *testServer {
		log, err := disklog.Open(disklog.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ts := newTestServer(t, actors.Config{Log: log}, testPermissions)
		ts.closeLog = log.Close
		return ts
	}
	first := withDisk()
	var evs []string
	for i := range 10 {
		evs = append(evs, event("growth", fmt.Sprintf("j%d", i), "queued", "a1", ""))
	}
	ids := first.publish("[" + strings.Join(evs, ",") + "]")
	first.stop()

	second := withDisk()
	c := second.openStream("dev:alice", "", "Last-Event-ID", strconv.FormatUint(ids[4], 10))
	for i := 5; i < 10; i++ {
		f := c.nextEvent(5 * time.Second)
		if got, want := f.id+"/"+jobIDOf(t, f.data), fmt.Sprintf("%d/j%d", ids[i], i); got != want {
			t.Fatalf("replayed %s, want %s", got, want)
		}
	}
	next := second.publish(event("growth", "after", "queued", "a1", ""))
	if next[0] != ids[9]+1 {
		t.Errorf("first id after the restart %d, want %d", next[0], ids[9]+1)
	}
	if f := c.nextEvent(5 * time.Second); jobIDOf(t, f.data) != "after" {
		t.Fatalf("live after replay: %s", f.data)
	}
	status, body := second.do("GET", "/api/jobs", "dev:alice", nil)
	var snap struct {
		LastEventID uint64 `json:"lastEventId"`
		Jobs        []struct{ EventID uint64 }
	}
	if err := json.Unmarshal([]byte(body), &snap); status != 200 || err != nil || len(snap.Jobs) != 11 || snap.LastEventID != next[0] {
		t.Errorf("GET /api/jobs after the restart: %d %s (%v): want the 11 jobs, up to %d", status, body, err, next[0])
	}
	second.stop()

	// A restart that lost its history: the client is told to refetch.
	third := newTestServer(t, actors.Config{}, testPermissions)
	third.publish(event("growth", "new", "queued", "a1", ""))
	c = third.openStream("dev:alice", "", "Last-Event-ID", strconv.FormatUint(next[0], 10))
	if f := c.nextEvent(5 * time.Second); f.event != "reset" || f.data != `{"reason":"expired"}` {
		t.Fatalf("first frame after a restart without history: %+v, want reset", f)
	}
}
