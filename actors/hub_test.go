package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/jobs"
)

// quiet is the Config of a test hub that must write only what the test
// publishes: no heartbeat.
var quiet = Config{Heartbeat: -1}

func TestHubAdmit(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, Config{Heartbeat: -1, MaxStreams: 3, MaxStreamsPerUser: 2})
	admit := func(user string, want error) *Ticket {
		t.Helper()
		tk, err := h.Admit(user)
		if !errors.Is(err, want) {
			t.Fatalf("Admit(%s) = %v, want %v", user, err, want)
		}
		if (err == nil) != (tk != nil) {
			t.Fatalf("Admit(%s) returned ticket %v with error %v", user, tk, err)
		}
		return tk
	}
	a1 := admit("alice", nil)
	a2 := admit("alice", nil)
	admit("alice", ErrTooManyUserStreams)
	b1 := admit("bob", nil)
	admit("bob", ErrTooManyStreams)
	admit("carol", ErrTooManyStreams)

	// Release gives the place back, once however often it is called.
	a1.Release()
	a1.Release()
	b2 := admit("bob", nil)
	admit("carol", ErrTooManyStreams)

	// An open stream holds its place until it ends, then gives it back.
	c := newTestConn()
	if err := h.Open(c, a2, h.authorized(t, adminPerms, StreamRequest{User: "alice"})); err != nil {
		t.Fatal(err)
	}
	admit("dave", ErrTooManyStreams) // alice's stream, b1, b2
	b2.Release()
	b1.Release()
	a3 := admit("alice", nil) // alice: the open stream and a3
	admit("alice", ErrTooManyUserStreams)
	a3.Release()
	c.Close() // the client goes away
	waitFor(t, "the closed stream's place given back", func() bool {
		h.admission.mu.Lock()
		defer h.admission.mu.Unlock()
		return h.admission.total == 0
	})
	a4 := admit("alice", nil)
	a5 := admit("alice", nil)
	admit("alice", ErrTooManyUserStreams)
	a4.Release()
	a5.Release()
	h.admission.mu.Lock()
	defer h.admission.mu.Unlock()
	if h.admission.total != 0 || len(h.admission.users) != 0 {
		t.Errorf("everything released, yet admission counts %d streams, users %v", h.admission.total, h.admission.users)
	}
}

func TestHubPublishIDs(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, quiet)
	c := h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	evs := []jobs.Event{
		mkEvent(t, jobs.Growth, "j1", jobs.Queued, "a1", ""),
		mkEvent(t, jobs.Matrix, "j2", jobs.Started, "a1", "s1"),
		mkEvent(t, jobs.Probability, "j3", jobs.Completed, "", "s2"),
		mkEvent(t, jobs.Growth, "j4", jobs.Failed, "a9", ""),
		mkEvent(t, jobs.Growth, "j5", jobs.Queued, "a2", ""),
		mkEvent(t, jobs.Matrix, "j6", jobs.Completed, "a3", "s3"),
	}
	// Ids are positive and each event takes the next one, whoever sends it.
	first := h.publish(t, evs[0])[0]
	if first == 0 {
		t.Fatal("an event got id 0, which means \"before everything\"")
	}
	check := func(got []uint64, want ...uint64) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ids %v, want %v", got, want)
		}
	}
	check(h.publish(t, evs[1], evs[2], evs[3]), first+1, first+2, first+3)
	// In-process workers publish through the same Publish: one door.
	check(h.publish(t, evs[4]), first+4)
	check(h.publish(t, evs[5]), first+5)
	check(h.publish(t), []uint64{}...)

	for i, ev := range evs {
		id := first + uint64(i)
		if got, want := c.nextFrame(t), frameOf(id, &ev); got != want {
			t.Fatalf("frame %d:\n got %q\nwant %q", id, got, want)
		}
	}
	h.waitMetric(t, 6, "eventhub_events_delivered_total")
	if got := h.metric(t, "eventhub_events_ingested_total", "type", "growth", "status", "queued"); got != 2 {
		t.Errorf("ingested growth/queued = %v, want 2", got)
	}
}

