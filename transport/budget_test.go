package transport

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

// heapInuse is the heap in use after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// publishLarge publishes n events of about 60 KiB of data each, one job
// each, on asset a1, in batches that fit in a publish's body.
func (ts *testServer) publishLarge(prefix string, n int) {
	ts.t.Helper()
	pad := strings.Repeat("x", 60<<10)
	for i := 0; i < n; {
		var evs []string
		for ; i < n && len(evs) < 15; i++ {
			evs = append(evs, fmt.Sprintf(`{"type":"growth","jobId":"%s%d","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":%q}}`, prefix, i, pad))
		}
		ts.publish("[" + strings.Join(evs, ",") + "]")
	}
}

// TestLargeEventsStayWithinBudgets: events of 60 KiB fill history,
// the memory log and the job table to their byte budgets, not their counts
// (600 events are far below the 10,000 the counts allow): the heap grows
// by at most the sum of the budgets, and history counts what it let go.
func TestLargeEventsStayWithinBudgets(t *testing.T) {
	const historyBytes, jobsBytes = 8 << 20, 8 << 20
	ts := newTestServer(t, actors.Config{HistoryBytes: historyBytes, JobsBytes: jobsBytes}, testPermissions)
	before := heapInuse()
	ts.publishLarge("j", 600) // 36 MB of data
	grown := int64(heapInuse()) - int64(before)
	// History, the memory log and the job table, each full, and slack for
	// the allocator and the test's own garbage.
	bound := int64(historyBytes + historyBytes + jobsBytes + 8<<20)
	t.Logf("heap grew by %.1f MiB for 36 MB of events; bound %.1f MiB", float64(grown)/(1<<20), float64(bound)/(1<<20))
	if grown > bound {
		t.Errorf("heap grew by %d bytes, over the budgets' %d", grown, bound)
	}
	if got := ts.metric("eventhub_history_bytes"); got > historyBytes {
		t.Errorf("eventhub_history_bytes = %v, over --history-bytes %d", got, historyBytes)
	}
	if got := ts.metric("eventhub_job_table_bytes"); got > jobsBytes {
		t.Errorf("eventhub_job_table_bytes = %v, over --jobs-bytes %d", got, jobsBytes)
	}
	if got := ts.metric(`eventhub_history_evicted_total{reason="bytes"}`); got < 400 {
		t.Errorf(`eventhub_history_evicted_total{reason="bytes"} = %v, want most of 600`, got)
	}
	if got := ts.metric(`eventhub_job_table_evicted_total{reason="bytes"}`); got < 400 {
		t.Errorf(`eventhub_job_table_evicted_total{reason="bytes"} = %v, want most of 600`, got)
	}
}

