package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scenarios are the names Run accepts.
var Scenarios = []string{"idle", "broadcast", "ramp", "slow", "storm"}

// DefaultPubBody is a growth JobEvent an admin (and anyone allowed on asset
// a1) may see, carrying the send time and sequence number in its data.
const DefaultPubBody = `{"type":"growth","jobId":"bench-{seq}","status":"completed","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"a1","ts":{ts},"seq":{seq},"pad":"{pad}"}}`

// DefaultFillerBody is a probability JobEvent: streams that asked for
// types=growth do not receive it.
const DefaultFillerBody = `{"type":"probability","jobId":"filler-{seq}","status":"completed","timestamp":"2026-01-01T00:00:00Z","data":{"scenarioId":"s1","pad":"{pad}"}}`

// Config is one scenario run. Every zero value means the default in its
// comment, which aims at a local eventhub with development auth.
type Config struct {
	Scenario string // idle, broadcast, ramp, slow or storm; zero: broadcast

	SubURL     string   // zero: http://127.0.0.1:8080/api/events
	SubHeaders []string // zero: "Authorization: Bearer dev:bench"
	PubURL     string   // zero: /api/events on the stream URL's host
	PubHeaders []string // zero: "Authorization: Bearer dev-publish-key"
	PubBody    string   // zero: DefaultPubBody
	Pad        int      // length of {pad}
	MetricsURL string   // zero: /metrics on the stream URL's host
	// AllowRemote lets the URLs point off loopback.
	AllowRemote bool

	Streams  int           // zero: 1,000
	Rate     float64       // events/s; zero: 1 (ramp: the first step's rate, zero: 20,000 deliveries/s)
	Duration time.Duration // zero: 20 s (ramp: the bound on all its steps, zero: 90 s)

	// HubBinary, when set, is started for the run with HubArgs (zero:
	// DefaultHubArgs) and stopped after it; its RSS and CPU are measured.
	HubBinary string
	HubArgs   []string
	// Hubs, when more than 1, starts that many HubBinary processes on the
	// stream URL's address with --reuse-port, the first with NATS JetStream
	// embedded and the others joined to it, each with its own admin address
	// (clusterArgs); they are measured together and one by one. Negative
	// means ceil(Streams / StreamsPerHub). Zero and 1 mean one hub, as
	// above. HubArgs' zero value is then DefaultClusterHubArgs.
	Hubs int
	// HubPID is an already running server to measure, when HubBinary is not
	// set.
	HubPID int
	// Floor runs against the floor server (started by the harness) instead.
	Floor bool
	// CompareFloor runs the same scenario against the floor afterwards and
	// reports the ratios.
	CompareFloor bool
	// Self is the command that runs this program, used to start the floor
	// ("floor") and worker processes ("worker"); zero: os.Executable().
	Self []string
	// WorkDir holds the hub's log and permissions; zero: a temp dir.
	WorkDir string

	PerProcess      int // streams per process; zero: 15,000
	PerAddr         int // streams per source address 127.0.X.Y; zero: 10,000
	DialConcurrency int // connections opened at once; zero: 128
	// Epoll reads each harness process's streams from one epoll loop
	// instead of a goroutine each (Linux only; poolSpec.Epoll).
	Epoll      bool
	ReadBuffer int           // bytes per stream reader; zero: 1 KiB
	Settle     time.Duration // wait after connecting before RSS is read; zero: 2 s
	Drain      time.Duration // wait for deliveries after the last publish; zero: 5 s

	RampMaxP99 time.Duration // zero: 250 ms
	RampStep   time.Duration // zero: 5 s
	RampFactor float64       // zero: 1.4

	SlowFraction float64 // zero: 0.01
	SlowRcvBuf   int     // zero: 4096 bytes
	// FillerRate, when set, makes the slow scenario fill the stalled
	// clients' buffers quickly without loading the others: while they are
	// stalled, FillerBody (zero: DefaultFillerBody) is published FillerRate
	// times a second with FillerPad bytes of {pad}; the slow streams use the
	// stream URL as is, the others add OthersQuery (zero: "types=growth") so
	// that the filler does not reach them. A server that cannot filter (the
	// floor) cannot run this; Run then skips the floor comparison.
	FillerRate  float64
	FillerBody  string
	FillerPad   int
	OthersQuery string

	// Progress, when set, receives a live progress line during long phases,
	// redrawn in place with \r; with ProgressLines, one line every 5 s
	// instead (for a log or a pipe).
	Progress      io.Writer
	ProgressLines bool
}

