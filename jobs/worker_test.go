package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// waitFor bounds every wait in these tests; nothing here should take long.
const waitFor = 10 * time.Second

// newSystem returns a real actor system with protoactor's logger silenced.
func newSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(sys.Shutdown)
	return sys
}

// recorder stands in for the hub's PublishWithKey: it numbers the events it
// is given and forwards each to a channel, in publish order, and a reader
// groups them by job and checks each was published with its key. Only the test goroutine calls its methods; publish
// may be called from any goroutine.
type recorder struct {
	ch    chan keyedEvent
	byJob map[string][]*Event

	mu     sync.Mutex // guards nextID
	nextID uint64
}

func newRecorder() *recorder {
	return &recorder{ch: make(chan keyedEvent, 10000), byJob: map[string][]*Event{}}
}

// keyedEvent is an event and the idempotency key it was published with.
type keyedEvent struct {
	ev  *Event
	key string
}

func (r *recorder) publish(_ context.Context, key string, events []Event) ([]uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]uint64, len(events))
	for i := range events {
		r.nextID++
		ids[i] = r.nextID
		r.ch <- keyedEvent{&events[i], key} // capacity far above what any test sends: never blocks
	}
	return ids, nil
}

// submit submits job, failing the test if its queued event was not published.
func submit(t *testing.T, w *Workers, job Job) {
	t.Helper()
	if err := w.Submit(context.Background(), job); err != nil {
		t.Errorf("Submit(%s): %v", job.ID, err)
	}
}

// until returns the events of job id up to and including its completed or
// failed event, failing the test at the deadline.
func (r *recorder) until(t *testing.T, id string) []*Event {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		if evs := r.byJob[id]; len(evs) > 0 && evs[len(evs)-1].Status >= Completed {
			return evs
		}
		select {
		case k := <-r.ch:
			ev := k.ev
			// A job's end is published with its key, so that a job run
			// twice in a cluster ends once; nothing else is.
			if want := map[bool]string{true: EndKey(ev.JobID)}[ev.Status >= Completed]; k.key != want {
				t.Errorf("job %s: %v event published with key %q, want %q", ev.JobID, ev.Status, k.key, want)
			}
			r.byJob[ev.JobID] = append(r.byJob[ev.JobID], ev)
		case <-deadline:
			t.Fatalf("job %s: no completed or failed event after %v; got %v", id, waitFor, statuses(r.byJob[id]))
		}
	}
}

func statuses(evs []*Event) []Status {
	var s []Status
	for _, ev := range evs {
		s = append(s, ev.Status)
	}
	return s
}

// checkLifecycle checks the events of one job: queued, started, then end, each
// valid, in time order, carrying the job's scope; it returns the decoded data
// of the last one.
func checkLifecycle(t *testing.T, job Job, evs []*Event, end Status) map[string]any {
	t.Helper()
	if got, want := fmt.Sprint(statuses(evs)), fmt.Sprint([]Status{Queued, Started, end}); got != want {
		t.Fatalf("job %s (%v): statuses %s, want %s", job.ID, job.Type, got, want)
	}
	var last map[string]any
	for i, ev := range evs {
		if err := ev.Validate(); err != nil {
			t.Errorf("%v event: Validate: %v", ev.Status, err)
		}
		if ev.Type != job.Type || ev.JobID != job.ID || ev.AssetID != job.AssetID || ev.ScenarioID != job.ScenarioID {
			t.Errorf("%v event %+v does not match job %+v", ev.Status, ev, job)
		}
		if ev.Timestamp.Location() != time.UTC || (i > 0 && ev.Timestamp.Before(evs[i-1].Timestamp)) {
			t.Errorf("%v event timestamp %v: not UTC or before the previous step", ev.Status, ev.Timestamp)
		}
		// The data must decode as DecodeEvents would, scope and all.
		decoded, err := DecodeEvents(ev.AppendJSON(nil))
		if err != nil {
			t.Fatalf("%v event does not decode: %v", ev.Status, err)
		}
		if d := decoded[0]; d.AssetID != job.AssetID || d.ScenarioID != job.ScenarioID || string(d.Data) != string(ev.Data) {
			t.Errorf("%v event decodes to scope %q/%q data %s", ev.Status, d.AssetID, d.ScenarioID, d.Data)
		}
		last = nil
		if err := json.Unmarshal(ev.Data, &last); err != nil {
			t.Fatalf("%v event data %s: %v", ev.Status, ev.Data, err)
		}
		if i < 2 && len(last) != len(scopeOf(job)) {
			t.Errorf("%v event data %s holds more than the scope", ev.Status, ev.Data)
		}
	}
	if ms, ok := last["durationMs"].(float64); !ok || ms < 0 {
		t.Errorf("%v event data %v: no durationMs", end, last)
	}
	return last
}

