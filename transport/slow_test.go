package transport

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/internal/hubtest"
)

// TestSlowClientIsClosedAndOthersAreNot: a client that stops reading is
// closed "slow" and counted, while a reading client of the same user (so
// behind the same user actor) gets every event. The write timeout is a
// minute: if the slow client could hold anyone up, the reader would wait
// that long, past the test's deadline.
func TestSlowClientIsClosedAndOthersAreNot(t *testing.T) {
	ts := newTestServer(t, actors.Config{Mailbox: 16, WriteTimeout: time.Minute}, testPermissions)
	slow := ts.openSmallStream("dev:alice", "")
	fast := ts.openStream("dev:alice", "")

	const batches, perBatch = 20, 16
	received := make(chan string, batches*perBatch)
	go func() {
		for {
			f, err := fast.next(30 * time.Second)
			if err != nil {
				close(received)
				return
			}
			if f.event == "job" {
				received <- jobIDOf(t, f.data)
			}
		}
	}()
	pad := strings.Repeat("x", 50<<10)
	for b := range batches {
		var evs []string
		for i := range perBatch {
			evs = append(evs, fmt.Sprintf(`{"type":"growth","jobId":"j%d-%d","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":%q}}`, b, i, pad))
		}
		ts.publish("[" + strings.Join(evs, ",") + "]")
	}
	deadline := time.After(20 * time.Second)
	for n := 0; n < batches*perBatch; n++ {
		select {
		case id, ok := <-received:
			if !ok {
				t.Fatalf("fast stream ended after %d events", n)
			}
			if want := fmt.Sprintf("j%d-%d", n/perBatch, n%perBatch); id != want {
				t.Fatalf("event %d is %s, want %s", n, id, want)
			}
		case <-deadline:
			t.Fatalf("the reading client got only %d of %d events in 20s", n, batches*perBatch)
		}
	}
	waitFor(t, "slow close counted", 5*time.Second, func() bool {
		return ts.metric(`eventhub_streams_closed_total{reason="slow"}`) == 1
	})
	if got := ts.metric("eventhub_mailbox_overflow_total"); got < 1 {
		t.Errorf("eventhub_mailbox_overflow_total = %v, want ≥ 1", got)
	}
	if got := ts.metric("eventhub_streams_active"); got != 1 {
		t.Errorf("streams active = %v, want 1 (the reader)", got)
	}
	// The slow client, reading at last, finds its stream ended.
	slow.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, slow.R); err != nil && !isReset(err) {
		t.Fatalf("slow client's stream did not end: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || err == io.EOF)
}

// TestClosedStreamsReleaseEverything: after 1,000 streams open and close,
// the goroutine count and eventhub_streams_active are back where they were.
func TestClosedStreamsReleaseEverything(t *testing.T) {
	// A short TTL, so user actors go once their streams have.
	ts := newTestServer(t, actors.Config{PermissionsTTL: 100 * time.Millisecond}, testPermissions)
	// One stream first, so the actor system's lazily started goroutines
	// are part of the baseline.
	warm := ts.openStream("dev:alice", "")
	warm.conn.Close()
	waitFor(t, "warm-up stream closed", 5*time.Second, func() bool { return ts.metric("eventhub_streams_active") == 0 })
	waitFor(t, "warm-up user gone", 5*time.Second, func() bool { return ts.metric("eventhub_users_active") == 0 })
	base := goroutines()

	const n = 1000
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				errs <- err
				return
			}
			user := []string{"alice", "bob", "ops"}[i%3]
			fmt.Fprintf(c, "GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev:%s\r\n\r\n", user)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			head, err := hubtest.ReadHead(bufio.NewReader(c))
			if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
				errs <- fmt.Errorf("stream %d: %q %v", i, head, err)
				c.Close()
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "1000 streams", 10*time.Second, func() bool { return ts.metric("eventhub_streams_active") == n })
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "streams closed", 10*time.Second, func() bool { return ts.metric("eventhub_streams_active") == 0 })
	waitFor(t, "users gone", 10*time.Second, func() bool { return ts.metric("eventhub_users_active") == 0 })
	waitFor(t, "goroutines back to baseline", 10*time.Second, func() bool { return goroutines() <= base })
	if got := ts.metric(`eventhub_streams_closed_total{reason="client_gone"}`); got != n+1 {
		t.Errorf("client_gone closes = %v, want %d", got, n+1)
	}
}

