package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/internal/natsjs"
)

// testNATS is a real NATS server with JetStream, embedded in the test.
type testNATS struct {
	t     *testing.T
	srv   *server.Server
	port  int
	store string
}

func startNATS(t *testing.T) *testNATS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n := &testNATS{t: t, port: port, store: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *testNATS) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.store, NoLog: true, NoSigs: true})
	if err != nil {
		n.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("nats not ready")
	}
	n.srv = srv
}

func (n *testNATS) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *testNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// connect opens a connection that reconnects forever, closed at cleanup.
func (n *testNATS) connect() *nats.Conn {
	n.t.Helper()
	nc, err := nats.Connect(n.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(nc.Close)
	return nc
}

// node is one hub of a cluster on n.
func (n *testNATS) node(cfg actors.Config) *testServer {
	n.t.Helper()
	nc := n.connect()
	reg := prometheus.NewRegistry()
	log, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, Registerer: reg})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { log.Close() })
	cfg.Log, cfg.Registerer = log, reg
	ts := newTestServer(n.t, cfg, testPermissions)
	ts.nc = nc
	return ts
}

// startQueue makes node take jobs from, and submit them to, the cluster's
// work queue, on a connection of its own (returned, to kill it), as the
// serve command does: a job its hub has seen end is not run again.
func (n *testNATS) startQueue(node *testServer, lease time.Duration) *nats.Conn {
	n.t.Helper()
	nc := n.connect()
	q, err := natsjs.StartQueue(context.Background(), node.workers, natsjs.QueueConfig{Conn: nc, Lease: lease, Ended: node.hub.JobEnded})
	if err != nil {
		n.t.Fatal(err)
	}
	node.queue = q
	node.submit = q.Submit
	return nc
}

// jobSteps reads a job's events from c up to its completed or failed one,
// leaving out its progress (started again, with data.progress).
func jobSteps(t *testing.T, c *sseClient, jobID string) []string {
	t.Helper()
	var steps []string
	for {
		f := c.nextEvent(20 * time.Second)
		var ev struct {
			JobID, Status string
			Data          struct {
				Attempt  int
				Progress *float64
			}
		}
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.JobID != jobID || ev.Data.Progress != nil {
			continue
		}
		step := ev.Status
		if ev.Data.Attempt > 0 {
			step += fmt.Sprintf("#%d", ev.Data.Attempt)
		}
		steps = append(steps, step)
		if ev.Status == "completed" || ev.Status == "failed" {
			return steps
		}
	}
}

// nothingMore publishes a marker on node and fails the test unless it is
// the next event watch reads: nothing of a job came after its end (after
// what).
func nothingMore(t *testing.T, node *testServer, watch *sseClient, after string) {
	t.Helper()
	node.publish(event("growth", "marker", "queued", "a1", ""))
	if f := watch.nextEvent(10 * time.Second); jobIDOf(t, f.data) != "marker" {
		t.Fatalf("after %s: %s, want the marker (did a job run or end twice?)", after, f.data)
	}
}

func submitJob(t *testing.T, node *testServer, body string) string {
	t.Helper()
	status, resp := node.do("POST", "/api/jobs", "dev:alice", []byte(body))
	if status != 202 {
		t.Fatalf("submit: %d %s", status, resp)
	}
	var r struct{ JobID string }
	json.Unmarshal([]byte(resp), &r)
	return r.JobID
}