// TestHubResume opens streams that resume from several points, with RBAC and
// filters, then publishes live events: each stream gets exactly the events
// after its Last-Event-ID that it may see and asked for, replayed then live,
// in id order, none twice, none missing.
func TestHubResume(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, quiet)
	alice := permsFor([]string{"a1"}, []string{"s1"})
	bob := permsFor([]string{"a2"}, []string{"s2"})
	history := []jobs.Event{
		mkEvent(t, jobs.Growth, "j1", jobs.Queued, "a1", ""),          // 1 alice
		mkEvent(t, jobs.Growth, "j2", jobs.Queued, "a2", ""),          // 2 bob
		mkEvent(t, jobs.Matrix, "j3", jobs.Started, "a1", "s1"),       // 3 alice
		mkEvent(t, jobs.Matrix, "j4", jobs.Started, "a1", "s2"),       // 4 nobody but ops: needs a1 and s2
		mkEvent(t, jobs.Probability, "j5", jobs.Completed, "", "s1"),  // 5 alice, but not her filter
		mkEvent(t, jobs.Growth, "j6", jobs.Failed, "a1", ""),          // 6 alice
		mkEvent(t, jobs.Matrix, "j7", jobs.Completed, "a2", "s1"),     // 7 nobody but ops
		mkEvent(t, jobs.Growth, "j8", jobs.Completed, "a1", ""),       // 8 alice
		mkEvent(t, jobs.Growth, "j9", jobs.Queued, "a1", ""),          // 9 alice (live)
		mkEvent(t, jobs.Probability, "j10", jobs.Started, "", "s1"),   // 10 alice, not her filter
		mkEvent(t, jobs.Matrix, "j11", jobs.Completed, "a2", "s2"),    // 11 bob
		mkEvent(t, jobs.Matrix, "j12", jobs.Completed, "a1", "s1"),    // 12 alice
		mkEvent(t, jobs.Growth, "j13", jobs.Completed, "a1", ""),      // 13 alice
		mkEvent(t, jobs.Growth, "j14", jobs.Completed, "a2", ""),      // 14 bob
		mkEvent(t, jobs.Probability, "j15", jobs.Started, "", "s2"),   // 15 bob, not his filter
		mkEvent(t, jobs.Probability, "j16", jobs.Completed, "", "s2"), // 16 bob
	}
	// Event k (1-based, as numbered above) gets id base+k.
	base := h.publish(t, history[:8]...)[0] - 1
	eventOf := func(id uint64) *jobs.Event { return &history[id-base-1] }

	aliceFilter := mkFilter(t, "types=growth,matrix")
	bobFilter := mkFilter(t, "statuses=queued,completed")
	streams := []struct {
		name string
		req  StreamRequest
		want []uint64 // event numbers
	}{
		{"alice resumes inside the window",
			h.authorized(t, alice, StreamRequest{User: "alice", Filter: aliceFilter, Resume: true, LastEventID: base + 3}),
			[]uint64{6, 8, 9, 12, 13}},
		{"alice resumes from before the first event",
			h.authorized(t, alice, StreamRequest{User: "alice", Filter: aliceFilter, Resume: true, LastEventID: base}),
			[]uint64{1, 3, 6, 8, 9, 12, 13}},
		{"alice does not resume",
			h.authorized(t, alice, StreamRequest{User: "alice", Filter: aliceFilter}),
			[]uint64{9, 12, 13}},
		{"ops resumes at the newest",
			h.authorized(t, adminPerms, StreamRequest{User: "ops", Resume: true, LastEventID: base + 8}),
			[]uint64{9, 10, 11, 12, 13, 14, 15, 16}},
		{"ops resumes from the first",
			h.authorized(t, adminPerms, StreamRequest{User: "ops", Resume: true, LastEventID: base + 1}),
			[]uint64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{"bob resumes from the first",
			h.authorized(t, bob, StreamRequest{User: "bob", Filter: bobFilter, Resume: true, LastEventID: base + 1}),
			[]uint64{2, 11, 14, 16}},
	}
	conns := make([]*testConn, len(streams))
	for i, s := range streams {
		conns[i] = h.open(t, s.req)
	}
	// Published after the streams were opened, from the same goroutine: the
	// hub sees every subscribe before these, so they are live for all.
	h.publish(t, history[8:]...)

	for i, s := range streams {
		t.Run(s.name, func(t *testing.T) {
			c := conns[i]
			var want strings.Builder
			for _, k := range s.want {
				id := base + k
				f := frameOf(id, eventOf(id))
				want.WriteString(f)
				if got := c.nextFrame(t); got != f {
					t.Fatalf("want event %d:\n got %q\nwant %q", id, got, f)
				}
			}
			if s.want == nil {
				// Nothing to wait for: make sure the stream was attached and
				// every event routed past it before looking.
				h.waitMetric(t, 4, "eventhub_users_active")
			}
			if got := c.written(); got != want.String() {
				t.Errorf("stream holds more than its events:\n got %q\nwant %q", got, want.String())
			}
			r := parseSSE(c.written())
			if len(r.events) != len(s.want) {
				t.Errorf("an EventSource reads %d events, want %d", len(r.events), len(s.want))
			}
			if len(s.want) > 0 && r.lastID != strconv.FormatUint(base+s.want[len(s.want)-1], 10) {
				t.Errorf("Last-Event-ID would be %q", r.lastID)
			}
		})
	}
}

