package bench

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

func TestIsSlowOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ k, n int }{{100, 5000}, {3, 10}, {1, 1}, {7, 7}, {0, 10}, {100, 19900}} {
		got, last := 0, -1
		for i := range c.n {
			if !isSlowOf(i, c.k, c.n) {
				continue
			}
			got++
			if c.k*2 <= c.n && last >= 0 && i-last < c.n/c.k-1 {
				t.Errorf("%d of %d: slow %d and %d are too close", c.k, c.n, last, i)
			}
			last = i
		}
		if got != c.k {
			t.Errorf("%d of %d: %d slow", c.k, c.n, got)
		}
	}
	spec := poolSpec{SlowReaders: 2, AllStreams: 10, SlowFraction: 0.5}
	if n := countSlow(spec.isSlow, 10); n != 2 {
		t.Errorf("2 slow readers of 10: %d slow", n)
	}
	spec.SlowReaders = 0
	if n := countSlow(spec.isSlow, 10); n != 5 {
		t.Errorf("a fraction of 0.5 of 10: %d slow", n)
	}
	cfg := Config{Scenario: "slow", Streams: 5000, SlowReaders: 100}
	if n := countSlow(cfg.isSlowStream, 5000); n != 100 {
		t.Errorf("Config with 100 slow readers of 5000: %d slow", n)
	}
	cfg.Scenario = "broadcast"
	if n := countSlow(cfg.isSlowStream, 5000); n != 0 {
		t.Errorf("a broadcast has %d slow streams", n)
	}
}

func countSlow(slow func(int) bool, n int) int {
	k := 0
	for i := range n {
		if slow(i) {
			k++
		}
	}
	return k
}

// TestConfigProgress: the conflate scenario defaults to 50 jobs, a stall
// of a third of the run and the progress bodies; what cannot run is
// refused.
func TestConfigProgress(t *testing.T) {
	t.Parallel()
	c := Config{Scenario: "conflate", Duration: 24 * time.Second, SlowReaders: 100, Streams: 5000}
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.ProgressJobs != DefaultProgressJobs || c.Stall != 8*time.Second || c.PubBody != DefaultProgressBody ||
		c.DoneBody != DefaultDoneBody || c.FillerBody != DefaultFillerProgressBody {
		t.Errorf("conflate defaults: %d jobs, stall %v, bodies %q %q %q", c.ProgressJobs, c.Stall, c.PubBody, c.DoneBody, c.FillerBody)
	}
	c = Config{Scenario: "slow", Stall: 5 * time.Second}
	if err := c.defaults(); err != nil || c.ProgressJobs != 0 || c.PubBody != DefaultPubBody || c.FillerBody != DefaultFillerBody {
		t.Errorf("slow with a stall: %v; %d jobs, bodies %q %q", err, c.ProgressJobs, c.PubBody, c.FillerBody)
	}
	for _, bad := range []Config{
		{Scenario: "slow", SlowReaders: -1},
		{Scenario: "slow", Streams: 10, SlowReaders: 11},
		{Scenario: "slow", Stall: -time.Second},
		{Scenario: "slow", Duration: 10 * time.Second, Stall: 10 * time.Second},
		{Scenario: "slow", ProgressJobs: -1},
		{Scenario: "broadcast", ProgressJobs: 5},
		{Scenario: "conflate", PubBody: `{"ts":{ts},"seq":{seq}}`},
		{Scenario: "slow", ProgressJobs: 5, DoneBody: `{"ts":{ts}}`},
	} {
		if err := bad.defaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", bad, err)
		}
	}
}

// TestSlowStreamsResume drives a pool's slow streams through a stall and
// a resume against the floor: they read nothing while stalled, catch up
// with the newest event published at the resume, and count the done
// phase. One run has a floor that closes a stalled stream (its write
// deadline passes): that stream counts as closed, reconnects once it
// reads again, and still catches up with what is published after.
func TestSlowStreamsResume(t *testing.T) {
	t.Parallel()
	for _, closes := range []bool{false, true} {
		t.Run(fmt.Sprintf("closed=%v", closes), func(t *testing.T) {
			t.Parallel()
			testSlowStreamsResume(t, closes)
		})
	}
}