// TestClusterJobsRunOnce: a job submitted on A runs once in the cluster;
// when the node running it dies mid-job, another runs it to the end, and
// its events say it was tried again.
func TestClusterJobsRunOnce(t *testing.T) {
	n := startNATS(t)
	a, b := n.node(actors.Config{}), n.node(actors.Config{})
	watch := b.openStream("dev:ops", "")
	aQueue := n.startQueue(a, 2*time.Second)
	n.startQueue(b, 2*time.Second)

	id := submitJob(t, a, `{"type":"growth","assetId":"a1"}`)
	if steps := jobSteps(t, watch, id); strings.Join(steps, ",") != "queued,started,completed" {
		t.Fatalf("steps %v", steps)
	}
	nothingMore(t, b, watch, "the job")
	runs := a.metric(`eventhub_jobs_total{result="completed",type="growth"}`) + b.metric(`eventhub_jobs_total{result="completed",type="growth"}`)
	if runs != 1 {
		t.Fatalf("the job ran %v times", runs)
	}

	// Now only A takes jobs; it dies in the middle of one.
	b.queue.Stop()
	id = submitJob(t, a, `{"type":"growth","assetId":"a1","params":{"delayMs":1500}}`)
	var steps []string
	for len(steps) < 2 {
		f := watch.nextEvent(20 * time.Second)
		if jobIDOf(t, f.data) == id {
			steps = append(steps, f.data)
		}
	}
	aQueue.Close() // A can neither acknowledge the job nor take another
	a.nc.Close()   // nor publish its result
	n.startQueue(b, 2*time.Second)
	// Attempt 2, or later if the server handed it to A's dead pull first.
	rest := jobSteps(t, watch, id)
	if len(rest) != 2 || !strings.HasPrefix(rest[0], "started#") || rest[0] == "started#1" || rest[1] != "completed" {
		t.Fatalf("after A died: %v, want the job started again (attempt ≥ 2) and completed", rest)
	}
}

// TestClusterLongJobKeepsItsLease: a job that runs for several leases is
// not given to another node: its node renews the lease while it runs.
func TestClusterLongJobKeepsItsLease(t *testing.T) {
	n := startNATS(t)
	a, b := n.node(actors.Config{}), n.node(actors.Config{})
	watch := b.openStream("dev:ops", "")
	n.startQueue(a, time.Second)
	n.startQueue(b, time.Second)

	id := submitJob(t, a, `{"type":"growth","assetId":"a1","params":{"delayMs":3500}}`)
	if steps := jobSteps(t, watch, id); strings.Join(steps, ",") != "queued,started,completed" {
		t.Fatalf("steps %v, want the job run once", steps)
	}
	nothingMore(t, b, watch, "the job")
}

// TestClusterEndedJobIsNotRunAgain: a node that published a job's end but
// could not acknowledge the job (its queue connection died) leaves the job
// to the queue, which hands it to another node after the lease; that node's
// hub has seen the end, so it acknowledges the job without running it.
func TestClusterEndedJobIsNotRunAgain(t *testing.T) {
	n := startNATS(t)
	a, b := n.node(actors.Config{}), n.node(actors.Config{})
	watch := b.openStream("dev:ops", "")
	aQueue := n.startQueue(a, 2*time.Second) // only A takes jobs

	id := submitJob(t, a, `{"type":"growth","assetId":"a1","params":{"delayMs":1000}}`)
	var steps []string
	for len(steps) < 2 {
		f := watch.nextEvent(20 * time.Second)
		if jobIDOf(t, f.data) == id {
			steps = append(steps, f.data)
		}
	}
	aQueue.Close() // A runs the job to its end and publishes it, but cannot acknowledge it
	if rest := jobSteps(t, watch, id); strings.Join(rest, ",") != "completed" {
		t.Fatalf("after A's queue connection died: %v, want completed", rest)
	}

	js, err := jetstream.New(n.connect())
	if err != nil {
		t.Fatal(err)
	}
	queued := func() uint64 {
		s, err := js.Stream(context.Background(), "EVENTHUB_JOBS")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	if got := queued(); got != 1 {
		t.Fatalf("%d jobs in the queue after A lost its connection, want 1 (unacknowledged)", got)
	}
	n.startQueue(b, 2*time.Second)
	hubtest.WaitFor(t, "B acknowledges the ended job", 20*time.Second, func() bool { return queued() == 0 })
	if runs := b.metric(`eventhub_jobs_total{result="completed",type="growth"}`); runs != 0 {
		t.Fatalf("B ran the ended job (%v runs)", runs)
	}
	nothingMore(t, b, watch, "B took the ended job")
}

// TestClusterEveryNodeDeliversOnce: an event published on A reaches the
// allowed clients on A, B and C exactly once, and no one else.
func TestClusterEveryNodeDeliversOnce(t *testing.T) {
	n := startNATS(t)
	a, b, c := n.node(actors.Config{}), n.node(actors.Config{}), n.node(actors.Config{})
	type client struct {
		node *testServer
		user string
		c    *sseClient
	}
	var clients []*client
	for _, node := range []*testServer{a, b, c} {
		for _, user := range []string{"alice", "bob", "ops"} {
			clients = append(clients, &client{node: node, user: user, c: node.openStream("dev:"+user, "")})
		}
	}
	ids := a.publish("[" + strings.Join([]string{
		event("growth", "for-alice", "queued", "a1", ""),
		event("growth", "for-alice-and-bob", "queued", "a2", ""),
		event("probability", "for-bob", "queued", "", "s2"),
	}, ",") + "]")
	b.publish(event("matrix", "end", "queued", "zz", "zz")) // the end marker, from another node; only ops sees zz
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Errorf("ids %v are not the log's consecutive sequences", ids)
		}
	}
	want := map[string][]string{"alice": {"for-alice", "for-alice-and-bob"}, "bob": {"for-alice-and-bob", "for-bob"}, "ops": {"for-alice", "for-alice-and-bob", "for-bob", "end"}}
	for _, cl := range clients {
		var got []string
		for len(got) < len(want[cl.user]) {
			f := cl.c.nextEvent(10 * time.Second)
			got = append(got, jobIDOf(t, f.data))
			if id, _ := strconv.ParseUint(f.id, 10, 64); id < ids[0] {
				t.Errorf("%s: id %d is not a log sequence of this test", cl.user, id)
			}
		}
		if strings.Join(got, ",") != strings.Join(want[cl.user], ",") {
			t.Errorf("%s on a node got %v, want %v", cl.user, got, want[cl.user])
		}
	}
	// Exactly once: the next event each sees is the next one published.
	c.publish(event("matrix", "after", "queued", "a1", "s1"))
	for _, cl := range clients {
		if cl.user == "bob" {
			continue
		}
		if id := jobIDOf(t, cl.c.nextEvent(10*time.Second).data); id != "after" {
			t.Errorf("%s: %s after the end, want after (a duplicate?)", cl.user, id)
		}
	}
}