// TestHubResumeNoGap resumes streams while events are being published: each
// sees every id after its Last-Event-ID exactly once, in order.
func TestHubResumeNoGap(t *testing.T) {
	t.Parallel()
	const total = 300
	h := newTestHub(t, Config{Heartbeat: -1, Mailbox: 4 * total})
	evs := make([]jobs.Event, total)
	for i := range evs {
		evs[i] = mkEvent(t, jobs.Growth, "j"+strconv.Itoa(i+1), jobs.Started, "a1", "")
	}
	published := make(chan uint64, total) // never blocks the publisher
	var first uint64                      // the id of evs[0], set before it is sent on published
	errs := make(chan error, 1)
	go func() {
		defer close(published)
		for i := range evs {
			ids, err := h.Publish(context.Background(), evs[i:i+1])
			if err != nil {
				errs <- err
				return
			}
			if i == 0 {
				first = ids[0]
			}
			published <- ids[0]
		}
	}()
	type resumed struct {
		from uint64
		c    *testConn
	}
	var streams []resumed
	for id := range published {
		if n := id - first; n%37 == 0 {
			c := h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "u" + strconv.Itoa(len(streams)%3), Resume: true, LastEventID: id}))
			streams = append(streams, resumed{id, c})
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	for _, s := range streams {
		var want strings.Builder
		last := first + total - 1
		for id := s.from + 1; id <= last; id++ {
			want.WriteString(frameOf(id, &evs[id-first]))
		}
		for id := s.from + 1; id <= last; id++ {
			if got := s.c.nextFrame(t); got != frameOf(id, &evs[id-first]) {
				t.Fatalf("stream resumed at %d: want event %d, got %q", s.from, id, got)
			}
		}
		if s.c.written() != want.String() {
			t.Fatalf("stream resumed at %d holds more than events %d..%d", s.from, s.from+1, last)
		}
	}
	if len(streams) < 5 {
		t.Fatalf("only %d streams resumed", len(streams))
	}
}

