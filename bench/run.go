package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// Run runs one scenario against the target and, with CompareFloor, against
// the floor, one after the other. Every run is bounded in time and ends by
// itself; cancelling ctx ends it early.
func Run(ctx context.Context, cfg Config) (*Comparison, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Scenario == "selective" {
		// A broadcast, then the same streams and users with each event for
		// the streams of one of cfg.Assets assets, published cfg.Assets
		// times as often, each against a hub of its own; with CompareFloor
		// the same two against the floor.
		bc, sel := cfg, cfg
		bc.Scenario, bc.Assets = "broadcast", 0
		sel.Rate = cfg.Rate * float64(cfg.Assets)
		cfgs := []Config{bc, sel}
		if cfg.CompareFloor && !cfg.Floor {
			for _, c := range cfgs[:2] {
				c.Floor, c.HubBinary, c.HubPID = true, "", 0
				cfgs = append(cfgs, c)
			}
		}
		cmp, err := runEach(ctx, cfg.Scenario, cfgs...)
		if err == nil {
			cmp.Selective = compareSelective(cmp.Runs)
		}
		return cmp, err
	}
	if cfg.Scenario == "conflate" {
		// The slow scenario with progress, without conflation and then
		// with every stream asking for it, each against a hub of its own.
		// The floor cannot filter the filler out, nor conflate.
		off, on := cfg, cfg
		off.Scenario, on.Scenario = "slow", "slow"
		off.Conflate, on.Conflate = false, true
		cmp, err := runEach(ctx, cfg.Scenario, off, on)
		if err == nil {
			cmp.Conflation = compareConflation(cmp.Runs)
		}
		return cmp, err
	}
	// The floor's only filter is the harness's assets: the slow scenario's
	// filler needs a server that filters on type.
	if !cfg.CompareFloor || cfg.Floor || cfg.Scenario == "slow" && cfg.FillerRate > 0 {
		return runEach(ctx, cfg.Scenario, cfg)
	}
	fc := cfg
	fc.Floor, fc.HubBinary, fc.HubPID = true, "", 0
	cmp, err := runEach(ctx, cfg.Scenario, cfg, fc)
	if err == nil {
		cmp.Ratios = ratios(cmp.Runs[0], cmp.Runs[1])
	}
	return cmp, err
}

// runEach runs each config in turn into one comparison. When the first
// fails there is none; when a later one fails, the comparison keeps the
// results before it.
func runEach(ctx context.Context, scenario string, cfgs ...Config) (*Comparison, error) {
	cmp := &Comparison{Scenario: scenario}
	for i, c := range cfgs {
		r, err := runOne(ctx, c)
		switch {
		case err != nil && i == 0:
			return nil, err
		case err != nil && c.Floor:
			return cmp, fmt.Errorf("against the floor: %w", err)
		case err != nil:
			return cmp, fmt.Errorf("%s: %w", c.Scenario, err)
		}
		cmp.Runs = append(cmp.Runs, r)
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
	r.res = &Result{Scenario: cfg.Scenario, Target: "server", Began: r.start, Streams: cfg.Streams,
		Users: cfg.userCount(), Tabs: cfg.Tabs, Assets: cfg.Assets, Conflate: cfg.Conflate}
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
		p, err := startFloor(ctx, cfg.Self, dir, cfg.Assets)
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
		cl, err := startCluster(ctx, cfg.HubBinary, cfg.HubArgs, cfg.Hubs, cfg.NATSReplicas, addr, dir, userPermissions(cfg.userCount(), cfg.Assets))
		if err != nil {
			return nil, err
		}
		defer cl.stop()
		r.cluster, r.res.Target = cl, fmt.Sprintf("eventhub ×%d", cfg.Hubs)
		r.res.NATSReplicas = cfg.NATSReplicas
		if cfg.NATSReplicas > 1 {
			r.res.Target += fmt.Sprintf(" (NATS ×%d)", cfg.NATSReplicas)
		}
		r.pids = cl.pids()
	case cfg.HubBinary != "":
		addr, err := hostPort(cfg.SubURL)
		if err != nil {
			return nil, err
		}
		p, err := startHub(ctx, cfg.HubBinary, cfg.HubArgs, addr, dir, userPermissions(cfg.userCount(), cfg.Assets))
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
		// With progress, each job's done event comes after Duration.
		return int(c.Rate*c.Duration.Seconds()*1.05) + 16 + c.ProgressJobs
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
		r.pub, err = newPublisher(c.PubURL, c.PubHeaders, tmpl, r.maxSeq, c.Assets)
		if err != nil {
			return err
		}
		defer r.pub.close()
		if c.ProgressJobs > 0 {
			done, err := ParseTemplate(c.DoneBody, c.Pad)
			if err != nil {
				return err
			}
			r.pub.progressOf(c.ProgressJobs, done)
		}
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
	if !c.Floor {
		if m := r.metrics(ctx); m != nil {
			r.res.UsersActive = int64(m.users)
		}
	}
	self, _ := readProc(os.Getpid())
	r.res.ClientRSS = self.RSS + r.workersUsage().RSS

	var err error
	switch c.Scenario {
	case "idle":
		err = r.idle(ctx)
	case "broadcast", "selective":
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
	deadline := time.Now().Add(r.cfg.Drain)
	for {
		st, err := r.stats()
		if err != nil {
			return first, last, 0, err
		}
		want := r.expected(st, first, last)
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

// expected is how many deliveries the events first to last are to make:
// each to every counted stream or, with Assets, to the streams of its
// asset that count (from the pools' stats st: not slow, and connected at
// least once).
func (r *runner) expected(st poolStats, first, last int64) int64 {
	if r.cfg.Assets == 0 {
		return r.counted() * max(last-first+1, 0)
	}
	n := int64(0)
	for seq := first; seq <= last; seq++ {
		n += r.pub.audience(st.Audience, seq)
	}
	return n
}

// counted is the number of streams deliveries are expected on: connected
// and not slow.
func (r *runner) counted() int64 {
	slow := int64(0)
	for i := range r.cfg.Streams {
		if r.cfg.isSlowStream(i) {
			slow++
		}
	}
	return max(r.res.Connected-slow, 0)
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