// TestUnreadSnapshotsStayWithinBudget: six answers of 1000 jobs of
// 60 KiB each that the client never reads hold at most six times
// --snapshot-bytes (each answer says it was truncated), and the hub keeps
// serving another user meanwhile.
func TestUnreadSnapshotsStayWithinBudget(t *testing.T) {
	const snapshotBytes = 4 << 20
	ts := newTestServer(t, actors.Config{HistoryBytes: 8 << 20, JobsBytes: 32 << 20, SnapshotBytes: snapshotBytes, WriteTimeout: time.Minute}, testPermissions)
	ts.publishLarge("j", 600) // the job table keeps about 32 MB of them
	before := heapInuse()

	// Six requests that never read their answer: a user has at most four
	// answers being written at once (MaxSnapshotsPerUser's default), so the
	// last two are told to come back.
	const requests, held = 6, 4
	var unread []net.Conn
	for i := range requests {
		conn, err := smallDialer.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		unread = append(unread, conn)
		if _, err := io.WriteString(conn, "GET /api/jobs?limit=1000 HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer dev:alice\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// The answer has begun: its body is built and held until written.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		head := make([]byte, 12)
		want := "HTTP/1.1 200"
		if i >= held {
			want = "HTTP/1.1 429"
		}
		if _, err := io.ReadFull(conn, head); err != nil || string(head) != want {
			t.Fatalf("answer %d: %q, %v; want %q", i, head, err, want)
		}
	}
	grown := int64(heapInuse()) - int64(before)
	bound := int64(held*snapshotBytes + 12<<20) // slack: each connection's buffers, allocation rounding
	t.Logf("%d unread answers hold %.1f MiB of heap; bound %.1f MiB", held, float64(grown)/(1<<20), float64(bound)/(1<<20))
	if grown > bound {
		t.Errorf("heap grew by %d bytes with %d unread answers, over %d", grown, held, bound)
	}
	if got := ts.metric("eventhub_snapshot_truncated_total"); got != held {
		t.Errorf("eventhub_snapshot_truncated_total = %v, want %d", got, held)
	}
	if got := ts.metric("eventhub_snapshots_refused_total"); got != requests-held {
		t.Errorf("eventhub_snapshots_refused_total = %v, want %d", got, requests-held)
	}

	// Bob is served meanwhile. Once alice's clients hang up, her slots come
	// back; her own answer, read, is within budget and says it is truncated.
	status, body := ts.do("GET", "/api/jobs", "dev:bob", nil)
	if status != 200 || !strings.Contains(body, `"jobs":[]`) || strings.Contains(body, "truncated") {
		t.Errorf("bob's snapshot: %d %.200s", status, body)
	}
	for _, c := range unread {
		c.Close()
	}
	waitFor(t, "alice's slots to come back", 10*time.Second, func() bool {
		status, body = ts.do("GET", "/api/jobs?limit=1000", "dev:alice", nil)
		return status == 200
	})
	if status != 200 || len(body) > snapshotBytes || !strings.HasSuffix(body, `],"truncated":true}`+"\n") {
		t.Errorf("alice's snapshot: %d, %d bytes, ends %q", status, len(body), body[max(len(body)-40, 0):])
	}
	if n := strings.Count(body, `"eventId"`); n < 50 {
		t.Errorf("alice's truncated snapshot has %d jobs: want as many as fit in %d bytes", n, snapshotBytes)
	}
}

// TestLargeReplayIsAReset: a client that resumes from before 2.4 MB of
// events it may see, more than its mailbox's bytes, is not sent them all
// at once: its first frame is a reset (expired), then live events follow.
func TestLargeReplayIsAReset(t *testing.T) {
	ts := newTestServer(t, actors.Config{MailboxBytes: 1 << 20}, testPermissions)
	mark := ts.snapshotMark(t, "alice")
	ts.publishLarge("old", 40)
	c := ts.openStream("dev:alice", "", "Last-Event-ID", strconv.FormatUint(mark, 10))
	f := c.nextEvent(5 * time.Second)
	if f.event != "reset" || !strings.Contains(f.data, `"expired"`) {
		t.Fatalf("first frame of the resume: %s %.80s; want a reset (expired)", f.event, f.data)
	}
	if got := ts.metric("eventhub_replays_refused_total"); got != 1 {
		t.Errorf("eventhub_replays_refused_total = %v, want 1", got)
	}
	ts.publish(event("growth", "live", "queued", "a1", ""))
	if got := jobIDOf(t, c.nextEvent(5*time.Second).data); got != "live" {
		t.Errorf("after the reset: %s, want the live event", got)
	}
	// A resume whose replay fits is sent it.
	mark = ts.snapshotMark(t, "alice")
	ts.publishLarge("new", 5)
	c = ts.openStream("dev:alice", "", "Last-Event-ID", strconv.FormatUint(mark, 10))
	for i := range 5 {
		if got := jobIDOf(t, c.nextEvent(5*time.Second).data); got != fmt.Sprintf("new%d", i) {
			t.Fatalf("replay event %d: %s", i, got)
		}
	}
}

// TestSlowStreamClosedByMailboxBytes: a client that stops reading while
// 60 KiB events arrive is closed slow once its mailbox holds a mebibyte,
// long before its 64 frames; a reading client gets every event.
func TestSlowStreamClosedByMailboxBytes(t *testing.T) {
	ts := newTestServer(t, actors.Config{MailboxBytes: 1 << 20, WriteTimeout: time.Minute}, testPermissions)
	slow := ts.openSmallStream("dev:alice", "")
	defer slow.conn.Close()
	reading := ts.openStream("dev:ops", "")
	for i := 0; ts.metric(`eventhub_streams_closed_total{reason="slow"}`) == 0; i++ {
		if i == 200 {
			t.Fatal("200 events of 60 KiB and the stream that does not read is still open")
		}
		ts.publishLarge(fmt.Sprintf("j%d-", i), 1)
		if got := jobIDOf(t, reading.nextEvent(5*time.Second).data); got != fmt.Sprintf("j%d-0", i) {
			t.Fatalf("the reading client got %s", got)
		}
	}
	if got := ts.metric("eventhub_mailbox_byte_overflow_total"); got != 1 {
		t.Errorf("eventhub_mailbox_byte_overflow_total = %v, want 1 (the mailbox's bytes closed it)", got)
	}
}
