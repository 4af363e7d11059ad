// Package logtest is the contract of eventlog.Log as a test suite: every
// backend runs it against a real instance of itself (a memory log, a
// JetStream stream on an embedded NATS server, …), so a new backend is
// checked against exactly what the hub relies on.
package logtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/jobs"
)

// Open returns a new, empty log that keeps at most keep events (older ones
// are let go), closed at the test's cleanup.
type Open func(t *testing.T, keep int) eventlog.Log

// wait bounds every wait; a passing test never reaches it.
const wait = 10 * time.Second

// Run runs the contract against logs that open returns.
func Run(t *testing.T, open Open) {
	t.Run("AppendNumbersInOrder", func(t *testing.T) { appendNumbersInOrder(t, open) })
	t.Run("TailDeliversEveryAppendInOrder", func(t *testing.T) { tailDeliversEveryAppendInOrder(t, open) })
	t.Run("TailFromThePast", func(t *testing.T) { tailFromThePast(t, open) })
	t.Run("ReadRange", func(t *testing.T) { readRange(t, open) })
	t.Run("ReadExpired", func(t *testing.T) { readExpired(t, open) })
	t.Run("ConcurrentAppends", func(t *testing.T) { concurrentAppends(t, open) })
	t.Run("StopEndsDelivery", func(t *testing.T) { stopEndsDelivery(t, open) })
}

// Event is a valid event for job id.
func Event(t testing.TB, id string) jobs.Event {
	t.Helper()
	evs, err := jobs.DecodeEvents([]byte(fmt.Sprintf(
		`{"type":"growth","jobId":%q,"status":"queued","timestamp":"2026-01-02T03:04:05Z","data":{"assetId":"a1"}}`, id)))
	if err != nil {
		t.Fatal(err)
	}
	return evs[0]
}

