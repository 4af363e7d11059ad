package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gate is a job computation that says which job it runs, then waits for the
// test to let it end (or for the workers to stop).
type gate struct {
	running chan string
	release chan struct{}
}

func newGate() *gate {
	return &gate{running: make(chan string, 100), release: make(chan struct{})}
}

func (g *gate) run(ctx context.Context, job Job, _ Progress) (any, error) {
	g.running <- job.ID
	select {
	case <-g.release:
		return map[string]bool{"ok": true}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next returns the id of the next job that starts.
func (g *gate) next(t *testing.T) string {
	t.Helper()
	select {
	case id := <-g.running:
		return id
	case <-time.After(waitFor):
		t.Fatal("no job started")
		return ""
	}
}

// metricValue reads one sample (a counter, gauge, or a histogram's count)
// from reg: name and label pairs.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestPoolRoundRobinAcrossUsers: one worker; alice's backlog is long, bob
// and carol each come later, and each of their jobs goes next, between two
// of alice's, in the order of the ring.
func TestPoolRoundRobinAcrossUsers(t *testing.T) {
	t.Parallel()
	g := newGate()
	w, rec := startWorkers(t, WorkersConfig{PerType: 1, PerUser: -1, Rate: -1, run: g.run})
	job := func(id, user string) Job { return Job{ID: id, Type: Growth, AssetID: "a1", User: user} }
	submit(t, w, job("j-a1", "alice"))
	if id := g.next(t); id != "j-a1" {
		t.Fatalf("first job to start: %s", id)
	}
	for _, j := range []Job{job("j-a2", "alice"), job("j-a3", "alice"), job("j-a4", "alice"),
		job("j-b1", "bob"), job("j-b2", "bob"), job("j-c1", "carol")} {
		submit(t, w, j)
	}
	order := []string{"j-a1"}
	for range 6 {
		g.release <- struct{}{}
		order = append(order, g.next(t))
	}
	g.release <- struct{}{}
	if got, want := strings.Join(order, " "), "j-a1 j-b1 j-c1 j-a2 j-b2 j-a3 j-a4"; got != want {
		t.Errorf("start order %s, want %s", got, want)
	}
	for _, id := range order {
		if evs := rec.until(t, id); evs[len(evs)-1].Status != Completed {
			t.Errorf("job %s: %v", id, statuses(evs))
		}
	}
}

// TestPoolStopEndsWaitingJobs: Stop ends every job, running or waiting, of
// every user: those submitted here fail, those from a cluster's queue go
// back to it unstarted; the queue is empty and nobody has a job in flight.
func TestPoolStopEndsWaitingJobs(t *testing.T) {
	t.Parallel()
	g := newGate()
	reg := prometheus.NewRegistry()
	w, rec := startWorkers(t, WorkersConfig{PerType: 1, Registerer: reg, run: g.run})
	var local []string
	for i, user := range []string{"alice", "bob", "alice", "carol", "bob"} {
		id := fmt.Sprintf("j-%d", i)
		submit(t, w, Job{ID: id, Type: Growth, AssetID: "a1", User: user})
		local = append(local, id)
	}
	g.next(t) // j-0 runs, the rest wait
	var mu sync.Mutex
	given := map[string]bool{} // cluster job id → finished
	for i := range 3 {
		id := fmt.Sprintf("j-q%d", i)
		w.Run(Job{ID: id, Type: Growth, AssetID: "a1", User: "dave"}, 1, func(finished bool) {
			mu.Lock()
			defer mu.Unlock()
			given[id] = finished
		})
	}
	hubtestWait(t, "seven jobs waiting", func() bool {
		return metricValue(t, reg, "eventhub_job_queue_depth", "type", "growth") == 7
	})
	w.Stop()
	for _, id := range local {
		evs := rec.until(t, id)
		if got := fmt.Sprint(statuses(evs)); got != "[queued started failed]" {
			t.Errorf("job %s: %s", id, got)
		}
	}
	mu.Lock()
	if len(given) != 3 || given["j-q0"] || given["j-q1"] || given["j-q2"] {
		t.Errorf("cluster jobs given back: %v, want all three unfinished", given)
	}
	mu.Unlock()
	for _, id := range []string{"j-q0", "j-q1", "j-q2"} {
		if evs := rec.byJob[id]; len(evs) > 0 {
			t.Errorf("cluster job %s given back after %v", id, statuses(evs))
		}
	}
	if d := metricValue(t, reg, "eventhub_job_queue_depth", "type", "growth"); d != 0 {
		t.Errorf("queue depth after Stop: %v", d)
	}
	w.env.users.mu.Lock()
	for user, b := range w.env.users.users {
		if b.inFlight != 0 {
			t.Errorf("%s: %d jobs in flight after Stop", user, b.inFlight)
		}
	}
	w.env.users.mu.Unlock()
}

// hubtestWait polls cond until it holds, failing the test at waitFor.
func hubtestWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, waitFor)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

// TestSubmitRefusals: over each budget Submit returns a *RefusedError,
// counts it, and publishes nothing of the refused job.
func TestSubmitRefusals(t *testing.T) {
	t.Parallel()
	g := newGate()
	reg := prometheus.NewRegistry()
	w, rec := startWorkers(t, WorkersConfig{PerType: 1, QueueSize: 2, PerUser: 2, Rate: -1, Registerer: reg, run: g.run})
	job := func(id, user string) Job { return Job{ID: id, Type: Growth, AssetID: "a1", User: user} }
	submit(t, w, job("j-1", "alice"))
	g.next(t) // running: its slot in the queue is free again
	submit(t, w, job("j-2", "alice"))

	refused := func(j Job, reason string) {
		t.Helper()
		err := w.Submit(context.Background(), j)
		var r *RefusedError
		if !errors.As(err, &r) || r.Reason != reason || r.Type != Growth || r.RetrySeconds() < 1 {
			t.Fatalf("Submit(%s) = %v, want a %s refusal", j.ID, err, reason)
		}
	}
	refused(job("j-3", "alice"), RefusedUserInFlight) // alice has two in flight
	submit(t, w, job("j-4", "bob"))                   // the queue holds j-2 and j-4
	refused(job("j-5", "carol"), RefusedQueueFull)
	// Another kind has a queue of its own.
	submit(t, w, Job{ID: "j-6", Type: Probability, ScenarioID: "s1", User: "carol"})

	for reason, want := range map[string]float64{RefusedUserInFlight: 1, RefusedQueueFull: 1, RefusedUserRate: 0} {
		if got := metricValue(t, reg, "eventhub_jobs_refused_total", "reason", reason); got != want {
			t.Errorf("refused{%s} = %v, want %v", reason, got, want)
		}
	}
	close(g.release)
	for _, id := range []string{"j-1", "j-2", "j-4", "j-6"} {
		rec.until(t, id)
	}
	for _, id := range []string{"j-3", "j-5"} {
		if evs := rec.byJob[id]; len(evs) > 0 {
			t.Errorf("refused job %s has events %v", id, statuses(evs))
		}
	}
	// alice's jobs ended: she may submit again.
	submit(t, w, job("j-7", "alice"))
	rec.until(t, "j-7")
	if n := metricValue(t, reg, "eventhub_job_wait_seconds", "type", "growth"); n != 4 {
		t.Errorf("growth waits observed: %v, want 4", n)
	}
}

func TestUserLimits(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clock := t0
	now := func() time.Time { return clock }
	admit := func(l *userLimits, user, want string, wantRetry time.Duration) {
		t.Helper()
		reason, retry := l.admit(user)
		if reason != want || (want != "" && retry != wantRetry) {
			t.Fatalf("admit(%s) at +%v = %q, %v; want %q, %v", user, clock.Sub(t0), reason, retry, want, wantRetry)
		}
	}

	t.Run("rate refills", func(t *testing.T) {
		clock = t0
		l := newUserLimits(0, 2, 4, now) // 2 a second, bursts of 4
		for range 4 {
			admit(l, "alice", "", 0)
		}
		admit(l, "alice", RefusedUserRate, 500*time.Millisecond)
		admit(l, "bob", "", 0) // a bucket each
		clock = clock.Add(250 * time.Millisecond)
		admit(l, "alice", RefusedUserRate, 250*time.Millisecond) // a refusal takes nothing
		clock = clock.Add(250 * time.Millisecond)
		admit(l, "alice", "", 0)
		admit(l, "alice", RefusedUserRate, 500*time.Millisecond)
		clock = clock.Add(time.Hour) // refills up to the burst, no further
		for range 4 {
			admit(l, "alice", "", 0)
		}
		admit(l, "alice", RefusedUserRate, 500*time.Millisecond)
	})

	t.Run("in flight", func(t *testing.T) {
		clock = t0
		l := newUserLimits(2, 0, 0, now)
		admit(l, "alice", "", 0)
		admit(l, "alice", "", 0)
		admit(l, "alice", RefusedUserInFlight, retryInFlight)
		admit(l, "bob", "", 0)
		l.release("alice")
		admit(l, "alice", "", 0)
		admit(l, "alice", RefusedUserInFlight, retryInFlight)
	})

	t.Run("idle users are forgotten", func(t *testing.T) {
		clock = t0
		l := newUserLimits(10, 2, 4, now) // full again 2s after the last token
		for i := range 1000 {
			user := fmt.Sprintf("u%d", i)
			admit(l, user, "", 0)
			if i > 0 {
				l.release(user) // all but u0 end their job
			}
		}
		if n := l.size(); n != 1000 {
			t.Fatalf("%d users remembered, want 1000", n)
		}
		clock = clock.Add(2 * time.Second)
		admit(l, "newcomer", "", 0) // sweeps
		if n := l.size(); n != 2 {
			t.Errorf("%d users remembered after the refill time, want 2 (u0 has a job in flight, and the newcomer)", n)
		}
		// A forgotten user comes back with the full bucket they would have had.
		for range 4 {
			admit(l, "u7", "", 0)
		}
		admit(l, "u7", RefusedUserRate, 500*time.Millisecond)
	})
}
