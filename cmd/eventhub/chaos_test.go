package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/internal/natsjs/natstest"
)

// The chaos tests run a cluster of hub processes, kill its machines (a hub
// with kill -9, a NATS node) while a publisher publishes through any live
// hub and streams read from every hub, and check what a user must be able
// to count on: every acknowledged event reaches every stream exactly once,
// in id order, whichever hub the stream was on when its hub died.

// chaosHub is one hub process of a chaos test, started again on the same
// address and store after it is killed.
type chaosHub struct {
	t    *testing.T
	opts hubtest.Options
	p    atomic.Pointer[hubtest.Process] // nil while it is down
}

func (h *chaosHub) addr() string { return h.opts.Listen }

// up reports whether the hub runs.
func (h *chaosHub) up() bool { return h.p.Load() != nil }

// kill kills the hub as a crash would (SIGKILL).
func (h *chaosHub) kill() {
	if p := h.p.Swap(nil); p != nil {
		p.Kill()
	}
}

// restart starts the hub again and returns once it is ready (/readyz).
func (h *chaosHub) restart() time.Duration {
	start := time.Now()
	h.p.Store(hubtest.StartBinary(h.t, h.opts))
	return time.Since(start)
}

// chaosMaxOutage bounds the longest a client may go without events, or
// the publisher without an acknowledgement, across a failover.
const chaosMaxOutage = 20 * time.Second

// chaosUsers is how many users, each with one stream, a chaos test holds.
const chaosUsers = 200