// TestHubResumeReset: a Last-Event-ID older than the history, or newer than
// the newest event, gets "event: reset" first, with the newest id, then the
// live events; one inside the window gets the replay.
func TestHubResumeReset(t *testing.T) {
	t.Parallel()
	const far = ^uint64(0)
	type want struct {
		reset  string // "", "expired" or "ahead"; the reset carries the newest id
		replay []uint64
	}
	tests := []struct {
		name      string
		published uint64 // events before the stream opens, in a history of 4
		// lastID is the stream's Last-Event-ID, given the id of the first
		// event (for published == 0, the id the live event will get).
		lastID func(first uint64) uint64
		want   want // replay as offsets from first
	}{
		{"no event yet, resume from 0", 0, func(uint64) uint64 { return 0 }, want{reset: "expired"}},
		{"no event yet, resume far ahead", 0, func(uint64) uint64 { return far }, want{reset: "ahead"}},
		{"from 0", 10, func(uint64) uint64 { return 0 }, want{reset: "expired"}},
		{"before everything published", 10, func(f uint64) uint64 { return f - 1 }, want{reset: "expired"}},
		{"just below the window", 10, func(f uint64) uint64 { return f + 4 }, want{reset: "expired"}},
		{"oldest kept minus one", 10, func(f uint64) uint64 { return f + 5 }, want{replay: []uint64{6, 7, 8, 9}}},
		{"inside the window", 10, func(f uint64) uint64 { return f + 7 }, want{replay: []uint64{8, 9}}},
		{"the newest", 10, func(f uint64) uint64 { return f + 9 }, want{}},
		{"one ahead", 10, func(f uint64) uint64 { return f + 10 }, want{reset: "ahead"}},
		{"far ahead", 10, func(uint64) uint64 { return far }, want{reset: "ahead"}},
		{"not yet wrapped, before the first", 3, func(f uint64) uint64 { return f - 1 }, want{replay: []uint64{0, 1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHub(t, Config{Heartbeat: -1, History: 4})
			evs := make([]jobs.Event, tt.published+1)
			for i := range evs {
				evs[i] = mkEvent(t, jobs.Growth, "j"+strconv.Itoa(i+1), jobs.Completed, "a1", "")
			}
			var first uint64
			if tt.published > 0 {
				first = h.publish(t, evs[:tt.published]...)[0]
			}
			var c *testConn
			if tt.published > 0 {
				c = h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "ops", Resume: true, LastEventID: tt.lastID(first)}))
			}
			// With nothing published yet, the first id is known only once
			// the live event has one; lastID does not depend on it then.
			if tt.published == 0 {
				c = h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "ops", Resume: true, LastEventID: tt.lastID(0)}))
			}
			live := h.publish(t, evs[tt.published])[0]
			if tt.published == 0 {
				first = live
			} else if live != first+tt.published {
				t.Fatalf("live event got id %d, want %d", live, first+tt.published)
			}
			var want string
			if tt.want.reset != "" {
				want = string(appendResetFrame(nil, live-1, tt.want.reset))
			}
			for _, off := range tt.want.replay {
				want += frameOf(first+off, &evs[off])
			}
			want += frameOf(live, &evs[tt.published])
			var got string
			for strings.Count(got, "\n\n") < strings.Count(want, "\n\n") {
				got += c.nextFrame(t)
			}
			if got != want {
				t.Fatalf("stream:\n got %q\nwant %q", got, want)
			}
			// A client that reconnects with what it last saw resumes cleanly.
			if r := parseSSE(got); r.lastID != strconv.FormatUint(live, 10) {
				t.Errorf("Last-Event-ID after the stream: %q, want %d", r.lastID, live)
			}
		})
	}
}

// TestHubShutdown closes every stream with pending events flushed, then a
// jittered retry hint within [Retry, Retry+ShutdownRetrySpread].
func TestHubShutdown(t *testing.T) {
	t.Parallel()
	const (
		retry  = 1500 * time.Millisecond
		spread = 1000 * time.Millisecond
		n      = 30
	)
	h := newTestHub(t, Config{Heartbeat: -1, Retry: retry, ShutdownRetrySpread: spread})
	conns := make([]*testConn, n)
	for i := range conns {
		conns[i] = h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "u" + strconv.Itoa(i%4)}))
	}
	ev := mkEvent(t, jobs.Growth, "j1", jobs.Started, "a1", "")
	evFrame := frameOf(h.publish(t, ev)[0], &ev)
	for _, c := range conns {
		if got := c.nextFrame(t); got != evFrame {
			t.Fatalf("frame %q", got)
		}
	}
	if err := h.shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	hints := map[int64]bool{}
	for i, c := range conns {
		if !c.isClosed() {
			t.Fatalf("stream %d still open after Shutdown returned", i)
		}
		rest := c.written()[len(evFrame):]
		v, ok := strings.CutPrefix(rest, "retry: ")
		v, ok2 := strings.CutSuffix(v, "\n\n")
		ms, err := strconv.ParseInt(v, 10, 64)
		if !ok || !ok2 || err != nil {
			t.Fatalf("stream %d ends with %q, want exactly one retry hint", i, rest)
		}
		if ms < retry.Milliseconds() || ms > (retry+spread).Milliseconds() {
			t.Errorf("stream %d: retry %d ms, want %d..%d", i, ms, retry.Milliseconds(), (retry + spread).Milliseconds())
		}
		hints[ms] = true
	}
	if len(hints) < 2 {
		t.Errorf("all %d streams got the same retry hint: not jittered", n)
	}
	if got := h.metric(t, "eventhub_streams_active"); got != 0 {
		t.Errorf("streams_active = %v after Shutdown", got)
	}
	if got := h.metric(t, "eventhub_streams_closed_total", "reason", "shutdown"); got != n {
		t.Errorf("streams closed for shutdown = %v, want %d", got, n)
	}

	// Idempotent: a second call (even with a dead context) waits for
	// nothing and succeeds.
	dead, cancelDead := context.WithCancel(context.Background())
	cancelDead()
	if err := h.Shutdown(dead); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	// Nothing is admitted or published any more.
	if h.Ready() {
		t.Error("Ready after Shutdown")
	}
	if _, err := h.Admit("u0"); !errors.Is(err, ErrClosed) {
		t.Errorf("Admit after Shutdown: %v, want ErrClosed", err)
	}
	if _, err := h.Publish(context.Background(), []jobs.Event{ev}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Shutdown: %v, want ErrClosed", err)
	}
}

