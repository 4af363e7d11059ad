package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/internal/disklog"
	"github.com/finexbot/eventhub/jobs"
)

// TestJobTableAfterRestart: a hub on a log that keeps every job's latest
// event (the disk log) starts with its whole job table, jobs whose events
// are older than its history included; Unfinished lists the jobs that had
// not ended, oldest update first.
func TestJobTableAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := disklog.Open(disklog.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	step := func(st string, from, to int) {
		var evs []jobs.Event
		for i := from; i < to; i++ {
			evs = append(evs, jobEvent(t, fmt.Sprintf("j%d", i), st))
			want[fmt.Sprintf("j%d", i)] = st
		}
		if _, err := first.Append(context.Background(), "", evs); err != nil {
			t.Fatal(err)
		}
	}
	step("queued", 0, 50)
	step("started", 0, 40)
	step("completed", 0, 30)
	step("failed", 30, 35)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	log, err := disklog.Open(disklog.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cfg := quiet
	cfg.Log, cfg.History = log, 10 // the tail brings 10 events; the job table has the rest from the log
	h := newTestHub(t, cfg)
	snap, err := h.Snapshot(context.Background(), &authz.Permissions{Admin: true}, jobs.Filter{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Jobs) != len(want) {
		t.Fatalf("%d jobs after the restart, want %d", len(snap.Jobs), len(want))
	}
	prev := snap.LastEventID + 1
	for _, js := range snap.Jobs {
		var ev struct{ JobID, Status string }
		json.Unmarshal(js.Event, &ev)
		if want[ev.JobID] != ev.Status || js.ID >= prev {
			t.Errorf("job %s %s (event %d): want %s, newest first", ev.JobID, ev.Status, js.ID, want[ev.JobID])
		}
		prev = js.ID
	}
	unfinished, err := h.Unfinished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range unfinished {
		got = append(got, ev.JobID+"/"+ev.Status.String())
	}
	var expect []string
	for i := 40; i < 50; i++ {
		expect = append(expect, fmt.Sprintf("j%d/queued", i))
	}
	for i := 35; i < 40; i++ {
		expect = append(expect, fmt.Sprintf("j%d/started", i))
	}
	if fmt.Sprint(got) != fmt.Sprint(expect) {
		t.Errorf("unfinished %v, want %v", got, expect)
	}
}

// jobEvent is a growth job's event on asset a1.
func jobEvent(t *testing.T, job, status string) jobs.Event {
	t.Helper()
	evs, err := jobs.DecodeEvents(fmt.Appendf(nil,
		`{"type":"growth","jobId":%q,"status":%q,"timestamp":"2026-01-02T03:04:05Z","data":{"assetId":"a1"}}`, job, status))
	if err != nil {
		t.Fatal(err)
	}
	return evs[0]
}
