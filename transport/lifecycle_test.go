package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

// TestSlowClientResumesWithEverything: a client closed "slow" reads what
// reached it, reconnects with its Last-Event-ID and ends up with every event.
func TestSlowClientResumesWithEverything(t *testing.T) {
	// A replay of 8 MB is within its mailbox's bytes: the resume gets it.
	ts := newTestServer(t, actors.Config{Mailbox: 8, MailboxBytes: 16 << 20, History: 1000}, testPermissions)
	mark := ts.snapshotMark(t, "alice") // where the slow client starts
	slow := ts.openSmallStream("dev:alice", "")
	const total = 200
	pad := strings.Repeat("x", 40<<10)
	for b := range total / 20 {
		var evs []string
		for i := range 20 {
			evs = append(evs, fmt.Sprintf(`{"type":"growth","jobId":"j%d","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":%q}}`, b*20+i, pad))
		}
		ts.publish("[" + strings.Join(evs, ",") + "]")
	}
	waitFor(t, "closed slow", 10*time.Second, func() bool { return ts.metric(`eventhub_streams_closed_total{reason="slow"}`) == 1 })

	var seen []string
	last := strconv.FormatUint(mark, 10) // if it was cut off before its first event
	for {
		f, err := slow.next(5 * time.Second)
		if err != nil {
			break // the stream ended: the rest comes by resuming
		}
		if f.event == "job" {
			seen = append(seen, jobIDOf(t, f.data))
			last = f.id
		}
	}
	if len(seen) == total {
		t.Fatalf("the slow client got everything before it was closed: the test proves nothing")
	}
	again := ts.openStream("dev:alice", "", "Last-Event-ID", last)
	for len(seen) < total {
		f := again.nextEvent(10 * time.Second)
		seen = append(seen, jobIDOf(t, f.data))
	}
	for i, id := range seen {
		if id != fmt.Sprintf("j%d", i) {
			t.Fatalf("event %d is %s: lost or duplicated around it", i, id)
		}
	}
}

// TestJobSnapshot: GET /api/jobs is the latest status of the jobs the user
// may see, newest first, filtered and limited, with the id to resume from.
func TestJobSnapshot(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	ids := ts.publish("[" + strings.Join([]string{
		event("growth", "g1", "queued", "a1", ""),
		event("growth", "g2", "queued", "a2", ""),
		event("matrix", "m1", "queued", "a1", "s1"),
		event("growth", "g1", "started", "a1", ""),
		event("probability", "p1", "failed", "", "s2"), // alice may not
		event("growth", "g1", "completed", "a1", ""),
		event("growth", "g9", "completed", "a9", ""), // alice may not
	}, ",") + "]")
	type entry struct {
		EventID uint64
		Event   struct{ JobID, Status, Type string }
	}
	get := func(query string) (uint64, []string) {
		t.Helper()
		status, body := ts.do("GET", "/api/jobs"+query, "dev:alice", nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", query, status, body)
		}
		var snap struct {
			LastEventID uint64
			Jobs        []entry
		}
		if err := json.Unmarshal([]byte(body), &snap); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		var out []string
		for _, j := range snap.Jobs {
			out = append(out, fmt.Sprintf("%s:%s@%d", j.Event.JobID, j.Event.Status, j.EventID))
		}
		return snap.LastEventID, out
	}
	mark, jobs := get("")
	if mark != ids[len(ids)-1] {
		t.Errorf("lastEventId %d, want the newest id %d", mark, ids[len(ids)-1])
	}
	want := []string{
		fmt.Sprintf("g1:completed@%d", ids[5]),
		fmt.Sprintf("m1:queued@%d", ids[2]),
		fmt.Sprintf("g2:queued@%d", ids[1]),
	}
	if strings.Join(jobs, " ") != strings.Join(want, " ") {
		t.Errorf("jobs %v, want %v", jobs, want)
	}
	if _, jobs := get("?limit=1"); len(jobs) != 1 || jobs[0] != want[0] {
		t.Errorf("limit=1: %v", jobs)
	}
	if _, jobs := get("?types=matrix"); len(jobs) != 1 || !strings.HasPrefix(jobs[0], "m1:") {
		t.Errorf("types=matrix: %v", jobs)
	}
	if _, jobs := get("?statuses=queued"); len(jobs) != 2 {
		t.Errorf("statuses=queued: %v", jobs)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?types=fusion", "?statuses="} {
		if status, body := ts.do("GET", "/api/jobs"+q, "dev:alice", nil); status != 400 {
			t.Errorf("%s: %d %s, want 400", q, status, body)
		} else {
			assertJSONError(t, body)
		}
	}
	if status, _ := ts.do("GET", "/api/jobs", "", nil); status != 401 {
		t.Errorf("no token: %d, want 401", status)
	}
	if status, _ := ts.do("GET", "/api/jobs", "dev:nobody", nil); status != 403 {
		t.Errorf("no permissions: %d, want 403", status)
	}
}

// TestStreamLifetime: a stream ends at its lifetime with a retry hint, and
// the close is counted as such.
func TestStreamLifetime(t *testing.T) {
	ts := newTestServer(t, actors.Config{StreamLifetime: 300 * time.Millisecond, Retry: time.Second, ShutdownRetrySpread: time.Second}, testPermissions)
	c := ts.openStream("dev:alice", "")
	start := time.Now()
	var retries []string
	for {
		f, err := c.next(5 * time.Second)
		if err != nil {
			break
		}
		if f.retry != "" {
			retries = append(retries, f.retry)
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stream lived %v with a 300ms lifetime", took)
	}
	if len(retries) != 2 {
		t.Fatalf("retry hints %v, want the opening one and a closing one", retries)
	}
	if ms, _ := strconv.Atoi(retries[1]); ms < 1000 || ms > 2000 {
		t.Errorf("closing retry %sms, want within [1000, 2000]", retries[1])
	}
	waitFor(t, "lifetime close counted", 5*time.Second, func() bool {
		return ts.metric(`eventhub_streams_closed_total{reason="lifetime"}`) == 1
	})
}

// TestShutdownSpreadsCloses: shutdown ends every stream with a retry hint,
// spread over the first half of the time it is given, not all at once.
func TestShutdownSpreadsCloses(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	const n = 40
	var streams []*sseClient
	for i := range n {
		streams = append(streams, ts.openStream(fmt.Sprintf("dev:%s", []string{"alice", "bob", "ops"}[i%3]), ""))
	}
	waitFor(t, "streams open", 5*time.Second, func() bool { return ts.metric("eventhub_streams_active") == n })
	ends := make([]time.Time, n)
	hints := make([]bool, n)
	var wg sync.WaitGroup
	for i, c := range streams {
		wg.Go(func() {
			c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			rest, _ := io.ReadAll(c.R)
			ends[i] = time.Now()
			hints[i] = strings.Contains(string(rest), "retry: ")
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.hub.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	first, last := ends[0], ends[0]
	for i, e := range ends {
		if !hints[i] {
			t.Errorf("stream %d ended without a retry hint", i)
		}
		if e.Before(first) {
			first = e
		}
		if e.After(last) {
			last = e
		}
	}
	if spread := last.Sub(first); spread < 300*time.Millisecond || last.Sub(start) > 1500*time.Millisecond {
		t.Errorf("closes spread over %v, ending %v after the start; want them over about the first second", spread, last.Sub(start))
	}
}