// TestHubOpenAfterShutdown: a ticket taken before Shutdown cannot open a
// stream after it; the hub closes the connection and releases the ticket.
func TestHubOpenAfterShutdown(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, Config{Heartbeat: -1, MaxStreams: 1})
	tk, err := h.Admit("alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := newTestConn()
	if err := h.Open(c, tk, StreamRequest{User: "alice"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Shutdown: %v, want ErrClosed", err)
	}
	if !c.isClosed() {
		t.Error("Open after Shutdown left the connection open")
	}
	h.admission.mu.Lock()
	defer h.admission.mu.Unlock()
	if h.admission.total != 0 {
		t.Errorf("Open after Shutdown kept the ticket: %d admitted", h.admission.total)
	}
}

// TestHubShutdownDeadline: a client that stopped reading cannot hold
// Shutdown past its context; the stream is closed anyway.
func TestHubShutdownDeadline(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, quiet)
	stuck := newBlockedConn()
	h.openOn(t, stuck, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	fine := h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	ev := mkEvent(t, jobs.Growth, "j1", jobs.Started, "a1", "")
	evFrame := frameOf(h.publish(t, ev)[0], &ev)
	fine.nextFrame(t)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want a context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > waitTimeout/2 {
		t.Errorf("Shutdown took %v past its deadline", d)
	}
	if !stuck.isClosed() || !fine.isClosed() {
		t.Errorf("streams left open: stuck %v, fine %v", !stuck.isClosed(), !fine.isClosed())
	}
	if !strings.HasPrefix(fine.written()[len(evFrame):], "retry: ") {
		t.Errorf("the reading client got no retry hint: %q", fine.written())
	}
	if got := h.metric(t, "eventhub_streams_active"); got != 0 {
		t.Errorf("streams_active = %v after Shutdown", got)
	}
}

// TestHubUserActors: the hub keeps a user while they have a stream, and
// forgets them a permissions TTL after the last one closes, including
// streams that close before the hub has attached them.
func TestHubUserActors(t *testing.T) {
	t.Parallel()
	h := newTestHubTTL(t, 50*time.Millisecond)
	alice := permsFor([]string{"a1"}, nil)
	bob := permsFor([]string{"a2"}, nil)
	a1 := h.open(t, h.authorized(t, alice, StreamRequest{User: "alice"}))
	a2 := h.open(t, h.authorized(t, alice, StreamRequest{User: "alice"}))
	b1 := h.open(t, h.authorized(t, bob, StreamRequest{User: "bob"}))
	h.waitMetric(t, 2, "eventhub_users_active")
	forAlice := mkEvent(t, jobs.Growth, "ja", jobs.Queued, "a1", "")

	a1.Close()
	h.waitMetric(t, 1, "eventhub_streams_closed_total", "reason", "client_gone")
	b1.Close()
	h.waitMetric(t, 1, "eventhub_users_active") // bob is forgotten, alice is not
	id := h.publish(t, forAlice)[0]
	if got := a2.nextFrame(t); got != frameOf(id, &forAlice) {
		t.Fatalf("alice's remaining stream got %q", got)
	}
	a2.Close()
	h.waitMetric(t, 0, "eventhub_users_active")

	// A user comes back: known again, and events flow again.
	a3 := h.open(t, h.authorized(t, alice, StreamRequest{User: "alice"}))
	h.waitMetric(t, 1, "eventhub_users_active")
	id = h.publish(t, forAlice)[0]
	if got := a3.nextFrame(t); got != frameOf(id, &forAlice) {
		t.Fatalf("alice's new stream got %q", got)
	}

	// Streams that close at once, racing their own attach, never leave a
	// user behind nor orphan a stream opened next to them.
	for range 50 {
		h.open(t, h.authorized(t, alice, StreamRequest{User: "carol"})).Close()
	}
	h.waitMetric(t, 1, "eventhub_streams_active") // a3 only
	h.waitMetric(t, 1, "eventhub_users_active")
	c := h.open(t, h.authorized(t, alice, StreamRequest{User: "carol"}))
	id = h.publish(t, forAlice)[0]
	if got := c.nextFrame(t); got != frameOf(id, &forAlice) {
		t.Fatalf("carol's stream after the churn got %q", got)
	}
	a3.Close()
	c.Close()
	h.waitMetric(t, 0, "eventhub_users_active")
	h.waitMetric(t, 0, "eventhub_streams_active")
}

// TestHubUserActorsPassivate: a user actor runs only while it loads: the
// hub answers authorizations from a passivated user's fresh permissions,
// wakes an actor every TTL to refresh those of a user with streams, and a
// refresh that takes them away ends the stream.
func TestHubUserActorsPassivate(t *testing.T) {
	t.Parallel()
	h := newTestHubTTL(t, time.Hour)
	alice := permsFor([]string{"a1"}, nil)
	h.authorized(t, alice, StreamRequest{User: "alice"})
	h.waitMetric(t, 0, "eventhub_user_actors_running")
	calls := h.src.callCount()
	for range 20 {
		if p, err := h.Authorize(context.Background(), "alice"); err != nil || !p.Equal(alice) {
			t.Fatalf("authorize alice: %v, %v", p, err)
		}
	}
	if got := h.src.callCount(); got != calls {
		t.Errorf("the source was asked %d more times for a fresh cache", got-calls)
	}
	if got := h.metric(t, "eventhub_user_actors_running"); got != 0 {
		t.Errorf("%v user actors running for cache hits", got)
	}
	if got := h.metric(t, "eventhub_authz_cache_total", "result", "hit"); got < 20 {
		t.Errorf("authz hits = %v, want at least 20", got)
	}

	// A short TTL: bob's stream keeps his permissions refreshed.
	h = newTestHubTTL(t, 20*time.Millisecond)
	bob := permsFor([]string{"a1"}, nil)
	c := h.open(t, h.authorized(t, bob, StreamRequest{User: "bob"}))
	calls = h.src.callCount()
	waitFor(t, "three refreshes", func() bool { return h.src.callCount() >= calls+3 })
	h.waitMetric(t, 0, "eventhub_user_actors_running")
	ev := mkEvent(t, jobs.Growth, "j1", jobs.Queued, "a1", "")
	id := h.publish(t, ev)[0]
	if got := c.nextFrame(t); got != frameOf(id, &ev) {
		t.Fatalf("bob's stream got %q", got)
	}
	h.src.set("bob", permsFor(nil, nil)) // nothing: his stream ends
	c.waitClosed(t)
	h.waitMetric(t, 1, "eventhub_streams_closed_total", "reason", "forbidden")
	h.waitMetric(t, 0, "eventhub_user_actors_running")
}

// TestHubStreamAfterRevocation: a stream opened on an authorization from
// before its user lost every permission ends at once (forbidden), like the
// streams the user had.
func TestHubStreamAfterRevocation(t *testing.T) {
	t.Parallel()
	h := newTestHubTTL(t, time.Hour)
	req := h.authorized(t, permsFor([]string{"a1"}, nil), StreamRequest{User: "alice"})
	c1 := h.open(t, req)
	h.src.set("alice", permsFor(nil, nil))
	if err := h.Invalidate(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	c1.waitClosed(t)
	c2 := h.open(t, req) // authorized before the revocation
	c2.waitClosed(t)
	h.waitMetric(t, 2, "eventhub_streams_closed_total", "reason", "forbidden")
	if got := c2.written(); strings.Contains(got, "data:") {
		t.Errorf("the late stream got events: %q", got)
	}
}

// TestHubSlowStream: a client that stops reading has its stream closed as
// slow once its mailbox overflows, counted once, and the other streams get
// every event.
func TestHubSlowStream(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, Config{Heartbeat: -1, Mailbox: 4})
	slow := newBlockedConn()
	h.openOn(t, slow, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	fast := h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	var want strings.Builder
	for i := range 30 {
		ev := mkEvent(t, jobs.Growth, "j"+strconv.Itoa(i), jobs.Started, "a1", "")
		id := h.publish(t, ev)[0]
		f := frameOf(id, &ev)
		want.WriteString(f)
		if got := fast.nextFrame(t); got != f { // one at a time: fast never overflows
			t.Fatalf("fast stream: got %q, want %q", got, f)
		}
	}
	slow.waitClosed(t)
	h.waitMetric(t, 1, "eventhub_streams_closed_total", "reason", "slow")
	if got := h.metric(t, "eventhub_mailbox_overflow_total"); got != 1 {
		t.Errorf("mailbox_overflow_total = %v, want 1 (later frames to a closing stream are dropped, not counted)", got)
	}
	if fast.isClosed() || fast.written() != want.String() {
		t.Errorf("the fast stream was disturbed (closed %v)", fast.isClosed())
	}
}

// TestHubWriteTimeout: a write that does not finish within WriteTimeout
// closes the stream with reason write_timeout (net.Pipe honors deadlines and
// has no buffer: a client that never reads blocks the first write).
func TestHubWriteTimeout(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, Config{Heartbeat: -1, WriteTimeout: 50 * time.Millisecond})
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	h.openOn(t, server, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	h.publish(t, mkEvent(t, jobs.Growth, "j1", jobs.Started, "a1", ""))
	h.waitMetric(t, 1, "eventhub_streams_closed_total", "reason", "write_timeout")
	if got := h.metric(t, "eventhub_stream_errors_total", "reason", "write_timeout"); got != 1 {
		t.Errorf("stream_errors_total{write_timeout} = %v, want 1", got)
	}
	// The hub closed its end: the client sees EOF.
	client.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Error("client end still readable after the stream closed")
	}
}

// TestHubHeartbeat: a quiet stream gets ":ping" within the interval.
func TestHubHeartbeat(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, Config{Heartbeat: 64 * time.Millisecond})
	c := h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	if got := c.nextFrame(t); got != ":ping\n\n" {
		t.Fatalf("first frame of a quiet stream: %q, want a ping", got)
	}
	if r := parseSSE(c.written()); len(r.events) != 0 {
		t.Errorf("a ping dispatched an event: %+v", r)
	}
}