// TestClusterResumeOnAnotherNode: a client moves from A to C with its
// Last-Event-ID and misses nothing, also events C no longer has locally.
func TestClusterResumeOnAnotherNode(t *testing.T) {
	n := startNATS(t)
	a := n.node(actors.Config{})
	c := n.node(actors.Config{History: 5}) // keeps only the last 5 itself
	first := a.openStream("dev:alice", "")
	var evs []string
	for i := range 30 {
		evs = append(evs, event("growth", fmt.Sprintf("j%d", i), "queued", "a1", ""))
	}
	ids := a.publish("[" + strings.Join(evs, ",") + "]")
	var last string
	for i := range 3 {
		f := first.nextEvent(10 * time.Second)
		if got := jobIDOf(t, f.data); got != fmt.Sprintf("j%d", i) {
			t.Fatalf("on A: %s", got)
		}
		last = f.id
	}
	first.conn.Close()
	moved := c.openStream("dev:alice", "", "Last-Event-ID", last)
	for i := 3; i < 30; i++ {
		f := moved.nextEvent(10 * time.Second)
		if got, want := f.id+"/"+jobIDOf(t, f.data), fmt.Sprintf("%d/j%d", ids[i], i); got != want {
			t.Fatalf("on C: %s, want %s", got, want)
		}
	}
	c.publish(event("growth", "live", "queued", "a1", ""))
	if got := jobIDOf(t, moved.nextEvent(10*time.Second).data); got != "live" {
		t.Fatalf("after the replay: %s", got)
	}
	// An id past the log's end is "ahead"; one the log no longer has would
	// be "expired" (not shown: the stream keeps a million).
	ahead := c.openStream("dev:alice", "", "Last-Event-ID", strconv.FormatUint(ids[29]+1000, 10))
	if f := ahead.nextEvent(15 * time.Second); f.event != "reset" || !strings.Contains(f.data, "ahead") {
		t.Fatalf("resume past the end: %+v", f)
	}
}