func scopeOf(job Job) map[string]string {
	m := map[string]string{}
	if job.AssetID != "" {
		m["assetId"] = job.AssetID
	}
	if job.ScenarioID != "" {
		m["scenarioId"] = job.ScenarioID
	}
	return m
}

// startWorkers starts workers sending to a new recorder, stopped at cleanup.
func startWorkers(t *testing.T, cfg WorkersConfig) (*Workers, *recorder) {
	t.Helper()
	sys := newSystem(t)
	rec := newRecorder()
	cfg.Publish = rec.publish
	w, err := StartWorkers(sys.Root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop) // runs before the recorder's cleanup: events still land
	return w, rec
}

// TestWorkersReportProgress: a job that takes a while publishes started
// again as it goes, with data.progress growing from 0 to 1 and a message,
// at most one every progressEvery, then its end.
func TestWorkersReportProgress(t *testing.T) {
	t.Parallel()
	w, rec := startWorkers(t, WorkersConfig{})
	for _, job := range []Job{
		{ID: "j-matrix", Type: Matrix, AssetID: "a1", ScenarioID: "s1", Params: json.RawMessage(`{"delayMs":600}`)},
		{ID: "j-growth", Type: Growth, AssetID: "a2", Params: json.RawMessage(`{"delayMs":600}`)},
		{ID: "j-prob", Type: Probability, ScenarioID: "s2", Params: json.RawMessage(`{"delayMs":600}`)},
	} {
		submit(t, w, job)
		evs := rec.until(t, job.ID)
		if len(evs) < 5 || evs[0].Status != Queued || evs[len(evs)-1].Status != Completed {
			t.Fatalf("job %s: statuses %v, want queued, started, progress…, completed", job.ID, statuses(evs))
		}
		last := -1.0
		for i, ev := range evs[2 : len(evs)-1] {
			if ev.Status != Started {
				t.Fatalf("job %s: %v among its progress events", job.ID, ev.Status)
			}
			var d struct {
				Progress *float64
				Message  string
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil || d.Progress == nil || d.Message == "" {
				t.Fatalf("job %s: progress event data %s: want progress and message (%v)", job.ID, ev.Data, err)
			}
			if *d.Progress <= last || *d.Progress > 1 {
				t.Errorf("job %s: progress %v after %v: want it to grow, within 0..1", job.ID, *d.Progress, last)
			}
			last = *d.Progress
			if prev := evs[1+i]; ev.Timestamp.Sub(prev.Timestamp) < progressEvery {
				t.Errorf("job %s: progress at %v, %v after the previous event: want at most one every %v", job.ID, ev.Timestamp, ev.Timestamp.Sub(prev.Timestamp), progressEvery)
			}
			if _, err := DecodeEvents(ev.AppendJSON(nil)); err != nil {
				t.Errorf("job %s: a progress event does not pass ingest's checks: %v", job.ID, err)
			}
		}
	}
}

func TestWorkersRunEachKind(t *testing.T) {
	t.Parallel()
	w, rec := startWorkers(t, WorkersConfig{})
	jobs := []Job{
		{ID: "j-matrix", Type: Matrix, AssetID: "a1", ScenarioID: "s1", Params: json.RawMessage(`{"rows":2,"cols":3}`)},
		{ID: "j-growth", Type: Growth, AssetID: "a2", Params: json.RawMessage(`{"principal":100,"rate":0.1,"years":2}`)},
		{ID: "j-prob", Type: Probability, ScenarioID: "s2", Params: json.RawMessage(`{"start":100,"target":50,"years":1,"trials":1000}`)},
		{ID: "j-defaults", Type: Probability, ScenarioID: "s2"},
	}
	for _, job := range jobs {
		submit(t, w, job)
	}
	for _, job := range jobs {
		t.Run(job.ID, func(t *testing.T) {
			data := checkLifecycle(t, job, rec.until(t, job.ID), Completed)
			for k, v := range scopeOf(job) {
				if data[k] != v {
					t.Errorf("data.%s = %v, want %s", k, data[k], v)
				}
			}
			result, ok := data["result"].(map[string]any)
			if !ok {
				t.Fatalf("completed data %v has no result object", data)
			}
			switch job.ID {
			case "j-matrix":
				if grid, _ := result["grid"].([]any); len(grid) != 2 {
					t.Errorf("matrix result %v: want a 2-row grid", result)
				}
			case "j-growth":
				if result["final"] != 121.0 {
					t.Errorf("growth final = %v, want 121", result["final"])
				}
			case "j-prob":
				if p, _ := result["probability"].(float64); p < 0.99 {
					t.Errorf("probability = %v, want ≈ 1", result["probability"])
				}
			case "j-defaults":
				if result["trials"] != 20000.0 {
					t.Errorf("default trials = %v", result["trials"])
				}
			}
		})
	}
}

func TestWorkersExactEvents(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	w, rec := startWorkers(t, WorkersConfig{
		now: func() time.Time { return at },
		run: func(context.Context, Job, Progress) (any, error) { return map[string]int{"answer": 42}, nil },
	})
	submit(t, w, Job{ID: "j-81", Type: Matrix, AssetID: "a1", ScenarioID: "s3", User: "alice"})
	evs := rec.until(t, "j-81")
	want := []string{
		`{"type":"matrix","jobId":"j-81","status":"queued","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","scenarioId":"s3"}}`,
		`{"type":"matrix","jobId":"j-81","status":"started","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","scenarioId":"s3"}}`,
		`{"type":"matrix","jobId":"j-81","status":"completed","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1","scenarioId":"s3","durationMs":0,"result":{"answer":42}}}`,
	}
	if len(evs) != len(want) {
		t.Fatalf("got %v, want 3 events", statuses(evs))
	}
	for i, ev := range evs {
		if got := string(ev.AppendJSON(nil)); got != want[i] {
			t.Errorf("event %d =\n%s\nwant\n%s", i, got, want[i])
		}
	}
}

func TestWorkersFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		job     Job
		run     func(context.Context, Job, Progress) (any, error)
		timeout time.Duration
		err     string // data.error, or its prefix when it ends in "…"
	}{
		{
			name: "bad params",
			job:  Job{ID: "j-bad", Type: Growth, AssetID: "a1", Params: json.RawMessage(`{"years":1000}`)},
			err:  "bad params: years: 1000 is not in [0, 100]",
		},
		{
			name: "unknown param",
			job:  Job{ID: "j-typo", Type: Matrix, AssetID: "a1", ScenarioID: "s1", Params: json.RawMessage(`{"row":3}`)},
			err:  `bad params: unknown param "row"`,
		},
		{
			name: "panic",
			job:  Job{ID: "j-panic", Type: Probability, ScenarioID: "s1"},
			run:  func(context.Context, Job, Progress) (any, error) { panic("boom") },
			err:  "internal error",
		},
		{
			name:    "timeout",
			job:     Job{ID: "j-slow", Type: Probability, ScenarioID: "s1"},
			run:     func(ctx context.Context, _ Job, _ Progress) (any, error) { <-ctx.Done(); return nil, ctx.Err() },
			timeout: 20 * time.Millisecond,
			err:     "timed out after 20ms",
		},
		{
			name: "result that does not encode",
			job:  Job{ID: "j-nan", Type: Growth, AssetID: "a1"},
			run:  func(context.Context, Job, Progress) (any, error) { return map[string]float64{"x": math.NaN()}, nil },
			err:  "result does not encode as JSON: …",
		},
		{
			name: "result too large",
			job:  Job{ID: "j-big", Type: Growth, AssetID: "a1"},
			run:  func(context.Context, Job, Progress) (any, error) { return strings.Repeat("x", MaxDataSize), nil },
			err:  "result is …",
		},
		{
			name: "long error",
			job:  Job{ID: "j-long", Type: Growth, AssetID: "a1"},
			run: func(context.Context, Job, Progress) (any, error) {
				return nil, fmt.Errorf("%s", strings.Repeat("e", 10000))
			},
			err: strings.Repeat("e", maxErrorLen) + "…",
		},
		{
			name: "error with line breaks",
			job:  Job{ID: "j-lines", Type: Growth, AssetID: "a1"},
			run:  func(context.Context, Job, Progress) (any, error) { return nil, fmt.Errorf("a\r\nb\u2028c") },
			err:  "a\r\nb\u2028c",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, rec := startWorkers(t, WorkersConfig{run: tt.run, Timeout: tt.timeout})
			submit(t, w, tt.job)
			data := checkLifecycle(t, tt.job, rec.until(t, tt.job.ID), Failed)
			got, _ := data["error"].(string)
			if prefix, ok := strings.CutSuffix(tt.err, "…"); ok && tt.name != "long error" {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("data.error = %q, want it to start with %q", got, prefix)
				}
			} else if got != tt.err {
				t.Errorf("data.error = %q, want %q", got, tt.err)
			}
			if _, ok := data["result"]; ok {
				t.Errorf("failed data %v has a result", data)
			}
		})
	}
}