// TestHubStreamLifetime: a stream ends at its lifetime with a jittered retry
// hint, and the client is told to come back rather than dropped.
func TestHubStreamLifetime(t *testing.T) {
	t.Parallel()
	const retry, spread = time.Second, 500 * time.Millisecond
	h := newTestHub(t, Config{Heartbeat: -1, StreamLifetime: 50 * time.Millisecond, Retry: retry, ShutdownRetrySpread: spread})
	c := h.open(t, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))
	c.waitClosed(t)
	h.waitMetric(t, 1, "eventhub_streams_closed_total", "reason", "lifetime")
	v, ok := strings.CutPrefix(c.written(), "retry: ")
	v, ok2 := strings.CutSuffix(v, "\n\n")
	ms, err := strconv.ParseInt(v, 10, 64)
	if !ok || !ok2 || err != nil || ms < retry.Milliseconds() || ms > (retry+spread).Milliseconds() {
		t.Fatalf("stream ended with %q, want one retry hint of %d..%d ms", c.written(), retry.Milliseconds(), (retry + spread).Milliseconds())
	}
}

// TestHubHangUp: on real sockets, a client that sends bytes after its
// request keeps its stream (they are read and dropped), and a client that
// hangs up has its stream closed as client_gone at once, with no reader
// goroutine left behind.
func TestHubHangUp(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, Config{Heartbeat: -1})
	if runtime.GOOS == "linux" && h.hangups == nil {
		t.Fatal("no hangups watcher on Linux: streams fell back to reader goroutines")
	}
	server, client := hubtest.TCPPair(t)
	h.openOn(t, server, h.authorized(t, adminPerms, StreamRequest{User: "ops"}))

	// Chatter, more than one drain reads at once: the stream stays open and
	// still delivers.
	if _, err := client.Write(bytes.Repeat([]byte("x"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	ev := mkEvent(t, jobs.Growth, "j1", jobs.Started, "a1", "")
	id := h.publish(t, ev)[0]
	want := frameOf(id, &ev)
	client.SetReadDeadline(time.Now().Add(waitTimeout))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(want)) {
		n, err := client.Read(buf)
		if err != nil {
			t.Fatalf("stream ended after the client sent bytes (%v); read so far %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if n := h.metric(t, "eventhub_streams_active"); n != 1 {
		t.Fatalf("streams_active = %v after chatter, want 1", n)
	}

	client.Close()
	h.waitMetric(t, 1, "eventhub_streams_closed_total", "reason", "client_gone")
	h.waitMetric(t, 0, "eventhub_streams_active")
}

// blockingLog is a memory log whose Read waits until its context is done:
// a read of the log that takes as long as it is let.
type blockingLog struct {
	*eventlog.Memory
	reading chan struct{} // a Read has begun
	ended   chan error    // a Read has ended, with its context's error
}

func (l *blockingLog) Read(ctx context.Context, _, _ uint64, _ func(eventlog.Record)) error {
	l.reading <- struct{}{}
	<-ctx.Done()
	l.ended <- ctx.Err()
	return ctx.Err()
}

// TestHubBackfillEndsWithItsStream: a resume that must read the log reads
// it only while its stream is open: closing the stream cancels the read at
// once (not at its timeout). A user may have two such reads at once; a
// third resume gets a reset at once, without reading.
func TestHubBackfillEndsWithItsStream(t *testing.T) {
	t.Parallel()
	mem, err := eventlog.OpenMemory(eventlog.MemoryConfig{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	log := &blockingLog{Memory: mem, reading: make(chan struct{}, 8), ended: make(chan error, 8)}
	cfg := quiet
	cfg.Log, cfg.History, cfg.PublishTimeout = log, 2, time.Hour
	h := newTestHub(t, cfg)
	alice := permsFor([]string{"a1"}, nil)
	var ids []uint64
	for i := range 10 {
		ids = append(ids, h.publish(t, mkEvent(t, jobs.Growth, fmt.Sprintf("j%d", i), jobs.Queued, "a1", ""))...)
	}
	resume := StreamRequest{User: "alice", Resume: true, LastEventID: ids[0]}
	var reading []*testConn
	for range 2 {
		reading = append(reading, h.open(t, h.authorized(t, alice, resume)))
		select {
		case <-log.reading:
		case <-time.After(waitTimeout):
			t.Fatal("the resume did not read the log")
		}
	}
	refused := h.open(t, h.authorized(t, alice, resume))
	if got := refused.nextFrame(t); !strings.Contains(got, "event: reset\ndata: {\"reason\":\"expired\"}") {
		t.Errorf("a third resume of the user got %q, want a reset", got)
	}
	h.waitMetric(t, 1, "eventhub_backfills_total", "result", "refused")

	start := time.Now()
	for _, c := range reading {
		c.Close()
	}
	for range reading {
		select {
		case err := <-log.ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("the read ended with %v, want it canceled", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("a read of the log outlived its stream")
		}
	}
	t.Logf("reads canceled %v after their streams closed", time.Since(start))
	h.waitMetric(t, 2, "eventhub_backfills_total", "result", "canceled")
}
