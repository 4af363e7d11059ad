package actors

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/finexbot/eventhub/jobs"
)

// BenchmarkHistoryMemory reports what a full history costs: bytes per event
// kept (frame, event and job table entry), for a typical small event, and
// what history and the job table count for it against their byte budgets
// (counted-B/event), which must not be below what it costs.
func BenchmarkHistoryMemory(b *testing.B) {
	const n = 10000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		h := newHistory(n, 0, 1)
		table := newJobTable(n, 0)
		for i := range n {
			ev := &jobs.Event{Type: jobs.Matrix, JobID: fmt.Sprintf("j-%016x", i), Status: jobs.Completed,
				Timestamp: time.Now(), AssetID: "asset-42", ScenarioID: "scenario-7",
				Data: []byte(`{"assetId":"asset-42","scenarioId":"scenario-7","durationMs":12,"result":{"mean":1.234,"min":0.5,"max":2.5}}`)}
			f := newFrame(uint64(i+1), ev)
			h.push(f)
			table.update(f)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/event")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/10k")
		b.ReportMetric(float64(h.bytes+table.bytes)/n, "counted-B/event")
		runtime.KeepAlive(h)
		runtime.KeepAlive(table)
	}
}

// TestFrameSizeIsEnough: frameSize bounds the longest frame, so the hub
// encodes each event in one allocation.
func TestFrameSizeIsEnough(t *testing.T) {
	for _, ev := range []*jobs.Event{
		{Type: jobs.Probability, Status: jobs.Completed, JobID: string(make([]byte, jobs.MaxIDLen)), Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC), Data: []byte(`{"x":1}`)},
		{Type: jobs.Probability, Status: jobs.Completed, JobID: "j"},
	} {
		f := appendEventFrame(nil, ^uint64(0), ev)
		if len(f) > frameSize(ev) {
			t.Errorf("frame of %d bytes, frameSize %d", len(f), frameSize(ev))
		}
	}
}

// BenchmarkIdleUsers reports what the hub keeps for a user without streams
// whose permissions it has cached: their actor passivated, their entry. Their
// permissions (one asset and one scenario each, their own) are the source's
// answer, which the hub keeps as is; the source here holds them too, so they
// are made before and not counted.
func BenchmarkIdleUsers(b *testing.B) {
	const n = 20000
	for b.Loop() {
		h := newTestHub(b, Config{Heartbeat: time.Hour, PermissionsTTL: time.Hour})
		users := make([]string, n)
		for i := range users {
			users[i] = fmt.Sprintf("user_%08d", i)
			h.src.set(users[i], permsFor([]string{fmt.Sprintf("asset-%d", i)}, []string{fmt.Sprintf("scenario-%d", i%50)}))
		}
		before := heapAndStacks()
		for _, u := range users {
			if _, err := h.Authorize(context.Background(), u); err != nil {
				b.Fatal(err)
			}
		}
		h.waitMetric(b, 0, "eventhub_user_actors_running")
		after := heapAndStacks()
		b.ReportMetric(float64(after-before)/n, "B/user")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB/20k")
		if err := h.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