// TestClusterInvalidLogMessages: what is published straight to NATS and is
// not a valid event is counted and never delivered.
func TestClusterInvalidLogMessages(t *testing.T) {
	n := startNATS(t)
	a := n.node(actors.Config{})
	s := a.openStream("dev:ops", "")
	nc := n.connect()
	for _, bad := range []string{`not json`, `{"type":"fusion","jobId":"x","status":"queued","timestamp":"2026-11-27T10:00:00Z"}`,
		`[` + event("growth", "a", "queued", "a1", "") + `,` + event("growth", "b", "queued", "a1", "") + `]`} {
		if err := nc.Publish("eventhub.events.growth", []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	// A worker in another language publishing a valid event: routed.
	if err := nc.Publish("eventhub.events.growth", []byte(event("growth", "from-nats", "queued", "a1", ""))); err != nil {
		t.Fatal(err)
	}
	if got := jobIDOf(t, s.nextEvent(10*time.Second).data); got != "from-nats" {
		t.Fatalf("first event %s, want from-nats", got)
	}
	for reason, want := range map[string]float64{"malformed": 1, "invalid": 1, "batch": 1} {
		if got := a.metric(`eventhub_events_rejected_total{reason="` + reason + `"}`); got != want {
			t.Errorf("rejected{%s} = %v, want %v", reason, got, want)
		}
	}
}

// TestClusterSurvivesNATSRestart: NATS restarts while events are published;
// streams stay open, the hub is not ready and refuses to ingest while it is
// down, and every acknowledged event reaches every client.
func TestClusterSurvivesNATSRestart(t *testing.T) {
	n := startNATS(t)
	a, b := n.node(actors.Config{}), n.node(actors.Config{})
	ca, cb := a.openStream("dev:ops", ""), b.openStream("dev:ops", "")
	var acked []string
	publish := func(node *testServer, id string) bool {
		status, _ := node.do("POST", "/api/events", testKey, []byte(event("growth", id, "queued", "a1", "")))
		if status == 202 {
			acked = append(acked, id)
			return true
		}
		if status != 503 {
			t.Fatalf("publish during the outage: %d, want 202 or 503", status)
		}
		return false
	}
	for i := range 10 {
		publish(a, fmt.Sprintf("before-%d", i))
	}
	n.stop()
	waitFor(t, "not ready", 5*time.Second, func() bool {
		status, _ := a.do("GET", "/readyz", "", nil)
		return status == 503
	})
	if publish(a, "during") {
		t.Fatal("an event was acknowledged with NATS down")
	}
	n.start()
	waitFor(t, "ready again", 15*time.Second, func() bool {
		status, _ := b.do("GET", "/readyz", "", nil)
		return status == 200
	})
	for i := range 10 {
		publish(b, fmt.Sprintf("after-%d", i))
	}
	for name, c := range map[string]*sseClient{"A": ca, "B": cb} {
		for _, want := range acked {
			if got := jobIDOf(t, c.nextEvent(15*time.Second).data); got != want {
				t.Fatalf("client on %s: %s, want %s", name, got, want)
			}
		}
	}
}

// TestClusterJobQueueFull: the work queue's stream holds a bounded number
// of jobs per kind; past it a submission is answered 429 with Retry-After,
// its job ends failed, and other kinds are still taken.
func TestClusterJobQueueFull(t *testing.T) {
	n := startNATS(t)
	node := n.node(actors.Config{})
	watch := node.openStream("dev:ops", "?types=growth")
	q, err := natsjs.StartQueue(context.Background(), node.workers, natsjs.QueueConfig{Conn: n.connect(), MaxJobs: 3}) // one a kind
	if err != nil {
		t.Fatal(err)
	}
	node.queue = q
	node.submit = q.Submit

	// The node holds this one (unacknowledged) until it ends: it fills the kind.
	first := submitJob(t, node, `{"type":"growth","assetId":"a1","params":{"delayMs":3000}}`)
	resp, body := hubtest.Request(t, "POST", node.url("/api/jobs"), "dev:alice", []byte(`{"type":"growth","assetId":"a1"}`))
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"error":"job refused: the growth job queue is full`) {
		t.Fatalf("a job over the queue's bound: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if got := node.metric(`eventhub_jobs_refused_total{reason="queue_full"}`); got != 1 {
		t.Errorf("queue_full refusals: %v", got)
	}
	submitJob(t, node, `{"type":"probability","scenarioId":"s1"}`) // another kind's subject
	// The refused job was announced before the stream refused it: it ends failed.
	var refused string
	for refused == "" {
		var ev struct{ JobID, Status string }
		json.Unmarshal([]byte(watch.nextEvent(10*time.Second).data), &ev)
		if ev.Status == "failed" {
			refused = ev.JobID
		}
	}
	if refused == first {
		t.Errorf("the job that fit in the queue failed")
	}
}

// TestClusterResumesStayWithinBudget: forty resumes of one user from
// an id the hub's history no longer has, each of which would read 18 MB of
// the log: at most two read at once (the others are refused), each stops
// at its byte budget, every one starts with a reset, the heap stays within
// what two reads may hold, and no read outlives its stream.
func TestClusterResumesStayWithinBudget(t *testing.T) {
	const backfillBytes = 4 << 20
	n := startNATS(t)
	// A publish timeout (which bounds a read of the log) no load can reach:
	// the reads end over their budget, not timed out.
	node := n.node(actors.Config{History: 10, BackfillBytes: backfillBytes, PublishTimeout: time.Minute})
	first := node.snapshotMark(t, "alice")
	node.publishLarge("j", 300) // 18 MB in the log
	last := first + 300
	waitFor(t, "the node routed every event", 10*time.Second, func() bool { return node.snapshotMark(t, "alice") == last })
	before := heapInuse()

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := heapInuse(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	const resumes = 40
	var wg sync.WaitGroup
	errs := make(chan string, resumes)
	for range resumes {
		wg.Go(func() {
			c, status, body := node.tryStream(nil, "dev:alice", "", "Last-Event-ID", strconv.FormatUint(first+1, 10))
			if status != 200 {
				errs <- fmt.Sprintf("resume: %d %s", status, body)
				return
			}
			defer c.conn.Close()
			f, err := c.next(20 * time.Second)
			for err == nil && f.event == "" { // the head's retry hint
				f, err = c.next(20 * time.Second)
			}
			if err != nil || f.event != "reset" || !strings.Contains(f.data, "expired") {
				errs <- fmt.Sprintf("first frame %s %.80s, %v: want a reset (expired)", f.event, f.data, err)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	grown := int64(peak.Load()) - int64(before)
	// Two reads of the user at once, each its budget and a fetch of 1 MiB,
	// and the embedded NATS server serving them.
	bound := int64(2*(backfillBytes+1<<20) + 24<<20)
	t.Logf("%d resumes: heap peaked %.1f MiB above where it was; bound %.1f MiB", resumes, float64(grown)/(1<<20), float64(bound)/(1<<20))
	if grown > bound {
		t.Errorf("heap peaked %d bytes above where it was, over %d", grown, bound)
	}
	refused := node.metric(`eventhub_backfills_total{result="refused"}`)
	expired := node.metric(`eventhub_backfills_total{result="expired"}`)
	canceled := node.metric(`eventhub_backfills_total{result="canceled"}`)
	t.Logf("backfills: %v refused, %v expired (over budget), %v canceled", refused, expired, canceled)
	if refused+expired+canceled != resumes || refused == 0 || expired == 0 {
		t.Errorf("backfills: %v refused, %v expired, %v canceled; want %d in all, some of the first two", refused, expired, canceled, resumes)
	}
	if ok := node.metric(`eventhub_backfills_total{result="ok"}`); ok != 0 {
		t.Errorf("%v reads over their budget ended ok", ok)
	}
	waitFor(t, "streams closed", 10*time.Second, func() bool { return node.metric("eventhub_streams_active") == 0 })
	waitFor(t, "no read of the log left", 10*time.Second, func() bool { return !goroutineIn("(*hubActor).backfill") })
}

// goroutineIn reports whether a goroutine is running code of fn.
func goroutineIn(fn string) bool {
	buf := make([]byte, 4<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}