func appendN(t *testing.T, l eventlog.Log, prefix string, n int) []uint64 {
	t.Helper()
	evs := make([]jobs.Event, n)
	for i := range evs {
		evs[i] = Event(t, fmt.Sprintf("%s%d", prefix, i))
	}
	ids, err := l.Append(context.Background(), "", evs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if len(ids) != n {
		t.Fatalf("append %d events: %d ids", n, len(ids))
	}
	return ids
}

// collector gathers what a tail delivers.
type collector struct {
	mu      sync.Mutex
	records []eventlog.Record
	more    chan struct{} // capacity 1: "something arrived", coalesced
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) deliver(r eventlog.Record) {
	c.mu.Lock()
	c.records = append(c.records, r)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// until waits for n records and returns them.
func (c *collector) until(t *testing.T, n int) []eventlog.Record {
	t.Helper()
	deadline := time.After(wait)
	for {
		c.mu.Lock()
		got := append([]eventlog.Record(nil), c.records...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("tail delivered %d records, want %d", len(got), n)
		}
	}
}

func tail(t *testing.T, l eventlog.Log, after uint64) *collector {
	t.Helper()
	c := newCollector()
	stop, err := l.Tail(after, c.deliver)
	if err != nil {
		t.Fatalf("tail: %v", err)
	}
	t.Cleanup(stop)
	return c
}

func last(t *testing.T, l eventlog.Log) uint64 {
	t.Helper()
	_, last, err := l.Bounds(context.Background())
	if err != nil {
		t.Fatalf("bounds: %v", err)
	}
	return last
}

func appendNumbersInOrder(t *testing.T, open Open) {
	l := open(t, 100)
	before := last(t, l)
	ids := appendN(t, l, "j", 3)
	ids = append(ids, appendN(t, l, "k", 2)...)
	for i, id := range ids {
		if id == 0 || id <= before || (i > 0 && id <= ids[i-1]) {
			t.Fatalf("ids %v after %d: not positive and growing", ids, before)
		}
	}
	if got := last(t, l); got != ids[len(ids)-1] {
		t.Errorf("Bounds last = %d, want %d", got, ids[len(ids)-1])
	}
	if ids, err := l.Append(context.Background(), "", nil); err != nil || len(ids) != 0 {
		t.Errorf("append nothing: %v, %v", ids, err)
	}
	if !l.Ready() {
		t.Error("an open log is not ready")
	}
}

func tailDeliversEveryAppendInOrder(t *testing.T, open Open) {
	l := open(t, 100)
	c := tail(t, l, last(t, l))
	ids := appendN(t, l, "j", 5)
	got := c.until(t, 5)
	for i, r := range got {
		if r.ID != ids[i] || r.Event == nil || r.Event.JobID != fmt.Sprintf("j%d", i) {
			t.Fatalf("record %d: %d %+v, want id %d job j%d", i, r.ID, r.Event, ids[i], i)
		}
	}
}

func tailFromThePast(t *testing.T, open Open) {
	l := open(t, 100)
	ids := appendN(t, l, "j", 6)
	c := tail(t, l, ids[2]) // the tail starts after the third
	more := appendN(t, l, "k", 2)
	got := c.until(t, 5)
	want := append(ids[3:], more...)
	for i, r := range got {
		if r.ID != want[i] {
			t.Fatalf("records %v, want ids %v", got, want)
		}
	}
}

func readRange(t *testing.T, open Open) {
	l := open(t, 100)
	ids := appendN(t, l, "j", 6)
	var got []uint64
	if err := l.Read(context.Background(), ids[1], ids[4], func(r eventlog.Record) { got = append(got, r.ID) }); err != nil {
		t.Fatalf("read: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids[2:5]) {
		t.Errorf("read (%d, %d]: %v, want %v", ids[1], ids[4], got, ids[2:5])
	}
	got = nil
	if err := l.Read(context.Background(), ids[5], ids[5], func(r eventlog.Record) { got = append(got, r.ID) }); err != nil || got != nil {
		t.Errorf("an empty range: %v, %v", got, err)
	}
}

func readExpired(t *testing.T, open Open) {
	l := open(t, 4)
	ids := appendN(t, l, "j", 10)
	err := l.Read(context.Background(), ids[0], ids[9], func(eventlog.Record) {})
	if !errors.Is(err, eventlog.ErrExpired) {
		t.Errorf("reading what the log let go: %v, want ErrExpired", err)
	}
	first, _, err := l.Bounds(context.Background())
	if err != nil || first <= ids[0] || first > ids[6] {
		t.Errorf("Bounds first = %d (%v): want the oldest of the last 4 kept", first, err)
	}
	var got []uint64
	if err := l.Read(context.Background(), ids[6], ids[9], func(r eventlog.Record) { got = append(got, r.ID) }); err != nil || len(got) != 3 {
		t.Errorf("reading what is kept: %v, %v", got, err)
	}
}

func concurrentAppends(t *testing.T, open Open) {
	l := open(t, 1000)
	c := tail(t, l, last(t, l))
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(context.Background(), "", []jobs.Event{Event(t, fmt.Sprintf("w%d-%d", w, i))}); err != nil {
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := c.until(t, writers*each)
	seen := map[string]bool{}
	for i, r := range got {
		if i > 0 && r.ID <= got[i-1].ID {
			t.Fatalf("record %d: id %d after %d", i, r.ID, got[i-1].ID)
		}
		if seen[r.Event.JobID] {
			t.Fatalf("job %s delivered twice", r.Event.JobID)
		}
		seen[r.Event.JobID] = true
	}
}

func stopEndsDelivery(t *testing.T, open Open) {
	l := open(t, 100)
	c := newCollector()
	stop, err := l.Tail(last(t, l), c.deliver)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "j", 1)
	c.until(t, 1)
	stop()
	appendN(t, l, "k", 3)
	marker := tail(t, l, last(t, l)-3) // a second tail sees them: they were appended
	marker.until(t, 3)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.records) != 1 {
		t.Errorf("a stopped tail got %d records, want 1", len(c.records))
	}
}
