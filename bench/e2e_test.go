package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// checkEveryDelivery fails the test unless all of a broadcast's streams
// connected, at least 15 events were published without an error, and every
// stream got every event exactly once.
func checkEveryDelivery(t *testing.T, r *Result, streams int64) {
	t.Helper()
	if r.Connected != streams || r.Failed != 0 {
		t.Fatalf("connected %d, failed %d (%v)", r.Connected, r.Failed, r.FailReasons)
	}
	if r.Published < 15 || r.PublishErrors != 0 {
		t.Fatalf("published %d, %d errors (%s)", r.Published, r.PublishErrors, r.PublishError)
	}
	if r.Delivered != streams*r.Published || r.Lost != 0 || r.Duplicates != 0 {
		t.Errorf("delivered %d of %d, lost %d, duplicates %d", r.Delivered, streams*r.Published, r.Lost, r.Duplicates)
	}
}

// startTestFloor serves a Floor on a loopback port for the test's lifetime.
func startTestFloor(t *testing.T) (*Floor, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Floor{WriteTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()
	t.Cleanup(func() {
		f.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f, ln.Addr().String()
}

func TestFloorWireBytes(t *testing.T) {
	t.Parallel()
	f, addr := startTestFloor(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /anything?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	head := make([]byte, len(floorHead))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != string(floorHead) {
		t.Fatalf("head = %q, %v", head, err)
	}
	hubtest.WaitFor(t, "stream registered", 5*time.Second, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.streams) == 1
	})
	resp, err := http.Post("http://"+addr+"/publish", "application/json", strings.NewReader("{\"a\":\n1}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: %s", resp.Status)
	}
	want := "data: {\"a\": 1}\n\n"
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("frame = %q, %v; want %q", got, err, want)
	}
	for _, series := range []string{"floor_streams_active", "floor_events_delivered_total"} {
		if got := hubtest.Metric(t, "http://"+addr+"/metrics", series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
}

// TestBroadcastAgainstFloor runs the broadcast scenario end to end: 50
// streams over real loopback TCP against an in-process floor, measuring
// this process as the server, read by a goroutine each or by the poller.
func TestBroadcastAgainstFloor(t *testing.T) {
	t.Parallel()
	for _, epoll := range []bool{false, true} {
		t.Run(fmt.Sprintf("epoll=%v", epoll), func(t *testing.T) {
			t.Parallel()
			testBroadcastAgainstFloor(t, epoll)
		})
	}
}

func testBroadcastAgainstFloor(t *testing.T, epoll bool) {
	_, addr := startTestFloor(t)
	cmp, err := Run(context.Background(), Config{
		Scenario: "broadcast",
		SubURL:   "http://" + addr + "/api/events",
		Streams:  50,
		Rate:     20,
		Duration: time.Second,
		Settle:   10 * time.Millisecond,
		HubPID:   os.Getpid(),
		PerAddr:  20, // three source addresses
		Epoll:    epoll,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := cmp.Runs[0]
	checkEveryDelivery(t, r, 50)
	if r.Latency == nil || r.Latency.Count != uint64(r.Delivered) || r.Latency.Max <= 0 || r.Latency.Max > 5000 {
		t.Errorf("latency %+v, want %d samples in (0, 5s]", r.Latency, r.Delivered)
	}
	if r.FanOut == nil || r.FanOut.Count != uint64(r.Published) || r.FanOutIncomplete != 0 {
		t.Errorf("fan-out %+v, %d incomplete; want %d complete events", r.FanOut, r.FanOutIncomplete, r.Published)
	}
	if r.Server == nil || r.Server.RSSConnected <= 0 || r.Server.CPUPerDelivery <= 0 {
		t.Errorf("server usage %+v, want RSS and CPU read from /proc", r.Server)
	}
	if r.CPU == nil || r.CPU.Seconds < 1 || r.CPU.Hubs <= 0 {
		t.Errorf("CPU split %+v, want the publishing window and the server's share", r.CPU)
	}
	rep := &Report{Machine: ThisMachine(), Comparisons: []*Comparison{cmp}}
	var text, page strings.Builder
	if err := WriteText(&text, rep); err != nil || !strings.Contains(text.String(), "latency p99") {
		t.Errorf("text report: %v\n%s", err, text.String())
	}
	if err := WriteHTML(&page, rep); err != nil || !strings.Contains(page.String(), "<svg") {
		t.Errorf("html report: %v", err)
	}
}

// TestWorkerProtocol drives ServeWorker the way the controller drives a
// worker process, over pipes.
func TestWorkerProtocol(t *testing.T) {
	t.Parallel()
	_, addr := startTestFloor(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- ServeWorker(inR, outW)
		outW.Close()
	}()
	enc := json.NewEncoder(inW)
	dec := json.NewDecoder(outR)
	call := func(req workerReq) workerResp {
		t.Helper()
		if err := enc.Encode(req); err != nil {
			t.Fatal(err)
		}
		var resp workerResp
		if err := dec.Decode(&resp); err != nil {
			t.Fatal(err)
		}
		if resp.Err != "" {
			t.Fatalf("%s: %s", req.Op, resp.Err)
		}
		return resp
	}
	spec := poolSpec{URL: "http://" + addr + "/", Streams: 10, MaxSeq: 10, Start: time.Now().UnixNano(), SeriesLen: 60}
	call(workerReq{Op: "start", Spec: &spec})
	hubtest.WaitFor(t, "10 streams", 5*time.Second, func() bool { return call(workerReq{Op: "stats"}).Stats.Connected == 10 })
	call(workerReq{Op: "phase", Name: "p1", FromSeq: 1})
	for seq := 1; seq <= 3; seq++ {
		body := `{"ts":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"seq":` + strconv.Itoa(seq) + `}`
		resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	hubtest.WaitFor(t, "30 deliveries", 5*time.Second, func() bool { return call(workerReq{Op: "stats"}).Stats.Delivered == 30 })
	// A stream counts a delivery just before it records its latency.
	hubtest.WaitFor(t, "30 latencies in phase p1", 5*time.Second, func() bool {
		h := call(workerReq{Op: "phaseHist", Name: "p1"}).Hist
		return h != nil && h.Count() == 30
	})
	call(workerReq{Op: "resume", FromSeq: 3}) // no slow streams: nothing to catch up
	res := call(workerReq{Op: "finish", UpTo: 3}).Result
	if res == nil || res.Counted != 10 || len(res.SeqCount) != 4 || res.SeqCount[3] != 10 {
		t.Fatalf("result %+v", res)
	}
	if res.Slow == nil || res.Slow.Streams != 0 || res.Slow.CatchUp == nil {
		t.Errorf("slow result after a resume: %+v", res.Slow)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeWorker: %v", err)
	}
	inW.Close()
}

// TestStormAgainstFloor: every stream is closed under its reader and
// reconnects, with a goroutine each and with the poller (whose loop must
// never read a socket closed under it).
func TestStormAgainstFloor(t *testing.T) {
	t.Parallel()
	for _, epoll := range []bool{false, true} {
		t.Run(fmt.Sprintf("epoll=%v", epoll), func(t *testing.T) {
			t.Parallel()
			_, addr := startTestFloor(t)
			cmp, err := Run(context.Background(), Config{
				Scenario: "storm",
				SubURL:   "http://" + addr + "/api/events",
				Streams:  40,
				Rate:     20,
				Duration: 1500 * time.Millisecond,
				Settle:   10 * time.Millisecond,
				Drain:    300 * time.Millisecond, // the floor has no resume: what the storm cut is never coming
				Epoll:    epoll,
			})
			if err != nil {
				t.Fatal(err)
			}
			r := cmp.Runs[0]
			if r.Storm == nil || r.Storm.Streams != 40 || r.Storm.Back != 40 || r.Duplicates != 0 {
				t.Fatalf("storm %+v, duplicates %d; want 40 of 40 back", r.Storm, r.Duplicates)
			}
			if r.Delivered == 0 || r.Delivered > 40*r.Published {
				t.Errorf("delivered %d of %d", r.Delivered, 40*r.Published)
			}
		})
	}
}

// TestRampAgainstFloor: the ramp raises the rate step by step, and a step
// over the bound is run once more at the same rate before it ends the ramp
// (here every step is over a bound of 1 ns, so the ramp is exactly two
// steps at the first rate).
func TestRampAgainstFloor(t *testing.T) {
	t.Parallel()
	_, addr := startTestFloor(t)
	run := func(bound time.Duration) *Result {
		cmp, err := Run(context.Background(), Config{
			Scenario:   "ramp",
			SubURL:     "http://" + addr + "/api/events",
			Streams:    20,
			Rate:       10,
			Duration:   2 * time.Second,
			RampStep:   400 * time.Millisecond,
			RampFactor: 2,
			RampMaxP99: bound,
			Settle:     10 * time.Millisecond,
			HubPID:     os.Getpid(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return cmp.Runs[0]
	}

	r := run(time.Nanosecond)
	if len(r.Phases) != 2 || r.Phases[1].Name != "step 2 (again)" || r.Phases[1].Rate != r.Phases[0].Rate {
		t.Fatalf("phases %+v, want step 1 and step 2 (again) at one rate", r.Phases)
	}
	if r.Ramp == nil || r.Ramp.Best != 0 || !strings.HasSuffix(r.Ramp.StoppedBy, "twice") {
		t.Errorf("ramp %+v, want no sustainable step, stopped by a p99 over the bound twice", r.Ramp)
	}

	r = run(5 * time.Second)
	if len(r.Phases) < 3 {
		t.Fatalf("phases %+v, want the rate raised at least twice", r.Phases)
	}
	for i := 1; i < len(r.Phases); i++ {
		if r.Phases[i].Rate != 2*r.Phases[i-1].Rate {
			t.Errorf("step %d at %.1f events/s after %.1f; want each step double", i+1, r.Phases[i].Rate, r.Phases[i-1].Rate)
		}
	}
	if r.Ramp == nil || r.Ramp.StoppedBy != "time" || r.Ramp.Best <= 0 || r.Lost != 0 {
		t.Errorf("ramp %+v, lost %d; want it to run out of time with a best rate and nothing lost", r.Ramp, r.Lost)
	}
}