func TestWorkersPanicThenNextJob(t *testing.T) {
	t.Parallel()
	// One worker per type: the job after the panic runs on the same worker.
	w, rec := startWorkers(t, WorkersConfig{PerType: 1, run: func(ctx context.Context, job Job, _ Progress) (any, error) {
		if job.ID == "j-panic" {
			var m map[string]int
			//lint:ignore SA5000 the point: a runtime panic, not only a panic(value)
			m["nil map"] = 1
		}
		return compute(ctx, job, noProgress)
	}})
	panicking := Job{ID: "j-panic", Type: Growth, AssetID: "a1"}
	next := Job{ID: "j-next", Type: Growth, AssetID: "a1", Params: json.RawMessage(`{"principal":100,"rate":0,"years":1}`)}
	submit(t, w, panicking)
	submit(t, w, next)
	if data := checkLifecycle(t, panicking, rec.until(t, panicking.ID), Failed); data["error"] != "internal error" {
		t.Errorf("panicking job data = %v", data)
	}
	data := checkLifecycle(t, next, rec.until(t, next.ID), Completed)
	if result, _ := data["result"].(map[string]any); result["final"] != 100.0 {
		t.Errorf("next job data = %v", data)
	}
}

func TestWorkersRunJobsOfATypeInParallel(t *testing.T) {
	t.Parallel()
	running := make(chan string, 2)
	release := make(chan struct{})
	w, rec := startWorkers(t, WorkersConfig{PerType: 2, run: func(ctx context.Context, job Job, _ Progress) (any, error) {
		running <- job.ID
		select {
		case <-release:
			return map[string]bool{"ok": true}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}})
	a := Job{ID: "j-a", Type: Growth, AssetID: "a1"}
	b := Job{ID: "j-b", Type: Growth, AssetID: "a1"}
	submit(t, w, a)
	submit(t, w, b)
	// Both run before either is released: round robin gave them two workers.
	deadline := time.After(waitFor)
	for range 2 {
		select {
		case <-running:
		case <-deadline:
			t.Fatal("two jobs of one type did not run at once on two workers")
		}
	}
	close(release)
	checkLifecycle(t, a, rec.until(t, a.ID), Completed)
	checkLifecycle(t, b, rec.until(t, b.ID), Completed)
}

func TestWorkersConcurrentSubmit(t *testing.T) {
	t.Parallel()
	// One user submits all 80 at once: no per-user budgets here.
	w, rec := startWorkers(t, WorkersConfig{PerType: 3, PerUser: -1, Rate: -1})
	var wg sync.WaitGroup
	var ids []string
	for g := range 8 {
		for i := range 10 {
			ids = append(ids, fmt.Sprintf("j-%d-%d", g, i))
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			for i := range 10 {
				job := DemoJob(rng, "alice", []string{"a1", "a2"}, []string{"s1"})
				job.ID = fmt.Sprintf("j-%d-%d", g, i)
				submit(t, w, job)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		evs := rec.until(t, id)
		if got := fmt.Sprint(statuses(evs)); got != "[queued started completed]" {
			t.Errorf("job %s: %s", id, got)
		}
	}
}

func TestWorkersStopFailsPendingJobs(t *testing.T) {
	t.Parallel()
	running := make(chan string, 10)
	w, rec := startWorkers(t, WorkersConfig{PerType: 1, run: func(ctx context.Context, job Job, _ Progress) (any, error) {
		running <- job.ID
		<-ctx.Done() // runs until Stop cancels it
		return nil, ctx.Err()
	}})
	jobs := []Job{
		{ID: "j-1", Type: Growth, AssetID: "a1"},
		{ID: "j-2", Type: Growth, AssetID: "a1"},
		{ID: "j-3", Type: Growth, AssetID: "a1"},
	}
	for _, job := range jobs {
		submit(t, w, job)
	}
	select {
	case <-running:
	case <-time.After(waitFor):
		t.Fatal("the first job did not start")
	}
	done := make(chan struct{})
	go func() { w.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Stop did not return")
	}
	// The running job and the two waiting behind it all end failed.
	for _, job := range jobs {
		data := checkLifecycle(t, job, rec.until(t, job.ID), Failed)
		if data["error"] != "canceled: workers stopping" {
			t.Errorf("job %s data = %v", job.ID, data)
		}
	}
	// After Stop, a job fails at once.
	late := Job{ID: "j-late", Type: Matrix, AssetID: "a1", ScenarioID: "s1"}
	submit(t, w, late)
	evs := rec.until(t, late.ID)
	if got := fmt.Sprint(statuses(evs)); got != "[queued failed]" {
		t.Fatalf("job after Stop: %s", got)
	}
	var data map[string]any
	if err := json.Unmarshal(evs[1].Data, &data); err != nil || data["error"] != "workers stopped" || data["assetId"] != "a1" {
		t.Errorf("job after Stop: data %s, %v", evs[1].Data, err)
	}
	w.Stop() // idempotent
}

func TestWorkersSubmitInvalidJobPanics(t *testing.T) {
	t.Parallel()
	w, _ := startWorkers(t, WorkersConfig{})
	for _, job := range []Job{
		{Type: Growth, AssetID: "a1"},                 // no id
		{ID: "j-1", AssetID: "a1"},                    // no type
		{ID: "j-1", Type: Matrix, AssetID: "a1"},      // no scenario
		{ID: "j 1", Type: Growth, AssetID: "a1"},      // bad id
		{ID: "j-1", Type: Growth, AssetID: "a\n1"},    // bad asset
		{ID: "j-1", Type: Probability, AssetID: "a1"}, // wrong scope
		{ID: "j-1", Type: Growth, AssetID: "a1", ScenarioID: "s1"},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "BUG: ") {
					t.Errorf("Submit(%+v): recovered %v, want a BUG panic", job, r)
				}
			}()
			submit(t, w, job)
		}()
	}
}

