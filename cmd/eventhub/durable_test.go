package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// The durability tests run a single hub with its log on disk (--data-dir),
// kill it with kill -9 while publishers publish, start it again on the
// same dir, and check what a user must be able to count on: every event
// that got a 202 is in the log once, in order, with the id it was given;
// an event that got no answer is there at most once; a client resuming
// from any id it saw misses nothing; the job table is what was published;
// and no job is left queued or started by the crash.

// durableEvent is one event of the log as a stream read it back.
type durableEvent struct {
	id     uint64
	job    string
	status string
	seq    string // the publisher's name for the event; empty for the hub's own (interrupted)
	err    string // data.error
}

func parseDurableEvent(f hubtest.Frame) (durableEvent, error) {
	var ev struct {
		JobID, Status string
		Data          struct{ Seq, Error string }
	}
	if err := json.Unmarshal([]byte(f.Data), &ev); err != nil {
		return durableEvent{}, fmt.Errorf("event %s: %v", f.Data, err)
	}
	id, err := strconv.ParseUint(f.ID, 10, 64)
	if err != nil {
		return durableEvent{}, fmt.Errorf("id %q: %v", f.ID, err)
	}
	return durableEvent{id: id, job: ev.JobID, status: ev.Status, seq: ev.Data.Seq, err: ev.Data.Error}, nil
}

// durableUser is the user of every stream of these tests; all events are
// on asset a1, which it may see.
const durableUser = "u0"