func (c *Config) defaults() error {
	if c.Scenario == "" {
		c.Scenario = "broadcast"
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	if !known {
		return fmt.Errorf("%w: unknown scenario %q (want one of %s)", ErrConfig, c.Scenario, strings.Join(Scenarios, ", "))
	}
	if c.SubURL == "" {
		c.SubURL = "http://127.0.0.1:8080/api/events"
	}
	if c.SubHeaders == nil {
		c.SubHeaders = []string{"Authorization: Bearer dev:bench"}
	}
	if c.PubURL == "" {
		c.PubURL = withPath(c.SubURL, "/api/events")
	}
	if c.PubHeaders == nil {
		c.PubHeaders = []string{"Authorization: Bearer dev-publish-key"}
	}
	if c.PubBody == "" {
		c.PubBody = DefaultPubBody
	}
	if c.MetricsURL == "" {
		c.MetricsURL = withPath(c.SubURL, "/metrics")
	}
	if c.Streams <= 0 {
		c.Streams = 1000
	}
	if c.Rate <= 0 {
		c.Rate = 1
		if c.Scenario == "ramp" && c.Streams > 0 {
			// The first step offers ~20,000 deliveries/s.
			c.Rate = max(0.1, 20000/float64(c.Streams))
		}
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
		if c.Scenario == "ramp" {
			c.Duration = 90 * time.Second
		}
	}
	if c.Hubs < 0 {
		c.Hubs = hubsFor(c.Streams)
	}
	if c.Hubs > 1 {
		if c.HubBinary == "" {
			return fmt.Errorf("%w: %d hubs need a hub binary to start", ErrConfig, c.Hubs)
		}
		if c.Floor || c.CompareFloor {
			return fmt.Errorf("%w: the floor is one process: it cannot be compared with %d hubs", ErrConfig, c.Hubs)
		}
	}
	if c.HubArgs == nil {
		c.HubArgs = DefaultHubArgs
		if c.Hubs > 1 {
			c.HubArgs = DefaultClusterHubArgs
		}
	}
	if c.PerProcess <= 0 {
		c.PerProcess = 15000
	}
	if c.PerAddr <= 0 {
		c.PerAddr = 10000
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.RampMaxP99 <= 0 {
		c.RampMaxP99 = 250 * time.Millisecond
	}
	if c.RampStep <= 0 {
		c.RampStep = 5 * time.Second
	}
	if c.RampFactor <= 1 {
		c.RampFactor = 1.4
	}
	if c.SlowFraction <= 0 {
		c.SlowFraction = 0.01
	}
	if c.SlowRcvBuf <= 0 {
		c.SlowRcvBuf = 4096
	}
	if c.FillerBody == "" {
		c.FillerBody = DefaultFillerBody
	}
	if c.OthersQuery == "" {
		c.OthersQuery = "types=growth"
	}
	if c.Self == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("%w: finding this program for workers: %w", ErrConfig, err)
		}
		c.Self = []string{exe}
	}
	if !c.AllowRemote {
		for _, u := range []string{c.SubURL, c.PubURL, c.MetricsURL} {
			if err := checkLoopback(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// withPath returns raw with its path and query replaced by path.
func withPath(raw, path string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path, u.RawQuery = path, ""
	return u.String()
}

// withQuery returns raw with query added to its query string.
func withQuery(raw, query string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += query
	return u.String()
}

// Run runs one scenario against the target and, with CompareFloor, against
// the floor, one after the other. Every run is bounded in time and ends by
// itself; cancelling ctx ends it early.
func Run(ctx context.Context, cfg Config) (*Comparison, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	cmp := &Comparison{Scenario: cfg.Scenario}
	first, err := runOne(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cmp.Runs = append(cmp.Runs, first)
	if cfg.CompareFloor && !cfg.Floor && !(cfg.Scenario == "slow" && cfg.FillerRate > 0) {
		fc := cfg
		fc.Floor, fc.HubBinary, fc.HubPID = true, "", 0
		floor, err := runOne(ctx, fc)
		if err != nil {
			return cmp, fmt.Errorf("against the floor: %w", err)
		}
		cmp.Runs = append(cmp.Runs, floor)
		cmp.Ratios = ratios(first, floor)
	}
	return cmp, nil
}

// runner is one scenario against one server. It is used by one goroutine,
// except for the sampler it starts and stops.
type runner struct {
	cfg     Config
	res     *Result
	start   time.Time
	target  *process // nil for an external server or a cluster
	cluster *cluster // with Config.Hubs > 1
	pids    []int    // what to measure (summed), none for nothing
	workers []worker
	pub     *publisher
	maxSeq  int
	pubTime time.Duration // spent publishing and draining

	mu      sync.Mutex
	samples []procUsage // one a second, guarded by mu

	lastProgress time.Time
}

func runOne(ctx context.Context, cfg Config) (res *Result, err error) {
	r := &runner{cfg: cfg, start: time.Now()}
	r.res = &Result{Scenario: cfg.Scenario, Target: "server", Began: r.start, Streams: cfg.Streams}
	dir := cfg.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "eventhub-bench-")
		if err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	switch {
	case cfg.Floor:
		p, err := startFloor(ctx, cfg.Self, dir)
		if err != nil {
			return nil, err
		}
		r.target, r.res.Target = p, "floor"
		r.cfg.SubURL = withHost(cfg.SubURL, p.addr)
		r.cfg.PubURL = withHost(cfg.PubURL, p.addr)
		r.cfg.MetricsURL = withHost(cfg.MetricsURL, p.addr)
	case cfg.HubBinary != "" && cfg.Hubs > 1:
		addr, err := hostPort(cfg.SubURL)
		if err != nil {
			return nil, err
		}
		r.progressf("%s: starting %d hubs on %s", cfg.Scenario, cfg.Hubs, addr)
		cl, err := startCluster(ctx, cfg.HubBinary, cfg.HubArgs, cfg.Hubs, addr, dir)
		if err != nil {
			return nil, err
		}
		defer cl.stop()
		r.cluster, r.res.Target = cl, fmt.Sprintf("eventhub ×%d", cfg.Hubs)
		r.pids = cl.pids()
	case cfg.HubBinary != "":
		addr, err := hostPort(cfg.SubURL)
		if err != nil {
			return nil, err
		}
		p, err := startHub(ctx, cfg.HubBinary, cfg.HubArgs, addr, dir)
		if err != nil {
			return nil, err
		}
		r.target, r.res.Target = p, "eventhub"
	}
	switch {
	case r.target != nil:
		defer r.target.stop()
		r.pids = []int{r.target.pid()}
	case r.cluster == nil && cfg.HubPID != 0:
		r.pids = []int{cfg.HubPID}
	}
	r.res.URL = r.cfg.SubURL
	r.progressf("%s against %s: starting", cfg.Scenario, r.res.Target)

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	if len(r.pids) > 0 {
		sampling.Add(1)
		go func() {
			defer sampling.Done()
			r.sample(sampleCtx)
		}()
	}
	defer func() {
		stopSampling()
		sampling.Wait()
		if err == nil {
			r.finishUsage()
		}
		r.res.Seconds = time.Since(r.start).Seconds()
		r.progressDone()
	}()

	if err := r.body(ctx); err != nil {
		return nil, err
	}
	return r.res, nil
}

// sample reads the server's usage once a second until ctx ends.
func (r *runner) sample(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if u, err := r.readUsage(); err == nil {
			r.mu.Lock()
			r.samples = append(r.samples, u)
			r.mu.Unlock()
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// readUsage reads the server's usage now, summed over its processes.
func (r *runner) readUsage() (procUsage, error) {
	sum := procUsage{At: time.Now()}
	for _, pid := range r.pids {
		u, err := readProc(pid)
		if err != nil {
			return sum, err
		}
		sum.RSS += u.RSS
		sum.CPU += u.CPU
	}
	return sum, nil
}

// usage reads the server's usage now (zero without a process).
func (r *runner) usage() procUsage {
	u, _ := r.readUsage()
	return u
}

// hubUsages reads each hub's usage now (zero for one it cannot read).
func (r *runner) hubUsages() []procUsage {
	us := make([]procUsage, len(r.pids))
	for i, pid := range r.pids {
		us[i], _ = readProc(pid)
	}
	return us
}

// exited reports an error if the server the harness started has exited.
func (r *runner) exited() error {
	switch {
	case r.target != nil:
		return r.target.exited()
	case r.cluster != nil:
		return r.cluster.exited()
	}
	return nil
}

// selfCPU is the CPU time of this process and its workers.
func (r *runner) selfCPU() time.Duration {
	return r.controllerCPU() + r.workersCPU()
}

// controllerCPU is the CPU time of this process (the publisher, and the
// streams too when they need no worker process).
func (r *runner) controllerCPU() time.Duration {
	u, _ := readProc(os.Getpid())
	return u.CPU
}

// workersCPU is the CPU time of the worker processes (0 without any).
func (r *runner) workersCPU() time.Duration { return r.workersUsage().CPU }

// workersUsage is the worker processes' usage, summed.
func (r *runner) workersUsage() procUsage {
	var sum procUsage
	for _, w := range r.workers {
		if pid := w.pid(); pid != 0 {
			if u, err := readProc(pid); err == nil {
				sum.RSS += u.RSS
				sum.CPU += u.CPU
				sum.Sys += u.Sys
			}
		}
	}
	return sum
}

// plannedEvents bounds how many events the scenario publishes.
func (r *runner) plannedEvents() int {
	c := r.cfg
	switch c.Scenario {
	case "idle":
		return 0
	case "ramp":
		n, rate := 0.0, c.Rate
		for t := time.Duration(0); t < c.Duration; t += c.RampStep {
			n += rate*c.RampStep.Seconds() + 2
			rate *= c.RampFactor
		}
		return int(n) + 16
	default:
		return int(c.Rate*c.Duration.Seconds()*1.05) + 16
	}
}

func (r *runner) body(ctx context.Context) error {
	c := r.cfg
	if c.Scenario != "idle" {
		tmpl, err := ParseTemplate(c.PubBody, c.Pad)
		if err != nil {
			return err
		}
		if ts, _ := tmpl.Has(); !ts {
			return fmt.Errorf("%w: the publish body has no {ts}: latency cannot be measured", ErrConfig)
		}
		r.maxSeq = r.plannedEvents()
		r.pub, err = newPublisher(c.PubURL, c.PubHeaders, tmpl, r.maxSeq)
		if err != nil {
			return err
		}
		defer r.pub.close()
	}

	// Let the server settle before its baseline is read.
	if len(r.pids) > 0 {
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	before := r.usage()
	hubsBefore := r.hubUsages()
	cpuStart := r.selfCPU()
	if len(r.pids) > 0 {
		r.res.Server = &ServerUsage{PID: r.pids[0], RSSBefore: before.RSS}
	}

	if err := r.startWorkers(); err != nil {
		return err
	}
	defer r.killWorkers()
	if err := r.connect(ctx); err != nil {
		return err
	}
	if err := sleep(ctx, c.Settle); err != nil {
		return err
	}
	connected := r.usage()
	if s := r.res.Server; s != nil {
		s.RSSConnected = connected.RSS
		if r.res.Connected > 0 {
			s.RSSPerStream = float64(connected.RSS-before.RSS) / float64(r.res.Connected)
		}
	}
	if r.cluster != nil {
		r.hubsConnected(ctx, hubsBefore)
	}
	self, _ := readProc(os.Getpid())
	r.res.ClientRSS = self.RSS + r.workersUsage().RSS

	var err error
	switch c.Scenario {
	case "idle":
		err = r.idle(ctx)
	case "broadcast":
		err = r.broadcast(ctx)
	case "ramp":
		err = r.ramp(ctx)
	case "slow":
		err = r.slow(ctx)
	case "storm":
		err = r.storm(ctx)
	}
	if err != nil {
		return err
	}
	// Read the workers' CPU while they still run.
	r.res.ClientCPUSeconds = (r.selfCPU() - cpuStart).Seconds()
	if err := r.collect(); err != nil {
		return err
	}
	if s := r.res.Server; s != nil {
		end := r.usage()
		s.RSSEnd = end.RSS
	}
	return nil
}

// startWorkers splits the streams over processes of at most PerProcess
// streams each (this one when they all fit) and starts them.
func (r *runner) startWorkers() error {
	c := r.cfg
	n := c.Streams
	procs := (n + c.PerProcess - 1) / c.PerProcess
	seriesLen := int((c.Duration + c.Settle + c.Drain).Seconds()) + int(time.Since(r.start).Seconds()) + 120 + n/1000
	for i, first := 0, 0; i < procs; i++ {
		share := n / procs
		if i < n%procs {
			share++
		}
		spec := poolSpec{
			URL: c.SubURL, Headers: c.SubHeaders, Streams: share, FirstIndex: first,
			PerAddr: c.PerAddr, DialConcurrency: c.DialConcurrency, ReadBuffer: c.ReadBuffer,
			MaxSeq: r.maxSeq, Start: r.start.UnixNano(), SeriesLen: seriesLen,
			ReconnectDelay: 500 * time.Millisecond, Epoll: c.Epoll,
		}
		if c.Scenario == "slow" {
			spec.SlowFraction, spec.SlowRcvBuf = c.SlowFraction, c.SlowRcvBuf
			if c.FillerRate > 0 {
				spec.SlowURL, spec.URL = c.SubURL, withQuery(c.SubURL, c.OthersQuery)
			}
		}
		first += share
		var w worker
		if procs == 1 {
			w = &localWorker{}
		} else {
			rw, err := startRemoteWorker(append(append([]string{}, c.Self...), "worker"))
			if err != nil {
				return err
			}
			w = rw
		}
		r.workers = append(r.workers, w)
		if err := w.start(spec); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) killWorkers() {
	for _, w := range r.workers {
		w.kill()
	}
}

// stats adds up the workers' counters.
func (r *runner) stats() (poolStats, error) {
	var total poolStats
	for _, w := range r.workers {
		st, err := w.stats()
		if err != nil {
			return total, err
		}
		total.add(st)
	}
	return total, nil
}

// connect waits until every stream is open or has given up.
func (r *runner) connect(ctx context.Context) error {
	c := r.cfg
	t0 := time.Now()
	limit := 30*time.Second + time.Duration(c.Streams)*time.Millisecond
	for {
		st, err := r.stats()
		if err != nil {
			return err
		}
		el := time.Since(t0)
		r.progressf("%s against %s: connecting %d/%d streams (%.0f/s), %d failed",
			c.Scenario, r.res.Target, st.Opened, c.Streams, float64(st.Opened)/el.Seconds(), st.Failed)
		if st.Opened+st.Failed >= int64(c.Streams) || el > limit {
			r.res.Connected, r.res.Failed, r.res.FailReasons = st.Connected, st.Failed, st.FailReasons
			r.res.ConnectSeconds = el.Seconds()
			if el > 0 {
				r.res.ConnectRate = float64(st.Opened) / el.Seconds()
			}
			if st.Opened == 0 {
				return fmt.Errorf("no stream could connect to %s: %v", c.SubURL, st.FailReasons)
			}
			return nil
		}
		if err := r.exited(); err != nil {
			return err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// idle holds the streams for Duration and measures the server's CPU.
func (r *runner) idle(ctx context.Context) error {
	u0 := r.usage()
	deadline := time.Now().Add(r.cfg.Duration)
	for time.Now().Before(deadline) {
		st, err := r.stats()
		if err != nil {
			return err
		}
		r.progressf("idle against %s: %d streams open, %.0fs left", r.res.Target, st.Connected, time.Until(deadline).Seconds())
		if err := sleep(ctx, min(time.Second, time.Until(deadline))); err != nil {
			return err
		}
	}
	u1 := r.usage()
	if s := r.res.Server; s != nil && u1.At.After(u0.At) {
		s.IdleCPU = (u1.CPU - u0.CPU).Seconds() / u1.At.Sub(u0.At).Seconds()
		// After the hold the server has had time to collect the garbage of
		// the connection phase: this is the idle cost of a stream.
		s.RSSConnected = u1.RSS
		if r.res.Connected > 0 {
			s.RSSPerStream = float64(u1.RSS-s.RSSBefore) / float64(r.res.Connected)
		}
	}
	return nil
}

// publish publishes at rate for d with a progress line, then waits until
// every counted stream has every event (or Drain passes). It returns the
// seqs published and the time from the first publish to the last delivery.
func (r *runner) publish(ctx context.Context, name string, rate float64, d time.Duration, tick func(time.Duration)) (first, last int64, took time.Duration, err error) {
	st0, err := r.stats()
	if err != nil {
		return 0, 0, 0, err
	}
	t0 := time.Now()
	var statsErr error
	lastShown := time.Time{}
	first, last = r.pub.run(ctx, rate, d, func(el time.Duration) {
		if tick != nil {
			tick(el)
		}
		if time.Since(lastShown) < time.Second {
			return
		}
		lastShown = time.Now()
		st, err := r.stats()
		if err != nil {
			statsErr = err
			return
		}
		r.progressf("%s against %s: %s %.1f ev/s, %.0fs/%.0fs, %d published, %d delivered, %d open",
			r.cfg.Scenario, r.res.Target, name, rate, el.Seconds(), d.Seconds(), r.pub.seq, st.Delivered-st0.Delivered, st.Connected)
	})
	if statsErr != nil {
		return first, last, 0, statsErr
	}
	if err := ctx.Err(); err != nil {
		return first, last, 0, err
	}
	want := int64(0)
	deadline := time.Now().Add(r.cfg.Drain)
	for {
		st, err := r.stats()
		if err != nil {
			return first, last, 0, err
		}
		counted := r.counted()
		want = counted * (last - first + 1)
		got := st.Delivered - st0.Delivered
		if got >= want || time.Now().After(deadline) {
			took := time.Since(t0)
			r.pubTime += took
			return first, last, took, nil
		}
		r.progressf("%s against %s: draining, %d/%d delivered", r.cfg.Scenario, r.res.Target, got, want)
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return first, last, 0, err
		}
	}
}

// counted is the number of streams deliveries are expected on: connected
// and not slow.
func (r *runner) counted() int64 {
	slow := int64(0)
	if r.cfg.Scenario == "slow" {
		for i := range r.cfg.Streams {
			if isSlow(i, r.cfg.SlowFraction) {
				slow++
			}
		}
	}
	return max(r.res.Connected-slow, 0)
}

func (r *runner) broadcast(ctx context.Context) error {
	u0 := r.usage()
	split0 := r.cpuNow()
	st0, err := r.stats()
	if err != nil {
		return err
	}
	first, last, took, err := r.publish(ctx, "publishing", r.cfg.Rate, r.cfg.Duration, nil)
	if err != nil {
		return err
	}
	u1 := r.usage()
	r.res.CPU = r.cpuSplit(split0, r.cpuNow())
	st1, err := r.stats()
	if err != nil {
		return err
	}
	r.cpuPerDelivery(u0, u1, st1.Delivered-st0.Delivered)
	r.res.DeliveriesPerSec = float64(st1.Delivered-st0.Delivered) / took.Seconds()
	r.res.Phases = append(r.res.Phases, Phase{Name: "broadcast", Rate: r.cfg.Rate, Seconds: took.Seconds(),
		Published: last - first + 1, Delivered: st1.Delivered - st0.Delivered, DeliveriesPerSec: r.res.DeliveriesPerSec})
	return nil
}

func (r *runner) cpuPerDelivery(u0, u1 procUsage, delivered int64) {
	if s := r.res.Server; s != nil && delivered > 0 {
		s.CPUPerDelivery = float64((u1.CPU - u0.CPU).Microseconds()) / float64(delivered)
	}
}

// ramp raises the rate step by step until a step's p99 passes the bound
// twice in a row at one rate, a step loses events, or the time is up. A
// step over the bound is run once more before it ends the ramp: on a
// shared machine one noisy step should not decide the figure. Then, while
// there is time, it narrows the gap between the last rate that held and the
// one that did not (up to rampRefinements steps, each at their geometric
// mean), since the steps grow by RampFactor (40% by default).
func (r *runner) ramp(ctx context.Context) error {
	c := r.cfg
	ramp := &Ramp{BoundMs: ms(c.RampMaxP99), StoppedBy: "time"}
	r.res.Ramp = ramp
	deadline := time.Now().Add(c.Duration)
	rate := c.Rate
	again := false // this step repeats the previous one's rate
	step := 1
	for ; time.Until(deadline) >= c.RampStep; step++ {
		name := "step " + strconv.Itoa(step)
		if again {
			name += " (again)"
		}
		held, lost, p99, err := r.rampStep(ctx, name, rate)
		if err != nil {
			return err
		}
		if lost > 0 {
			ramp.StoppedBy = fmt.Sprintf("%d deliveries lost at %.1f events/s", lost, rate)
			return nil
		}
		if !held {
			if again {
				ramp.StoppedBy = fmt.Sprintf("p99 %.0f ms at %.1f events/s, twice", ms(p99), rate)
				step++
				break
			}
			again = true // the same rate once more
			continue
		}
		again = false
		rate *= c.RampFactor
	}
	if ramp.StoppedBy == "time" || ramp.BestRate == 0 {
		return nil
	}
	lo, hi := ramp.BestRate, rate
	for range rampRefinements {
		if time.Until(deadline) < c.RampStep {
			break
		}
		mid := math.Sqrt(lo * hi)
		held, lost, _, err := r.rampStep(ctx, "step "+strconv.Itoa(step)+" (between)", mid)
		if err != nil {
			return err
		}
		step++
		if lost > 0 {
			ramp.StoppedBy += fmt.Sprintf("; %d deliveries lost at %.1f events/s", lost, mid)
			return nil
		}
		if held {
			lo = mid
		} else {
			hi = mid
		}
	}
	return nil
}

// rampRefinements is how many steps a ramp spends between the last rate
// that held and the first that did not.
const rampRefinements = 2

// rampStep publishes at rate for one RampStep as phase name and reports
// whether it held (p99 within the bound, nothing lost), what it lost and
// its p99; a step that held and beat the best so far becomes the best.
func (r *runner) rampStep(ctx context.Context, name string, rate float64) (held bool, lost int64, p99 time.Duration, err error) {
	c, ramp := r.cfg, r.res.Ramp
	if err := r.setPhase(name, r.pub.seq+1); err != nil {
		return false, 0, 0, err
	}
	u0 := r.usage()
	st0, err := r.stats()
	if err != nil {
		return false, 0, 0, err
	}
	first, last, took, err := r.publish(ctx, name, rate, c.RampStep, nil)
	if err != nil {
		return false, 0, 0, err
	}
	u1 := r.usage()
	st1, err := r.stats()
	if err != nil {
		return false, 0, 0, err
	}
	h, err := r.phaseHist(name)
	if err != nil {
		return false, 0, 0, err
	}
	delivered := st1.Delivered - st0.Delivered
	ph := Phase{Name: name, Rate: rate, Seconds: took.Seconds(), Published: last - first + 1,
		Delivered: delivered, DeliveriesPerSec: float64(delivered) / c.RampStep.Seconds(), Latency: summarize(h)}
	r.res.Phases = append(r.res.Phases, ph)
	lost = r.counted()*ph.Published - delivered
	p99 = h.Quantile(0.99)
	held = p99 <= c.RampMaxP99 && lost <= 0
	if held && ph.DeliveriesPerSec > ramp.Best {
		ramp.Best, ramp.BestRate = ph.DeliveriesPerSec, rate
		r.cpuPerDelivery(u0, u1, delivered)
	}
	return held, lost, p99, nil
}

// slow publishes with every stream reading, then with the slow fraction
// stalled, and compares the others' latency.
func (r *runner) slow(ctx context.Context) error {
	c := r.cfg
	m0 := r.metrics(ctx)
	// The filler runs beside the publisher for the whole scenario, so that
	// the baseline and the stalled half differ only by the stall. It is
	// stopped and waited for before the figures are read.
	fillCtx, stopFill := context.WithCancel(ctx)
	defer stopFill()
	fillDone := make(chan error, 1) // capacity 1: read once, after stopFill
	if c.FillerRate > 0 {
		tmpl, err := ParseTemplate(c.FillerBody, c.FillerPad)
		if err != nil {
			return err
		}
		fill, err := newPublisher(c.PubURL, c.PubHeaders, tmpl, int(c.FillerRate*c.Duration.Seconds())+16)
		if err != nil {
			return err
		}
		go func() {
			defer fill.close()
			fill.run(fillCtx, c.FillerRate, c.Duration, nil)
			if fill.errors > 0 {
				fillDone <- fmt.Errorf("filler: %d publish errors, last: %s", fill.errors, fill.lastErr)
				return
			}
			fillDone <- nil
		}()
	} else {
		fillDone <- nil
	}
	err := r.slowPhases(ctx)
	stopFill()
	if ferr := <-fillDone; err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	m1 := r.metrics(ctx)
	s := &Slow{SlowStreams: int(r.res.Connected - r.counted()), Overflow: -1, SlowCloses: -1}
	if m0 != nil && m1 != nil {
		s.Overflow = m1.overflow - m0.overflow
		s.SlowCloses = m1.slowCloses - m0.slowCloses
	}
	r.res.Slow = s
	return nil
}

// slowPhases publishes with every stream reading, then stalls the slow
// ones and publishes as much again.
func (r *runner) slowPhases(ctx context.Context) error {
	c := r.cfg
	half := c.Duration / 2
	if err := r.setPhase("baseline", 1); err != nil {
		return err
	}
	if _, _, _, err := r.publish(ctx, "baseline", c.Rate, half, nil); err != nil {
		return err
	}
	for _, w := range r.workers {
		if err := w.stall(); err != nil {
			return err
		}
	}
	if err := r.setPhase("stalled", r.pub.seq+1); err != nil {
		return err
	}
	_, _, _, err := r.publish(ctx, "stalled", c.Rate, c.Duration-half, nil)
	return err
}

// storm publishes for Duration; a third of the way in, every stream drops
// and reconnects at once with its Last-Event-ID.
func (r *runner) storm(ctx context.Context) error {
	c := r.cfg
	st, err := r.stats()
	if err != nil {
		return err
	}
	storm := &Storm{Streams: st.Connected}
	r.res.Storm = storm
	var stormErr error
	stormed := false
	_, _, _, err = r.publish(ctx, "storm", c.Rate, c.Duration, func(el time.Duration) {
		if stormed || el < c.Duration/3 {
			return
		}
		stormed = true
		for _, w := range r.workers {
			if err := w.storm(); err != nil {
				stormErr = err
			}
		}
	})
	if err != nil {
		return err
	}
	return stormErr
}

func (r *runner) setPhase(name string, from int64) error {
	for _, w := range r.workers {
		if err := w.setPhase(name, from); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) phaseHist(name string) (*Histogram, error) {
	h := NewHistogram()
	for _, w := range r.workers {
		wh, err := w.phaseHist(name)
		if err != nil {
			return nil, err
		}
		h.Merge(wh)
	}
	return h, nil
}

// serverMetrics are the figures the harness reads from /metrics.
type serverMetrics struct{ overflow, slowCloses, streams float64 }

// metrics scrapes the server's /metrics (every hub's in a cluster) and
// adds them up; nil if one has none.
func (r *runner) metrics(ctx context.Context) *serverMetrics {
	urls := []string{r.cfg.MetricsURL}
	if r.cluster != nil {
		urls = r.cluster.metricsURLs()
	}
	sum := &serverMetrics{}
	for _, u := range urls {
		m := scrape(ctx, u)
		if m == nil {
			return nil
		}
		sum.overflow += m.overflow
		sum.slowCloses += m.slowCloses
		sum.streams += m.streams
	}
	return sum
}

// scrape reads the figures the harness uses from one /metrics page; nil
// if there is none.
func scrape(ctx context.Context, url string) *serverMetrics {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil
	}
	m := &serverMetrics{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		switch {
		case strings.HasSuffix(name, "_mailbox_overflow_total"):
			m.overflow += v
		case strings.Contains(name, `_streams_closed_total{`) && strings.Contains(name, `reason="slow"`):
			m.slowCloses += v
		case name == "eventhub_streams_active":
			m.streams += v
		}
	}
	return m
}

// collect finishes the workers and merges what they recorded.
func (r *runner) collect() error {
	upTo := 0
	if r.pub != nil {
		upTo = int(r.pub.seq)
	}
	var results []*poolResult
	var errs []error
	for _, w := range r.workers {
		pr, err := w.finish(upTo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, pr)
	}
	r.workers = nil
	if err := errors.Join(errs...); err != nil {
		return err
	}
	res := r.res
	var st poolStats
	all := NewHistogram()
	storm := NewHistogram()
	phases := map[string]*Histogram{}
	var series []*Histogram
	seqMax := make([]int64, upTo+1)
	seqCount := make([]int64, upTo+1)
	counted := int64(0)
	for _, pr := range results {
		st.add(pr.Stats)
		counted += pr.Counted
		storm.Merge(pr.Storm)
		for _, ph := range pr.Phases {
			all.Merge(ph.Latency)
			if phases[ph.Name] == nil {
				phases[ph.Name] = NewHistogram()
			}
			phases[ph.Name].Merge(ph.Latency)
		}
		for i, h := range pr.Series {
			for len(series) <= i {
				series = append(series, nil)
			}
			if h != nil {
				if series[i] == nil {
					series[i] = NewHistogram()
				}
				series[i].Merge(h)
			}
		}
		for i := range pr.SeqMax {
			if i <= upTo {
				seqMax[i] = max(seqMax[i], pr.SeqMax[i])
				seqCount[i] += int64(pr.SeqCount[i])
			}
		}
	}
	if res.DeliveriesPerSec == 0 && r.pubTime > 0 {
		res.DeliveriesPerSec = float64(st.Delivered) / r.pubTime.Seconds()
	}
	res.Histogram = all
	res.Latency = summarize(all)
	res.Delivered = st.Delivered
	res.Duplicates = st.Duplicates
	res.ClosedByServer = st.ClosedByServer
	res.Reconnects = st.Reconnects
	res.NoTimestamp = st.NoTS
	for i := range res.Phases {
		if res.Phases[i].Latency == nil {
			res.Phases[i].Latency = summarize(phases[res.Phases[i].Name])
		}
	}
	if res.Slow != nil {
		res.Slow.Baseline = summarize(phases["baseline"])
		res.Slow.Stalled = summarize(phases["stalled"])
	}
	if res.Storm != nil {
		res.Storm.Back = st.StormBack
		res.Storm.Reconnect = summarize(storm)
		if storm.Count() > 0 {
			res.Storm.AllBackMs = ms(storm.Max())
		}
	}
	if r.pub != nil {
		pb := r.pub
		res.Published = pb.seq
		res.PublishErrors, res.PublishError = pb.errors, pb.lastErr
		res.PublishLagMax = ms(pb.lagMax)
		res.PublishLatency = summarize(pb.post)
		res.Lost = max(counted*pb.seq-st.Delivered, 0)
		fan := NewHistogram()
		for seq := int64(1); seq <= pb.seq && seq < int64(len(seqMax)); seq++ {
			if seqCount[seq] >= counted && counted > 0 && seqMax[seq] > 0 {
				fan.Record(time.Duration(seqMax[seq] - pb.sent[seq]))
			} else {
				res.FanOutIncomplete++
			}
		}
		res.FanOut = summarize(fan)
	}
	r.mu.Lock()
	samples := append([]procUsage(nil), r.samples...)
	r.mu.Unlock()
	n := len(series)
	if len(samples) > 0 {
		n = max(n, int(samples[len(samples)-1].At.Sub(r.start).Seconds())+1)
	}
	res.Series = make([]Point, n)
	for i := range res.Series {
		res.Series[i].T = i
		if i < len(series) {
			res.Series[i].Latency = summarize(series[i])
		}
	}
	for i, u := range samples {
		t := int(u.At.Sub(r.start).Seconds())
		if t < 0 || t >= n {
			continue
		}
		res.Series[t].RSS = u.RSS
		if i > 0 {
			if dt := u.At.Sub(samples[i-1].At).Seconds(); dt > 0 {
				res.Series[t].CPU = (u.CPU - samples[i-1].CPU).Seconds() / dt
			}
		}
	}
	return nil
}

// finishUsage fills in the figures that need the whole run's samples.
func (r *runner) finishUsage() {
	s := r.res.Server
	if s == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.samples {
		s.RSSPeak = max(s.RSSPeak, u.RSS)
	}
	if n := len(r.samples); n > 1 {
		s.CPUSeconds = (r.samples[n-1].CPU - r.samples[0].CPU).Seconds()
	}
}

func (r *runner) progressf(format string, args ...any) {
	every := 250 * time.Millisecond
	if r.cfg.ProgressLines {
		every = 5 * time.Second
	}
	if r.cfg.Progress == nil || time.Since(r.lastProgress) < every {
		return
	}
	r.lastProgress = time.Now()
	line := fmt.Sprintf(format, args...)
	if r.cfg.ProgressLines {
		fmt.Fprintf(r.cfg.Progress, "%s\n", line)
		return
	}
	fmt.Fprintf(r.cfg.Progress, "\r%-110.110s", line)
}

func (r *runner) progressDone() {
	if r.cfg.Progress != nil && !r.cfg.ProgressLines && !r.lastProgress.IsZero() {
		fmt.Fprintf(r.cfg.Progress, "\r%-110s\r", "")
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