// goroutines counts the live goroutines, less fasthttp's idle request
// workers: fasthttp keeps those for a while after a burst of requests, on
// purpose, and they are not ours to release.
func goroutines() int {
	buf := make([]byte, 4<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "fasthttp.(*workerPool).workerFunc") {
			n++
		}
	}
	return n
}

// TestCongestedClientCatchesUp: a client that stops reading for a while
// fills its socket (its stream leaves the worker pool for a goroutine of its
// own), then reads again and gets everything, in order; meanwhile another
// client gets every event at once.
func TestCongestedClientCatchesUp(t *testing.T) {
	ts := newTestServer(t, actors.Config{Mailbox: 1024, MailboxBytes: 64 << 20, WriteTimeout: time.Minute}, testPermissions)
	paused := ts.openSmallStream("dev:alice", "")
	other := ts.openStream("dev:ops", "")
	const n = 200 // 10 MB: more than the kernel buffers on both sides
	pad := strings.Repeat("x", 50<<10)
	for i := range n {
		ts.publish(fmt.Sprintf(`{"type":"growth","jobId":"j%d","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":%q}}`, i, pad))
		if got := jobIDOf(t, other.nextEvent(5*time.Second).data); got != fmt.Sprintf("j%d", i) {
			t.Fatalf("the reading client got %s, want j%d", got, i)
		}
	}
	for i := range n {
		if got := jobIDOf(t, paused.nextEvent(10*time.Second).data); got != fmt.Sprintf("j%d", i) {
			t.Fatalf("the paused client, reading again, got %s, want j%d", got, i)
		}
	}
	if got := ts.metric(`eventhub_streams_closed_total{reason="slow"}`); got != 0 {
		t.Errorf("%v streams closed slow; the mailbox had room", got)
	}
	// Drained, it is back to normal: a new event arrives at once.
	ts.publish(event("growth", "after", "queued", "a1", ""))
	if got := jobIDOf(t, paused.nextEvent(5*time.Second).data); got != "after" {
		t.Fatalf("after catching up: %s", got)
	}
}

// TestCongestedStreamOutlivesItsDeadline: a stream that was congested wrote
// its backlog under a deadline; once it is back on the worker pool, that
// deadline passing must not end it. (The pool writes without a deadline;
// one left set on the socket would fail the first write after it passed.)
func TestCongestedStreamOutlivesItsDeadline(t *testing.T) {
	const writeTimeout = 2 * time.Second
	ts := newTestServer(t, actors.Config{Mailbox: 1024, MailboxBytes: 64 << 20, WriteTimeout: writeTimeout}, testPermissions)
	paused := ts.openSmallStream("dev:alice", "")
	const n = 120 // 6 MB: more than the kernel buffers on both sides
	pad := strings.Repeat("x", 50<<10)
	for i := range n {
		ts.publish(fmt.Sprintf(`{"type":"growth","jobId":"j%d","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":%q}}`, i, pad))
	}
	for i := range n {
		if got := jobIDOf(t, paused.nextEvent(writeTimeout).data); got != fmt.Sprintf("j%d", i) {
			t.Fatalf("the paused client, reading again, got %s, want j%d", got, i)
		}
	}
	if got := ts.metric(`eventhub_stream_errors_total{reason="write_timeout"}`); got != 0 {
		t.Fatalf("%v write timeouts while the client read", got)
	}
	// What is under test is a deadline passing: there is no event to await.
	time.Sleep(writeTimeout + writeTimeout/2)
	ts.publish(event("growth", "after", "queued", "a1", ""))
	if got := jobIDOf(t, paused.nextEvent(5*time.Second).data); got != "after" {
		t.Fatalf("after the old deadline passed: %s", got)
	}
	if got := ts.metric(`eventhub_streams_closed_total{reason="write_timeout"}`); got != 0 {
		t.Errorf("%v streams closed write_timeout", got)
	}
}