// TestWorkersStopLeavesNoGoroutine is not parallel: it counts every
// goroutine of the process. An idle actor holds no goroutine in protoactor,
// so the workers are caught busy: each running job holds its mailbox's.
func TestWorkersStopLeavesNoGoroutine(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	before := runtime.NumGoroutine()

	const perType = 4
	running := make(chan string, perType*len(Types))
	w, err := StartWorkers(sys.Root, WorkersConfig{Publish: rec.publish, PerType: perType, run: func(ctx context.Context, job Job, _ Progress) (any, error) {
		running <- job.ID
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []string
	perKind := map[Type]int{}
	for len(ids) < perType*len(Types) {
		job := DemoJob(rng, "bob", []string{"a1"}, []string{"s1"})
		if perKind[job.Type] == perType {
			continue // one job per worker, so that every worker is busy
		}
		perKind[job.Type]++
		submit(t, w, job)
		ids = append(ids, job.ID)
	}
	deadline := time.After(waitFor)
	for range ids {
		select {
		case <-running:
		case <-deadline:
			t.Fatal("the jobs did not all start")
		}
	}
	// Each running job holds a goroutine. (Not exactly before+len(ids):
	// before may count a mailbox goroutine that was about to exit.)
	if busy := runtime.NumGoroutine(); busy < before+len(ids)/2 {
		t.Fatalf("%d goroutines with %d jobs running, %d before: the test would prove nothing", busy, len(ids), before)
	}
	w.Stop()
	w.Stop()
	for _, id := range ids {
		if evs := rec.until(t, id); evs[len(evs)-1].Status != Failed {
			t.Errorf("job %s: %v", id, statuses(evs))
		}
	}

	end := time.Now().Add(waitFor)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(end) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Stop, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

func TestDemoJob(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	seen := map[Type]bool{}
	for range 200 {
		job := DemoJob(rng, "carol", []string{"a1", "a2"}, []string{"s1", "s2"})
		if err := job.check(); err != nil {
			t.Fatalf("DemoJob made an invalid job: %v", err)
		}
		if job.User != "carol" {
			t.Fatalf("user = %q", job.User)
		}
		seen[job.Type] = true
		// The params are what DecodeJob would accept, and the kind runs.
		body, _ := json.Marshal(map[string]any{"type": job.Type.String(), "assetId": job.AssetID, "scenarioId": job.ScenarioID, "params": job.Params})
		body = []byte(strings.NewReplacer(`"assetId":"",`, ``, `,"scenarioId":""`, ``).Replace(string(body)))
		if _, err := DecodeJob(body); err != nil {
			t.Fatalf("DecodeJob(%s): %v", body, err)
		}
		if _, err := compute(context.Background(), job, noProgress); err != nil {
			t.Fatalf("DemoJob %+v params %s: %v", job, job.Params, err)
		}
	}
	if len(seen) != len(Types) {
		t.Errorf("200 demo jobs covered only %v", seen)
	}
	// With assets only, only growth can be scoped.
	for range 20 {
		if job := DemoJob(rng, "u", []string{"a1"}, nil); job.Type != Growth {
			t.Fatalf("assets only: got a %v job", job.Type)
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("DemoJob with no ids did not panic")
		}
	}()
	DemoJob(rng, "u", nil, nil)
}

// TestInterrupted: the event that ends a job a crash interrupted is failed,
// "interrupted", keeps the job's scope, and counts its duration from its
// started event (0 for a job that had not started).
func TestInterrupted(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC)
	for _, tc := range []struct {
		latest string
		want   string
	}{
		{`{"type":"matrix","jobId":"j-1","status":"started","timestamp":"2026-11-27T10:00:00.250Z","data":{"assetId":"a1","scenarioId":"s1","attempt":2}}`,
			`{"type":"matrix","jobId":"j-1","status":"failed","timestamp":"2026-11-27T10:00:05.000Z","data":{"assetId":"a1","scenarioId":"s1","durationMs":4750,"error":"interrupted"}}`},
		{`{"type":"probability","jobId":"j-2","status":"queued","timestamp":"2026-11-27T09:00:00Z","data":{"scenarioId":"s2"}}`,
			`{"type":"probability","jobId":"j-2","status":"failed","timestamp":"2026-11-27T10:00:05.000Z","data":{"scenarioId":"s2","durationMs":0,"error":"interrupted"}}`},
	} {
		evs, err := DecodeEvents([]byte(tc.latest))
		if err != nil {
			t.Fatal(err)
		}
		ev := Interrupted(evs[0], now)
		if got := string(ev.AppendJSON(nil)); got != tc.want {
			t.Errorf("interrupted\n got %s\nwant %s", got, tc.want)
		}
	}
}