// readLog reads the log after after, up to and including upTo, through a
// stream resuming from after: what a client resuming there gets.
func readLog(t *testing.T, addr string, after, upTo uint64) []durableEvent {
	t.Helper()
	if upTo <= after {
		return nil
	}
	s := hubtest.OpenStream(t, addr, "/api/events", "Authorization", "Bearer dev:"+durableUser,
		"Last-Event-ID", strconv.FormatUint(after, 10))
	defer s.Conn.Close()
	var out []durableEvent
	for {
		f, err := s.Next(20 * time.Second)
		if err != nil {
			t.Fatalf("reading the log (%d, %d]: %v after %d events", after, upTo, err, len(out))
		}
		switch f.Event {
		case "reset":
			t.Fatalf("resume from %d: reset %s", after, f.Data)
		case "job":
			ev, err := parseDurableEvent(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
			if ev.id >= upTo {
				return out
			}
		}
	}
}

// snapshotOf returns GET /api/jobs for the user of token tok: the newest
// id, and each job's latest event (at most limit jobs).
func snapshotOf(t *testing.T, addr, tok string, limit int) (uint64, map[string]durableEvent) {
	t.Helper()
	resp, body := hubtest.Request(t, http.MethodGet, "http://"+addr+"/api/jobs?limit="+strconv.Itoa(limit), tok, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/jobs: %d %s", resp.StatusCode, body)
	}
	var snap struct {
		LastEventID uint64 `json:"lastEventId"`
		Jobs        []struct {
			EventID uint64          `json:"eventId"`
			Event   json.RawMessage `json:"event"`
		}
		Truncated bool
	}
	if err := json.Unmarshal([]byte(body), &snap); err != nil || snap.Truncated {
		t.Fatalf("GET /api/jobs: %v (truncated %v)", err, snap.Truncated)
	}
	jobs := map[string]durableEvent{}
	for _, j := range snap.Jobs {
		ev, err := parseDurableEvent(hubtest.Frame{ID: strconv.FormatUint(j.EventID, 10), Data: string(j.Event)})
		if err != nil {
			t.Fatal(err)
		}
		jobs[ev.job] = ev
	}
	return snap.LastEventID, jobs
}

// firstID is the log's first id, as the hub logged it when it opened it.
func firstID(t *testing.T, p *hubtest.Process) uint64 {
	t.Helper()
	for line := range strings.Lines(p.Log()) {
		var l struct {
			Msg     string
			FirstID uint64 `json:"first_id"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "event log opened" {
			return l.FirstID
		}
	}
	t.Fatalf("the hub did not log the log's first id:\n%s", p.Log())
	return 0
}

// durableRecord is what the publishers sent and what was acknowledged.
type durableRecord struct {
	mu     sync.Mutex
	sent   map[string]bool   // every event sent, by seq
	acked  map[string]uint64 // the id of every event acknowledged, by seq
	faults []string
}

func (r *durableRecord) fault(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.faults) < 10 {
		r.faults = append(r.faults, fmt.Sprintf(format, args...))
	}
}

// durablePublisher publishes the events of its jobs one request after
// another, each request 1 to 3 events: job k's queued, started and
// completed are its events 3k, 3k+1 and 3k+2.
type durablePublisher struct {
	name   string
	n      int // the next event's number
	rng    *rand.Rand
	client *http.Client
}

var durableStatuses = [...]string{"queued", "started", "completed"}

// run publishes to addr until ctx is done.
func (pb *durablePublisher) run(ctx context.Context, addr string, rec *durableRecord, acks *atomic.Int64) {
	for ctx.Err() == nil {
		k := 1 + pb.rng.IntN(3)
		var evs, seqs []string
		for i := range k {
			n := pb.n + i
			seq := fmt.Sprintf("%s-%d", pb.name, n)
			seqs = append(seqs, seq)
			evs = append(evs, fmt.Sprintf(`{"type":"growth","jobId":"%s-j%d","status":%q,"timestamp":%q,"data":{"assetId":"a1","seq":%q}}`,
				pb.name, n/3, durableStatuses[n%3], time.Now().UTC().Format(time.RFC3339Nano), seq))
		}
		pb.n += k
		rec.mu.Lock()
		for _, s := range seqs {
			rec.sent[s] = true
		}
		rec.mu.Unlock()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/events", strings.NewReader("["+strings.Join(evs, ",")+"]"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+devPublishKey)
		resp, err := pb.client.Do(req)
		if err != nil {
			// The hub died under it: the events' fate is unknown. A pause
			// before the next, as a publisher would make.
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			if resp.StatusCode < 500 {
				rec.fault("publish %v: %d %s", seqs, resp.StatusCode, body)
			}
			continue
		}
		var ans struct{ IDs []uint64 }
		if err := json.Unmarshal(body, &ans); err != nil || len(ans.IDs) != k {
			rec.fault("publish %v: answer %s", seqs, body)
			continue
		}
		rec.mu.Lock()
		for i, s := range seqs {
			rec.acked[s] = ans.IDs[i]
		}
		rec.mu.Unlock()
		acks.Add(int64(k))
	}
}

// check checks the whole log, read back, against what was published: in
// id order; each acknowledged event once, with its id; each other event
// of a publisher at most once; the hub's own events only the failed ends
// of interrupted jobs. It returns each job's latest event.
func (r *durableRecord) check(t *testing.T, log []durableEvent) map[string]durableEvent {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	latest := map[string]durableEvent{}
	seen := map[string]uint64{}
	for i, ev := range log {
		if i > 0 && ev.id <= log[i-1].id {
			t.Fatalf("the log is out of order: id %d after %d", ev.id, log[i-1].id)
		}
		latest[ev.job] = ev
		if ev.seq == "" {
			if ev.status != "failed" || ev.err != "interrupted" {
				t.Errorf("event %d of job %s (%s, %q) is none of ours and not an interrupted job's end", ev.id, ev.job, ev.status, ev.err)
			}
			continue
		}
		if prev, dup := seen[ev.seq]; dup {
			t.Errorf("event %s is in the log twice: ids %d and %d", ev.seq, prev, ev.id)
		}
		seen[ev.seq] = ev.id
		if !r.sent[ev.seq] {
			t.Errorf("event %s (id %d) is in the log, but was never sent", ev.seq, ev.id)
		}
	}
	missing := 0
	for seq, id := range r.acked {
		if got, ok := seen[seq]; !ok || got != id {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged event %s (id %d) is not in the log (found at %d)", seq, id, got)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged events are not in the log", missing)
	}
	return latest
}

// TestCrashDataDir kills a hub with its log on disk (kill -9) at 20
// random moments while four publishers publish, and starts it again on the
// same dir (alternately with --sync batch and always). After each restart
// the whole log read back holds every acknowledged event once, in order,
// and the others at most once; GET /api/jobs is each job's latest event as
// the log has it; and no job is left queued or started. A client that
// reads throughout, resuming on each restart from the last id it saw, gets
// exactly the log, with no reset, and so does a resume from any id.
func TestCrashDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and starts a hub process 20 times")
	}
	const rounds, publishers = 20, 4
	dir := t.TempDir()
	perms := chaosPermissions(t, 1)
	addr := "127.0.0.1:" + strconv.Itoa(hubtest.FreePort(t))
	hub := &chaosHub{t: t}
	argsFor := func(round int) []string {
		sync := "batch"
		if round%2 == 1 {
			sync = "always"
		}
		return []string{"--permissions", perms, "--data-dir", dir, "--sync", sync, "--drain", "1s",
			"--mailbox-bytes", "64MiB", "--backfill-bytes", "64MiB"}
	}
	rec := &durableRecord{sent: map[string]bool{}, acked: map[string]uint64{}}
	pubs := make([]*durablePublisher, publishers)
	for i := range pubs {
		pubs[i] = &durablePublisher{name: "p" + strconv.Itoa(i), rng: rand.New(rand.NewPCG(uint64(i), rand.Uint64())),
			client: &http.Client{Timeout: 5 * time.Second}}
	}
	client := &chaosStream{user: durableUser}
	ctx, cancel := context.WithCancel(context.Background())
	var clientDone sync.WaitGroup
	defer func() { cancel(); clientDone.Wait() }()

	var first uint64
	var starts []time.Duration // of the restarts after a kill
	var cut float64
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for round := 0; round <= rounds; round++ {
		hub.opts = hubtest.Options{Listen: addr, Args: argsFor(round)}
		took := hub.restart()
		if round > 0 {
			starts = append(starts, took)
		}
		p := hub.p.Load()
		cut += hubtest.Metric(t, p.URL("/metrics"), `eventhub_log_records_cut_total{reason="torn"}`)
		if round == 0 {
			clientDone.Go(func() { client.run(ctx, []*chaosHub{hub}) })
			hubtest.WaitFor(t, "the client's stream", 10*time.Second, client.opened.Load)
		} else {
			if first == 0 {
				first = firstID(t, p)
			}
			last, snap := snapshotOf(t, addr, "dev:"+durableUser, 1000)
			latest := rec.check(t, readLog(t, addr, first-1, last))
			durableSnapshotMatches(t, round, snap, latest)
			for job, ev := range latest {
				if ev.status == "queued" || ev.status == "started" {
					t.Errorf("round %d: job %s is still %s after the restart", round, job, ev.status)
				}
			}
		}
		if round == rounds {
			break
		}
		// Publish, and kill the hub at a moment after the first
		// acknowledgements of the round.
		var acks atomic.Int64
		pubCtx, stopPub := context.WithCancel(ctx)
		var pubsDone sync.WaitGroup
		for _, pb := range pubs {
			pubsDone.Go(func() { pb.run(pubCtx, addr, rec, &acks) })
		}
		hubtest.WaitFor(t, "the round's first acknowledgements", 10*time.Second, func() bool { return acks.Load() >= publishers })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // the random moment, not a wait for something
		hub.kill()
		stopPub()
		pubsDone.Wait()
		if round == rounds/2 {
			tearNewestSegment(t, dir) // as a write cut short by the crash would leave it
		}
	}
	p := hub.p.Load()
	last, _ := snapshotOf(t, addr, "dev:"+durableUser, 1)
	log := readLog(t, addr, first-1, last)

	// The client that read throughout has the log, exactly.
	var want []uint64
	for _, ev := range log {
		want = append(want, ev.id)
	}
	hubtest.WaitFor(t, "the client to catch up", 20*time.Second, func() bool {
		client.mu.Lock()
		defer client.mu.Unlock()
		return len(client.ids) >= len(want)
	})
	client.mu.Lock()
	if !slices.Equal(client.ids, want) {
		t.Errorf("the client that resumed on every restart got %d events, the log has %d", len(client.ids), len(want))
	}
	for _, f := range client.faults {
		t.Errorf("client: %s", f)
	}
	resumes := client.reconnects
	client.mu.Unlock()
	// So does a resume from any id.
	for range 5 {
		i := rng.IntN(len(log))
		if got := readLog(t, addr, log[i].id, last); !slices.Equal(got, log[i+1:]) {
			t.Errorf("a resume from %d got %d events, want the %d after it in the log", log[i].id, len(got), len(log)-i-1)
		}
	}
	for _, f := range rec.faults {
		t.Errorf("publisher: %s", f)
	}
	if cut < 1 {
		t.Errorf("%v torn records cut at the restarts: want at least the one the test left", cut)
	}
	interrupted := 0
	for _, ev := range log {
		if ev.seq == "" {
			interrupted++
		}
	}
	slices.Sort(starts)
	rec.mu.Lock()
	t.Logf("%d kills: %d events sent, %d acknowledged, %d in the log (%d of them the ends of interrupted jobs), %d torn records cut at restarts; the client resumed %d times; a restart took %v (median), %v at most, until ready",
		rounds, len(rec.sent), len(rec.acked), len(log), interrupted, int(cut), resumes,
		starts[len(starts)/2].Round(time.Millisecond), starts[len(starts)-1].Round(time.Millisecond))
	rec.mu.Unlock()
	p.Stop()
}

// tearNewestSegment appends the start of a record to the newest segment
// of dir, a write cut short: its header says 100 bytes of event follow,
// and 20 do.
func tearNewestSegment(t *testing.T, dir string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment in the data dir")
	}
	slices.Sort(segs)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	torn := append([]byte{100, 0, 0, 0}, make([]byte, 12+20)...)
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
}

// durableSnapshotMatches checks GET /api/jobs (the newest 1000 jobs)
// against each job's latest event in the log.
func durableSnapshotMatches(t *testing.T, round int, snap, latest map[string]durableEvent) {
	t.Helper()
	var newest []durableEvent
	for _, ev := range latest {
		newest = append(newest, ev)
	}
	slices.SortFunc(newest, func(a, b durableEvent) int { return cmp.Compare(b.id, a.id) })
	newest = newest[:min(len(newest), 1000)]
	if len(snap) != len(newest) {
		t.Errorf("round %d: GET /api/jobs has %d jobs, the log %d (of the newest 1000)", round, len(snap), len(newest))
	}
	for _, ev := range newest {
		if got, ok := snap[ev.job]; !ok || got != ev {
			t.Errorf("round %d: job %s: GET /api/jobs has %+v, the log's latest is %+v", round, ev.job, got, ev)
		}
	}
}

// TestCrashInterruptsJob: a job that is running when its hub is killed
// (kill -9) ends failed, "interrupted", when the hub starts again; it does
// not stay started, on the stream nor in GET /api/jobs.
func TestCrashInterruptsJob(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a hub process")
	}
	t.Parallel()
	opts := hubtest.Options{Listen: "127.0.0.1:" + strconv.Itoa(hubtest.FreePort(t)), Args: []string{"--data-dir", t.TempDir(), "--drain", "1s"}}
	h := hubtest.StartBinary(t, opts)
	s := hubtest.OpenStream(t, h.Addr, "/api/events", "Authorization", "Bearer dev:alice")
	resp, body := hubtest.Request(t, http.MethodPost, h.URL("/api/jobs"), "dev:alice",
		[]byte(`{"type":"growth","assetId":"a1","params":{"principal":1000,"rate":0.05,"years":10,"delayMs":9000}}`))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	var job struct{ JobID string }
	json.Unmarshal([]byte(body), &job)
	var last string
	for _, want := range []string{"queued", "started"} {
		f := s.NextEvent(t, 10*time.Second)
		if ev, _ := parseDurableEvent(f); ev.job != job.JobID || ev.status != want {
			t.Fatalf("event %s, want job %s %s", f.Data, job.JobID, want)
		}
		last = f.ID
	}
	h.Kill()

	h = hubtest.StartBinary(t, opts)
	s = hubtest.OpenStream(t, h.Addr, "/api/events", "Authorization", "Bearer dev:alice", "Last-Event-ID", last)
	f := s.NextEvent(t, 10*time.Second)
	var end struct {
		JobID, Status string
		Data          struct {
			AssetID    string
			Error      string
			DurationMs *int64
		}
	}
	if err := json.Unmarshal([]byte(f.Data), &end); err != nil || f.Event != "job" || end.JobID != job.JobID || end.Status != "failed" ||
		end.Data.Error != "interrupted" || end.Data.DurationMs == nil || end.Data.AssetID != "a1" {
		t.Fatalf("after the restart: %s %s, want job %s failed, interrupted, with its duration and scope", f.Event, f.Data, job.JobID)
	}
	if _, jobs := snapshotOf(t, h.Addr, "dev:alice", 100); jobs[job.JobID].status != "failed" {
		t.Errorf("GET /api/jobs: job %s is %q, want failed", job.JobID, jobs[job.JobID].status)
	}
	if !strings.Contains(h.Log(), `"msg":"jobs interrupted by a restart ended failed","jobs":1,"first":["`+job.JobID+`"]`) {
		t.Errorf("the restart does not log the interrupted job")
	}
}

// TestDataDirRefusedAtStart: the hub binary exits non-zero, saying why,
// on a data dir with a file of a newer format (naming the file and its
// version) and on one another running hub holds (naming its pid).
func TestDataDirRefusedAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the hub binary")
	}
	t.Parallel()
	exit := func(dir string) (int, string) {
		t.Helper()
		cmd := exec.Command(hubtest.Binary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", dir)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("the hub did not exit with an error: %v\n%s", err, out.String())
		}
		return ee.ExitCode(), out.String()
	}
	newer, segment := newerVersionDataDir(t)
	if code, out := exit(newer); code != 1 || !strings.Contains(out, segment+" is format version 2, this eventhub reads version 1") {
		t.Errorf("a data dir of a newer format: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(segment); len(b) != 64 {
		t.Errorf("the refused segment was changed: %d bytes", len(b))
	}

	held := t.TempDir()
	hubtest.StartBinary(t, hubtest.Options{Args: []string{"--data-dir", held}})
	if code, out := exit(held); code != 1 || !strings.Contains(out, "data dir in use by another eventhub: "+filepath.Join(held, "LOCK")+" is held by pid") {
		t.Errorf("a data dir another hub holds: exit %d\n%s", code, out)
	}
}