// chaosPermissions writes a permissions file: users u0 … u<n-1>, each
// allowed on asset a1, where every chaos event is.
func chaosPermissions(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"users": {`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q: {\"assets\": [\"a1\"]}", "u"+strconv.Itoa(i))
	}
	b.WriteString("}}\n")
	path := filepath.Join(t.TempDir(), "permissions.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// chaosStream is one user's stream: it reads from a hub and, when that
// hub goes away, resumes on the next live one with Last-Event-ID, as the
// client library does.
type chaosStream struct {
	user  string
	first int // the hub it starts on

	mu         sync.Mutex
	ids        []uint64 // event ids in the order received
	faults     []string // out of order, duplicated, reset
	reconnects int
	maxGap     time.Duration // longest from losing the stream to the next event
	opened     atomic.Bool   // its first response head came: it gets every event from then on
	at         string        // the hub it reads from now
}

func (s *chaosStream) fault(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) < 10 {
		s.faults = append(s.faults, fmt.Sprintf(format, args...))
	}
}

// has reports whether the stream received every id in want.
func (s *chaosStream) has(want map[uint64]bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := 0
	for _, id := range s.ids {
		if want[id] {
			got++
		}
	}
	return got == len(want)
}

// run reads until ctx ends, moving from hub to hub.
func (s *chaosStream) run(ctx context.Context, hubs []*chaosHub) {
	h := s.first
	var last uint64
	var lost time.Time // when the stream was lost; zero while none is
	opened := 0
	for ctx.Err() == nil {
		hub := hubs[h%len(hubs)]
		h++
		if !hub.up() {
			if h%len(hubs) == s.first%len(hubs) {
				// Every hub is down: wait, as a client would.
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			continue
		}
		conn, r, err := s.open(ctx, hub.addr(), last)
		if err != nil {
			if lost.IsZero() {
				lost = time.Now()
			}
			// A refusal or a hub on its way down: the next hub, after a
			// pause a client would make too.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if opened > 0 {
			s.mu.Lock()
			s.reconnects++
			s.mu.Unlock()
		}
		opened++
		s.opened.Store(true)
		s.mu.Lock()
		s.at = hub.addr()
		s.mu.Unlock()
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		dec := hubtest.NewDecoder(r)
		for {
			f, err := dec.Next()
			if err != nil {
				break
			}
			if f.Event == "reset" {
				s.fault("reset %q after id %d", f.Data, last)
				continue
			}
			if f.ID == "" {
				continue // a ping or a retry hint
			}
			id, err := strconv.ParseUint(f.ID, 10, 64)
			if err != nil {
				s.fault("id %q", f.ID)
				continue
			}
			if id <= last {
				s.fault("id %d after %d", id, last)
				continue
			}
			last = id
			s.mu.Lock()
			s.ids = append(s.ids, id)
			if !lost.IsZero() {
				s.maxGap = max(s.maxGap, time.Since(lost))
				lost = time.Time{}
			}
			s.mu.Unlock()
		}
		stop()
		conn.Close()
		if lost.IsZero() {
			lost = time.Now()
		}
	}
}

// open opens the stream on addr, resuming after last, and returns its
// connection and a reader past the response head.
func (s *chaosStream) open(ctx context.Context, addr string, last uint64) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	req := fmt.Sprintf("GET /api/events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nAuthorization: Bearer dev:%s\r\n", addr, s.user)
	if last > 0 {
		req += "Last-Event-ID: " + strconv.FormatUint(last, 10) + "\r\n"
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	r := bufio.NewReader(conn)
	head, err := hubtest.ReadHead(r)
	if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200 ") {
		conn.Close()
		return nil, nil, fmt.Errorf("stream on %s: %v %q", addr, err, head)
	}
	conn.SetDeadline(time.Time{})
	return conn, r, nil
}

// chaosPublisher publishes one event every interval through any live hub.
// An event whose request fails is sent again, to the next hub, with the
// same Idempotency-Key, until a hub acknowledges it: it must be stored
// once, whichever hubs saw it.
type chaosPublisher struct {
	hubs   []*chaosHub
	client *http.Client

	mu      sync.Mutex
	acked   map[uint64]int // id → event number
	keys    map[int]uint64 // event number → id
	faults  []string
	refused time.Duration // longest from an event's first failed attempt to its acknowledgement
}

func newChaosPublisher(hubs []*chaosHub) *chaosPublisher {
	return &chaosPublisher{hubs: hubs, client: &http.Client{Timeout: 3 * time.Second},
		acked: map[uint64]int{}, keys: map[int]uint64{}}
}

// run publishes until ctx ends.
func (p *chaosPublisher) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	next := 0
	for n := 0; ctx.Err() == nil; n++ {
		var failed time.Time
		for ctx.Err() == nil {
			hub := p.hubs[next%len(p.hubs)]
			next++
			if !hub.up() {
				continue
			}
			id, err := p.publish(ctx, hub.addr(), n)
			if err == nil {
				p.mu.Lock()
				if prev, ok := p.keys[n]; ok && prev != id {
					p.faults = append(p.faults, fmt.Sprintf("event %d stored as %d and %d", n, prev, id))
				}
				p.keys[n], p.acked[id] = id, n
				if !failed.IsZero() {
					p.refused = max(p.refused, time.Since(failed))
				}
				p.mu.Unlock()
				break
			}
			if failed.IsZero() {
				failed = time.Now()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (p *chaosPublisher) publish(ctx context.Context, addr string, n int) (uint64, error) {
	body := hubtest.JobEvent("growth", "chaos-"+strconv.Itoa(n), "completed", "a1", "", time.Now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/events", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+devPublishKey)
	req.Header.Set("Idempotency-Key", "chaos-"+strconv.Itoa(n))
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	var ids struct{ IDs []uint64 }
	if err := json.Unmarshal(b, &ids); err != nil || len(ids.IDs) != 1 {
		return 0, fmt.Errorf("answer %s: %v", b, err)
	}
	return ids.IDs[0], nil
}

// ackedIDs is the set of acknowledged ids so far.
func (p *chaosPublisher) ackedIDs() map[uint64]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make(map[uint64]bool, len(p.acked))
	for id := range p.acked {
		ids[id] = true
	}
	return ids
}

// chaosRun is a publisher and chaosUsers streams on hubs, while chaos (the
// test's kills and restarts) runs.
type chaosRun struct {
	t       *testing.T
	hubs    []*chaosHub
	pub     *chaosPublisher
	streams []*chaosStream
}

// runChaos starts the streams and the publisher, waits until every stream
// has received an event, runs chaos, then stops publishing and waits until
// every stream has every acknowledged event; then checks them.
func runChaos(t *testing.T, hubs []*chaosHub, chaos func(r *chaosRun)) {
	t.Helper()
	r := &chaosRun{t: t, hubs: hubs, pub: newChaosPublisher(hubs)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range chaosUsers {
		s := &chaosStream{user: "u" + strconv.Itoa(i), first: i % len(hubs)}
		r.streams = append(r.streams, s)
		wg.Go(func() { s.run(ctx, hubs) })
	}
	// A stream gets the events published once it has its response head:
	// publishing starts when every stream has.
	hubtest.WaitFor(t, "every stream open", 30*time.Second, func() bool {
		for _, s := range r.streams {
			if !s.opened.Load() {
				return false
			}
		}
		return true
	})
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		r.pub.run(pubCtx, 50*time.Millisecond)
	}()
	r.progress("the first events")
	chaos(r)
	stopPub()
	<-pubDone
	r.delivered("every acknowledged event", r.pub.ackedIDs())
	r.check()
}

// progressEvents is how many more events progress wants acknowledged.
const progressEvents = 10

// progress waits until progressEvents more events have been acknowledged
// (publishing goes on through the live hubs), then until every stream has
// every event acknowledged by then.
func (r *chaosRun) progress(what string) {
	r.t.Helper()
	from := len(r.pub.ackedIDs())
	hubtest.WaitFor(r.t, what+": events acknowledged", 30*time.Second, func() bool {
		return len(r.pub.ackedIDs()) >= from+progressEvents
	})
	r.delivered(what, r.pub.ackedIDs())
}

// delivered waits until every stream has every event of want.
func (r *chaosRun) delivered(what string, want map[uint64]bool) {
	r.t.Helper()
	ok := hubtest.Poll(60*time.Second, func() bool {
		for _, s := range r.streams {
			if !s.has(want) {
				return false
			}
		}
		return true
	})
	if !ok {
		s := r.streams[0]
		s.mu.Lock()
		defer s.mu.Unlock()
		var missing []uint64
		for id := range want {
			if !slices.Contains(s.ids, id) {
				missing = append(missing, id)
			}
		}
		slices.Sort(missing)
		for i, h := range r.hubs {
			if p := h.p.Load(); p != nil {
				page := hubtest.Scrape(r.t, p.URL("/metrics"))
				var lines []string
				for l := range strings.SplitSeq(page, "\n") {
					if strings.HasPrefix(l, "eventhub_nats_consumer_lag") || strings.HasPrefix(l, "eventhub_streams_active") ||
						strings.HasPrefix(l, "eventhub_events_delivered_total") || strings.HasPrefix(l, "eventhub_events_ingested_total") ||
						strings.HasPrefix(l, "eventhub_nats_connected") {
						lines = append(lines, l)
					}
				}
				r.t.Logf("hub %d: %s", i, strings.Join(lines, "; "))
			}
		}
		r.t.Logf("%s: %d resumes, faults %v, at %s", s.user, s.reconnects, s.faults, s.at)
		r.t.Fatalf("%s: %s lacks %d of %d acknowledged events (%v…); it has %d, the last %v", what, s.user, len(missing), len(want), missing[:min(5, len(missing))], len(s.ids), s.ids[max(0, len(s.ids)-5):])
	}
}

// resumes is how many times the streams have resumed on a hub so far.
func (r *chaosRun) resumes() int {
	n := 0
	for _, s := range r.streams {
		s.mu.Lock()
		n += s.reconnects
		s.mu.Unlock()
	}
	return n
}

// check asserts the run's guarantees and logs its figures.
func (r *chaosRun) check() {
	t := r.t
	t.Helper()
	want := r.pub.ackedIDs()
	r.pub.mu.Lock()
	pubFaults, refused := r.pub.faults, r.pub.refused
	r.pub.mu.Unlock()
	for _, f := range pubFaults {
		t.Errorf("publisher: %s", f)
	}
	var maxGap time.Duration
	reconnects := 0
	for _, s := range r.streams {
		s.mu.Lock()
		for _, f := range s.faults {
			t.Errorf("%s: %s", s.user, f)
		}
		// Exactly once: the ids are increasing (checked as they came), so
		// none twice; every acknowledged one is there (waitDelivered).
		maxGap = max(maxGap, s.maxGap)
		reconnects += s.reconnects
		s.mu.Unlock()
	}
	t.Logf("%d events acknowledged, %d streams, each got every one once, in order; %d resumes on another hub; longest client gap %v; longest refusal of an event %v",
		len(want), len(r.streams), reconnects, maxGap.Round(time.Millisecond), refused.Round(time.Millisecond))
	// A failover is a leader election (a few seconds) and a resume: far
	// less than this bound, which only a stalled hub or log would reach.
	if maxGap > chaosMaxOutage || refused > chaosMaxOutage {
		t.Errorf("longest client gap %v, longest refusal %v: want each under %v", maxGap, refused, chaosMaxOutage)
	}
}

// TestChaosEmbeddedCluster: three hubs that are also a three-node NATS
// cluster (an R3 log). One hub is killed mid-run and started again, then
// another is killed. Streams move to the live hubs and resume; the
// publisher moves too.
func TestChaosEmbeddedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of processes")
	}
	t.Parallel()
	perms := chaosPermissions(t, chaosUsers)
	const n = 3
	var routes []string
	free := hubtest.FreePorts(t, 3*n)
	ports := make([][3]int, n) // public, NATS client, NATS route
	for i := range ports {
		ports[i] = [3]int{free[3*i], free[3*i+1], free[3*i+2]}
		routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(ports[i][2]))
	}
	hubs := make([]*chaosHub, n)
	opts := make([]hubtest.Options, n)
	for i := range hubs {
		opts[i] = hubtest.Options{
			Listen: "127.0.0.1:" + strconv.Itoa(ports[i][0]),
			Args: []string{"--permissions", perms, "--drain", "1s",
				"--nats-embed", "127.0.0.1:" + strconv.Itoa(ports[i][1]), "--nats-store", t.TempDir(),
				"--nats-cluster", "127.0.0.1:" + strconv.Itoa(ports[i][2]), "--nats-routes", strings.Join(routes, ","),
				"--nats-name", "hub-" + strconv.Itoa(i), "--nats-replicas", "3"},
		}
		hubs[i] = &chaosHub{t: t, opts: opts[i]}
	}
	for i, p := range hubtest.StartBinaries(t, opts...) {
		hubs[i].p.Store(p)
	}
	runChaos(t, hubs, func(r *chaosRun) {
		hubs[0].kill()
		r.progress("after hub 0 died")
		took := hubs[0].restart()
		r.progress("after hub 0 came back")
		hubs[1].kill()
		r.progress("after hub 1 died")
		t.Logf("hub 0 ready %v after its restart began", took.Round(time.Millisecond))
	})
}

// roles says which server leads the event log's stream and which follow.
func roles(t *testing.T, c *natstest.Cluster) (leader string, followers []string) {
	t.Helper()
	js, err := jetstream.New(c.Connect())
	if err != nil {
		t.Fatal(err)
	}
	hubtest.WaitFor(t, "the stream's leader and two current followers", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "EVENTHUB")
		if err != nil {
			return false
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		leader, followers = info.Cluster.Leader, nil
		for _, p := range info.Cluster.Replicas {
			if !p.Current || p.Offline {
				return false
			}
			followers = append(followers, p.Name)
		}
		return true
	})
	return leader, followers
}

// TestChaosExternalCluster: two hubs on an external three-node NATS
// cluster (--nats with all three, --nats-replicas 3). The stream's leader
// stops and comes back, then a follower stops. (A hub whose tail pauses
// through a failover may then route a burst larger than a mailbox: those
// streams are closed as slow and resume, as designed.) Then two of the
// three stop: the quorum is lost, the hubs keep their streams, /readyz and
// publishing answer 503; when the two come back, nothing acknowledged is
// lost.
func TestChaosExternalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of processes")
	}
	t.Parallel()
	nc := natstest.Start(t, 3)
	perms := chaosPermissions(t, chaosUsers)
	ports := hubtest.FreePorts(t, 2)
	hubs := make([]*chaosHub, len(ports))
	opts := make([]hubtest.Options, len(ports))
	for i, port := range ports {
		opts[i] = hubtest.Options{
			Listen: "127.0.0.1:" + strconv.Itoa(port),
			Args:   []string{"--permissions", perms, "--drain", "1s", "--nats", strings.Join(nc.URLs, ","), "--nats-replicas", "3"},
		}
		hubs[i] = &chaosHub{t: t, opts: opts[i]}
	}
	for i, p := range hubtest.StartBinaries(t, opts...) {
		hubs[i].p.Store(p)
	}
	runChaos(t, hubs, func(r *chaosRun) {
		leader, _ := roles(t, nc)
		nc.Stop(leader)
		r.progress("after the stream's leader stopped")
		nc.Start(leader)
		_, followers := roles(t, nc)
		nc.Stop(followers[0])
		r.progress("after a follower stopped")
		nc.Start(followers[0])

		leader, followers = roles(t, nc)
		resumes := r.resumes()
		nc.Stop(followers[0])
		nc.Stop(followers[1])
		for i, h := range hubs {
			hubtest.WaitFor(t, fmt.Sprintf("hub %d not ready without a quorum", i), 30*time.Second, func() bool {
				resp, err := http.Get("http://" + h.addr() + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusServiceUnavailable
			})
		}
		for i, h := range hubs {
			body := hubtest.JobEvent("growth", "no-quorum", "completed", "a1", "", time.Now())
			resp, b := hubtest.Request(t, http.MethodPost, "http://"+h.addr()+"/api/events", devPublishKey, []byte(body))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("hub %d, publishing without a quorum: %d %s, want 503", i, resp.StatusCode, b)
			}
		}
		if got := r.resumes(); got != resumes {
			t.Errorf("%d streams resumed while the quorum was lost: the hubs should keep them", got-resumes)
		}
		nc.Start(followers[0])
		nc.Start(followers[1])
		// What the publisher retried meanwhile now comes at once: a stream
		// whose mailbox it overflows is closed as slow and resumes.
		r.progress("after the quorum came back")
		t.Logf("leader %s kept running through the lost quorum", leader)
	})
}

// TestChaosJobRunsAgainElsewhere: a job whose hub is killed (kill -9) while
// it runs is run again by another hub once its lease runs out, and ends
// once: every stream sees queued, started, started again (attempt 2) and
// one completed, and the job table says completed.
func TestChaosJobRunsAgainElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of processes")
	}
	t.Parallel()
	nc := natstest.Start(t, 3)
	perms := chaosPermissions(t, 1)
	ports := hubtest.FreePorts(t, 2)
	opts := make([]hubtest.Options, len(ports))
	for i, port := range ports {
		opts[i] = hubtest.Options{
			Listen: "127.0.0.1:" + strconv.Itoa(port),
			Args:   []string{"--permissions", perms, "--nats", strings.Join(nc.URLs, ","), "--nats-replicas", "3", "--job-lease", "1s"},
		}
	}
	hubs := hubtest.StartBinaries(t, opts...)
	streams := make([]*hubtest.Stream, len(hubs))
	for i, h := range hubs {
		streams[i] = hubtest.OpenStream(t, h.Addr, "/api/events", "Authorization", "Bearer dev:u0")
	}

	resp, body := hubtest.Request(t, http.MethodPost, hubs[0].URL("/api/jobs"), "dev:u0",
		[]byte(`{"type":"growth","assetId":"a1","params":{"delayMs":4000}}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	var submitted struct{ JobID string }
	if err := json.Unmarshal([]byte(body), &submitted); err != nil || submitted.JobID == "" {
		t.Fatalf("submit answered %s: %v", body, err)
	}
	// The hub that took the job from the queue counts its wait.
	runner := -1
	hubtest.WaitFor(t, "a hub starts the job", 20*time.Second, func() bool {
		for i, h := range hubs {
			if hubtest.Metric(t, h.URL("/metrics"), `eventhub_job_wait_seconds_count{type="growth"}`) == 1 {
				runner = i
				return true
			}
		}
		return false
	})
	hubs[runner].Kill()
	survivor := 1 - runner
	t.Logf("hub %d ran the job and was killed; hub %d is left", runner, survivor)

	// The survivor's stream saw it all from the start.
	type step struct {
		Status string
		Data   struct {
			Attempt  int
			Progress *float64
		}
	}
	var steps []string
	for {
		f := streams[survivor].NextEvent(t, 30*time.Second)
		var ev struct {
			JobID string
			step
		}
		if err := json.Unmarshal([]byte(f.Data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.JobID != submitted.JobID || ev.Data.Progress != nil {
			continue
		}
		s := ev.Status
		if ev.Data.Attempt > 0 {
			s += "#" + strconv.Itoa(ev.Data.Attempt)
		}
		steps = append(steps, s)
		if ev.Status == "completed" || ev.Status == "failed" {
			break
		}
	}
	if len(steps) != 4 || steps[0] != "queued" || steps[1] != "started" || !strings.HasPrefix(steps[2], "started#") || steps[3] != "completed" {
		t.Fatalf("the job's events %v, want queued, started, started again (attempt ≥ 2), completed", steps)
	}
	// Nothing of the job comes after its end.
	marker := hubtest.JobEvent("growth", "marker", "queued", "a1", "", time.Now())
	if resp, b := hubtest.Request(t, http.MethodPost, hubs[survivor].URL("/api/events"), devPublishKey, []byte(marker)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish the marker: %d %s", resp.StatusCode, b)
	}
	if f := streams[survivor].NextEvent(t, 10*time.Second); !strings.Contains(f.Data, `"jobId":"marker"`) {
		t.Fatalf("after the job's end: %s, want the marker (did it end twice?)", f.Data)
	}
	if got := hubtest.Metric(t, hubs[survivor].URL("/metrics"), `eventhub_jobs_total{result="completed",type="growth"}`); got != 1 {
		t.Fatalf("the survivor completed %v jobs, want 1", got)
	}
	_, snap := hubtest.Request(t, http.MethodGet, hubs[survivor].URL("/api/jobs"), "dev:u0", nil)
	if !strings.Contains(snap, `"jobId":"`+submitted.JobID+`","status":"completed"`) {
		t.Fatalf("GET /api/jobs after the job ran again: %s, want it completed", snap)
	}
}
