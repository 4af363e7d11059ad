package transport

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

// TestConflatingStreamStaysConnected: two clients that stop reading (small
// receive buffers) while 20 jobs each report 100 progress steps and then
// complete. The one that asked for conflation stays connected and, once it
// reads, gets every job's queued and completed, and for each job progress
// values that only grow and end at the last one published, with ids that
// only grow. The other is closed as slow, and counted.
func TestConflatingStreamStaysConnected(t *testing.T) {
	// Mailboxes of 256 frames: room for what the conflating stream keeps
	// (each job's latest progress, its queued and completed, and what is
	// left of the filler) and far from what the plain one is sent.
	ts := newTestServer(t, actors.Config{Mailbox: 256, MailboxBytes: 16 << 20, WriteTimeout: time.Minute}, testPermissions)
	conflating := ts.openSmallStream("dev:alice", "?conflate=1")
	ts.openSmallStream("dev:alice", "") // the plain one, to be closed slow

	// First a filler, more than the kernel buffers of a stream that is not
	// read: from then on what comes waits in the mailboxes.
	pad := strings.Repeat("x", 60<<10)
	for b := range 6 {
		var evs []string
		for i := range 15 {
			evs = append(evs, fmt.Sprintf(`{"type":"growth","jobId":"fill-%d-%d","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1","pad":%q}}`, b, i, pad))
		}
		ts.publish("[" + strings.Join(evs, ",") + "]")
	}
	const jobs, steps = 20, 100
	batch := func(status string, data func(j int) string) {
		var evs []string
		for j := range jobs {
			evs = append(evs, fmt.Sprintf(`{"type":"growth","jobId":"p-%d","status":%q,"timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1"%s}}`, j, status, data(j)))
		}
		ts.publish("[" + strings.Join(evs, ",") + "]")
	}
	batch("queued", func(int) string { return "" })
	for s := 1; s <= steps; s++ {
		batch("started", func(j int) string {
			return fmt.Sprintf(`,"progress":%v,"message":"step %d"`, float64(s)/steps, s)
		})
	}
	batch("completed", func(int) string { return "" })
	waitFor(t, "the plain stream closed as slow", 10*time.Second, func() bool {
		return ts.metric(`eventhub_streams_closed_total{reason="slow"}`) == 1
	})

	type seen struct {
		queued, completed bool
		progress          []float64
	}
	got := map[string]*seen{}
	var last uint64
	for done := 0; done < jobs; {
		f := conflating.nextEvent(20 * time.Second)
		id, err := strconv.ParseUint(f.id, 10, 64)
		if err != nil || id <= last {
			t.Fatalf("id %q after %d: ids must only grow", f.id, last)
		}
		last = id
		var ev struct {
			JobID, Status string
			Data          struct{ Progress *float64 }
		}
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ev.JobID, "fill-") {
			continue
		}
		s := got[ev.JobID]
		if s == nil {
			s = &seen{}
			got[ev.JobID] = s
		}
		switch ev.Status {
		case "queued":
			if s.queued || len(s.progress) > 0 || s.completed {
				t.Fatalf("job %s: queued again or late", ev.JobID)
			}
			s.queued = true
		case "started":
			if !s.queued || s.completed || ev.Data.Progress == nil {
				t.Fatalf("job %s: progress %s out of order or without progress", ev.JobID, f.data)
			}
			if n := len(s.progress); n > 0 && *ev.Data.Progress <= s.progress[n-1] {
				t.Fatalf("job %s: progress %v after %v", ev.JobID, *ev.Data.Progress, s.progress[n-1])
			}
			s.progress = append(s.progress, *ev.Data.Progress)
		case "completed":
			if !s.queued || s.completed {
				t.Fatalf("job %s: completed twice or before queued", ev.JobID)
			}
			s.completed = true
			done++
		}
	}
	progressRead := 0
	for j := range jobs {
		s := got["p-"+strconv.Itoa(j)]
		if s == nil || !s.queued || !s.completed || len(s.progress) == 0 || s.progress[len(s.progress)-1] != 1 {
			t.Fatalf("job p-%d: %+v, want queued, progress ending at 1, completed", j, s)
		}
		progressRead += len(s.progress)
	}
	conflated := ts.metric("eventhub_frames_conflated_total")
	t.Logf("the conflating client got %d of %d progress events; %v conflated", progressRead, jobs*steps, conflated)
	if conflated == 0 || progressRead == jobs*steps {
		t.Errorf("nothing was conflated (%v counted, %d progress events read): the stream never fell behind", conflated, progressRead)
	}
	if got := ts.metric(`eventhub_streams_closed_total{reason="slow"}`); got != 1 {
		t.Errorf("slow closes %v, want 1 (only the plain stream)", got)
	}
}