func testSlowStreamsResume(t *testing.T, closes bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Floor{WriteTimeout: 5 * time.Second}
	if closes {
		f.WriteTimeout = 300 * time.Millisecond
	}
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()
	t.Cleanup(func() {
		f.Close()
		<-served
	})
	addr := ln.Addr().String()
	p, err := newPool(poolSpec{URL: "http://" + addr + "/", Streams: 4, MaxSeq: 200, Start: time.Now().UnixNano(),
		SeriesLen: 60, SlowReaders: 2, AllStreams: 4, SlowRcvBuf: 4096, ReconnectDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.start()
	finished := false
	t.Cleanup(func() {
		if !finished {
			p.finish(0)
		}
	})
	hubtest.WaitFor(t, "4 streams", 5*time.Second, func() bool { return p.stats().Connected == 4 })
	seq := int64(0)
	publish := func(n int, pad int) {
		t.Helper()
		for range n {
			seq++
			body := `{"ts":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"seq":` + strconv.FormatInt(seq, 10) +
				`,"pad":"` + strings.Repeat("x", pad) + `"}`
			resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	events := func(n int64) func() bool { return func() bool { return p.stats().Events == n } }
	p.setPhase(phaseBaseline, 1)
	publish(3, 0)
	hubtest.WaitFor(t, "every stream to read 3 events", 5*time.Second, events(4*3))
	p.stall()
	p.setPhase(phaseStalled, seq+1)
	publish(1, 0) // each slow stream stops after reading this one
	hubtest.WaitFor(t, "every stream to read 4 events", 5*time.Second, events(4*4))
	if closes {
		// Frames of 900 kB each: loopback buffers ~3 MB for a stream that
		// reads nothing, then the floor's write to it times out.
		publish(8, 900_000)
		hubtest.WaitFor(t, "the floor to close the slow streams", 10*time.Second, func() bool { return f.slow.Load() == 2 })
	} else {
		publish(5, 0)
		hubtest.WaitFor(t, "the others to read 9 events", 5*time.Second, func() bool { return p.stats().Delivered == 2*9 })
		if got := p.stats().Events; got != 2*9+2*4 {
			t.Fatalf("%d events read, want the slow streams to stop at 4", got)
		}
	}
	p.setPhase(phaseResumed, seq+1)
	p.resume(seq)
	if closes {
		// What the floor wrote before it closed them is read, then they
		// reconnect: the floor has no resume, so they catch up only with
		// an event published once they are back.
		hubtest.WaitFor(t, "the slow streams back", 10*time.Second, func() bool {
			st := p.stats()
			return st.Reconnects == 2 && st.Connected == 4
		})
		publish(1, 0)
	}
	hubtest.WaitFor(t, "the slow streams to catch up", 10*time.Second, func() bool { return p.stats().SlowCaughtUp == 2 })
	p.setPhase(phaseDone, seq+1)
	publish(3, 0)
	hubtest.WaitFor(t, "the done events", 10*time.Second, func() bool {
		st := p.stats()
		return st.Delivered == 2*seq && st.SlowDone == 2*3
	})
	r := p.finish(int(seq))
	finished = true
	s := r.Slow
	if s == nil {
		t.Fatal("no slow result after a resume")
	}
	wantClosed := int64(0)
	if closes {
		wantClosed = 2
	}
	if s.Streams != 2 || s.Closed != wantClosed || s.CaughtUp != 2 || s.CatchUp.Count() != 2 || s.AllDone != 2 {
		t.Errorf("slow result %+v (catch-up count %d); want 2 streams, %d closed, 2 caught up, 2 with every done event",
			s, s.CatchUp.Count(), wantClosed)
	}
	// Without a close each read the 5 events published while it was
	// stalled, the last the newest at the resume.
	if !closes && s.CatchUpEvents != 2*5 {
		t.Errorf("%d events read to catch up, want %d", s.CatchUpEvents, 2*5)
	}
	if r.Counted != 2 {
		t.Errorf("%d streams counted, want the 2 that are not slow", r.Counted)
	}
}

// TestConflateAgainstHub runs the conflate scenario against a real hub:
// 40 streams, 4 of them slow, the progress of 5 jobs at 20 events/s, the
// slow ones stalled for 0.5 s. Nothing fills their buffers (no filler), so
// nothing is closed; both runs must account for every slow stream, its
// catch-up and every job's completed, and compare the others.
func TestConflateAgainstHub(t *testing.T) {
	t.Parallel()
	cmp, _ := runAgainstHub(t, Config{
		Scenario:     "conflate",
		Streams:      40,
		SlowReaders:  4,
		ProgressJobs: 5,
		Rate:         20,
		Duration:     1500 * time.Millisecond,
		Stall:        500 * time.Millisecond,
		Settle:       200 * time.Millisecond,
	})
	if len(cmp.Runs) != 2 || cmp.Conflation == nil {
		t.Fatalf("%d runs, conflation %+v: want without and with", len(cmp.Runs), cmp.Conflation)
	}
	for i, r := range cmp.Runs {
		s := r.Slow
		if r.Scenario != "slow" || r.Conflate != (i == 1) || s == nil {
			t.Fatalf("run %d: %s, conflate %v, slow %+v", i, r.Scenario, r.Conflate, s)
		}
		if r.Connected != 40 || r.PublishErrors != 0 || r.Published != 30+5 || r.Lost != 0 || s.OthersDoneMissing != 0 {
			t.Errorf("run %d: connected %d, published %d (%d errors: %s), lost %d, completed missing %d; want 30 + 5 events to the 36 others",
				i, r.Connected, r.Published, r.PublishErrors, r.PublishError, r.Lost, s.OthersDoneMissing)
		}
		if s.SlowStreams != 4 || s.StayedConnected != 4 || s.Closed != 0 || s.CaughtUp != 4 || s.CatchUp == nil ||
			s.AllCompleted != 4 || s.ProgressJobs != 5 || s.StallSeconds < 0.5 || s.FramesConflated < 0 || s.Overflow != 0 {
			t.Errorf("run %d: slow %+v", i, s)
		}
		if r.Server == nil || r.Server.CPUPerDelivery <= 0 || len(r.Phases) != 4 {
			t.Errorf("run %d: server %+v, phases %+v; want CPU per delivery, 4 phases", i, r.Server, r.Phases)
		}
	}
	cf := cmp.Conflation
	if cf.CPURatio != cmp.Runs[1].Server.CPUPerDelivery/cmp.Runs[0].Server.CPUPerDelivery || cf.P99Ratio != cf.P99On/cf.P99Off {
		t.Errorf("conflation %+v", cf)
	}
	var text strings.Builder
	if err := WriteText(&text, &Report{Comparisons: []*Comparison{cmp}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== conflate: 40 streams", "eventhub conflate=0", "eventhub conflate=1",
		"slow: stayed connected / closed", "slow: catch-up p50 / p99 / max", "4 of 4 (5 jobs)",
		"conflate: with conflation / without, same hub binary"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var page strings.Builder
	if err := WriteHTML(&page, &Report{Comparisons: []*Comparison{cmp}}); err != nil || !strings.Contains(page.String(), "with conflation / without") {
		t.Errorf("html report: %v", err)
	}
}
