package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
)

// WorkersConfig configures StartWorkers. Publish is required; the zero
// value of every other field works.
type WorkersConfig struct {
	// Publish is where the workers' events go: the hub's PublishWithKey,
	// the same door as an event POSTed by an outside worker. It returns
	// once the event log has them. A job's end (completed or failed) comes
	// with the idempotency key EndKey(job.ID), so that where the log keeps
	// keys (a cluster's) a job run twice (its node went quiet, another took
	// it) ends once.
	Publish func(ctx context.Context, key string, events []Event) ([]uint64, error)
	// PerType is the number of worker actors per job type: at most PerType
	// jobs of one type run at once, the rest wait in their pool, which
	// hands them out fairly across users. Zero means 2.
	PerType int
	// QueueSize bounds the jobs of one type waiting for a worker: past it
	// Submit refuses a job (RefusedQueueFull). Zero means 1000.
	QueueSize int
	// PerUser bounds the jobs one user has in flight (queued or running)
	// through Submit or Admit: past it they are refused
	// (RefusedUserInFlight). Zero means 50; negative means no limit.
	PerUser int
	// Rate bounds the jobs one user submits a second, a token bucket that
	// holds Burst: past it they are refused (RefusedUserRate). Zero means
	// 5; negative means no limit. Burst zero means 20.
	Rate  float64
	Burst int
	// Timeout bounds one job's run: a job still running then ends failed.
	// Zero means 10s.
	Timeout time.Duration
	// Logger receives the panics recovered from jobs and worker restarts.
	// Nil means no logging.
	Logger *slog.Logger
	// Registerer takes the workers' metrics (eventhub_jobs_total,
	// eventhub_job_duration_seconds, eventhub_job_queue_depth,
	// eventhub_job_wait_seconds, eventhub_jobs_refused_total). Nil means a
	// private registry.
	Registerer prometheus.Registerer

	// Test seams.
	now func() time.Time                                                 // the clock; nil means time.Now
	run func(ctx context.Context, job Job, report Progress) (any, error) // a job's computation; nil means compute
}

// Workers runs submitted jobs on worker actors, a supervised pool of them per
// job type, and publishes each job's events: queued, started, then
// completed or failed. It is this node's Queue, and what a cluster's work
// queue feeds. Its methods are safe for concurrent use.
//
// The actors own the jobs they run and those that wait; Workers itself owns
// only the stopped flag (under mu) and the cancel of the context every job
// runs under. The budgets (env.users, the queue slots) guard themselves.
type Workers struct {
	perType int
	root    *actor.RootContext
	env     *workerEnv
	pools   [Probability + 1]*actor.PID // by Type; set once by StartWorkers
	slots   [Probability + 1]*queueSlots
	cancel  context.CancelFunc // cancels env.base: Stop ends running jobs

	// mu is held shared by Submit while it sends, and exclusively by Stop to
	// set stopped: so every job Submit let through is in a pool's mailbox
	// before Stop sends the pools drain.
	mu       sync.RWMutex
	stopped  bool
	stopOnce sync.Once
}

// workerEnv is what every pool and worker actor of one Workers shares. It is
// read-only after StartWorkers.
type workerEnv struct {
	publish func(ctx context.Context, key string, events []Event) ([]uint64, error)
	base    context.Context // done once Stop is called
	timeout time.Duration
	now     func() time.Time
	run     func(ctx context.Context, job Job, report Progress) (any, error)
	log     *slog.Logger
	m       *workerMetrics
	users   *userLimits
}

// workerMetrics are the workers' metrics, children resolved up front.
type workerMetrics struct {
	done     [Probability + 1][2]prometheus.Counter // by type, then 0 completed / 1 failed
	duration [Probability + 1]prometheus.Observer
	wait     [Probability + 1]prometheus.Observer
	refused  map[string]prometheus.Counter // by reason; read-only once built
}

func newWorkerMetrics(reg prometheus.Registerer, slots [Probability + 1]*queueSlots) (*workerMetrics, error) {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_jobs_total", Help: "Jobs run by the in-process workers, by type and result (completed or failed).",
	}, []string{"type", "result"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "eventhub_job_duration_seconds", Help: "How long in-process jobs ran, from started to completed or failed.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1ms … 65s
	}, []string{"type"})
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "eventhub_job_wait_seconds", Help: "How long jobs waited for a worker on this node, from queued (or taken from the cluster's queue) to started.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 11), // 1ms … 17min
	}, []string{"type"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_jobs_refused_total", Help: "Jobs refused with a 429 because a budget was spent: queue_full, user_in_flight or user_rate.",
	}, []string{"reason"})
	collectors := []prometheus.Collector{total, duration, wait, refused}
	m := &workerMetrics{refused: map[string]prometheus.Counter{}}
	for _, t := range Types {
		m.done[t][0] = total.WithLabelValues(t.String(), "completed")
		m.done[t][1] = total.WithLabelValues(t.String(), "failed")
		m.duration[t] = duration.WithLabelValues(t.String())
		m.wait[t] = wait.WithLabelValues(t.String())
		s := slots[t]
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eventhub_job_queue_depth", Help: "Jobs waiting for a worker on this node, by type.",
			ConstLabels: prometheus.Labels{"type": t.String()},
		}, func() float64 { return float64(s.waiting.Load()) }))
	}
	for _, reason := range []string{RefusedQueueFull, RefusedUserInFlight, RefusedUserRate} {
		m.refused[reason] = refused.WithLabelValues(reason)
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// StartWorkers spawns the worker pools on root's actor system and returns at
// once; events go to cfg.Publish. Stop them with Stop, before the hub is
// stopped, so the failed events of the jobs Stop cuts short are published.
func StartWorkers(root *actor.RootContext, cfg WorkersConfig) (*Workers, error) {
	if cfg.Publish == nil {
		return nil, errors.New("jobs: workers need a Publish")
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	queueSize := cfg.QueueSize
	if queueSize <= 0 {
		queueSize = 1000
	}
	var slots [Probability + 1]*queueSlots
	for _, t := range Types {
		slots[t] = &queueSlots{limit: int64(queueSize)}
	}
	m, err := newWorkerMetrics(cfg.Registerer, slots)
	if err != nil {
		return nil, fmt.Errorf("register job metrics: %w", err)
	}
	env := &workerEnv{publish: cfg.Publish, timeout: cfg.Timeout, now: cfg.now, run: cfg.run, log: cfg.Logger, m: m}
	if env.timeout <= 0 {
		env.timeout = 10 * time.Second
	}
	if env.now == nil {
		env.now = time.Now
	}
	if env.run == nil {
		env.run = compute
	}
	if env.log == nil {
		env.log = slog.New(slog.DiscardHandler)
	}
	perType := cfg.PerType
	if perType <= 0 {
		perType = 2
	}
	perUser, rate, burst := cfg.PerUser, cfg.Rate, cfg.Burst
	switch {
	case perUser == 0:
		perUser = 50
	case perUser < 0:
		perUser = 0 // no limit
	}
	switch {
	case rate == 0:
		rate = 5
	case rate < 0:
		rate = 0 // no limit
	}
	if burst <= 0 {
		burst = 20
	}
	env.users = newUserLimits(perUser, rate, burst, env.now)
	var cancel context.CancelFunc
	env.base, cancel = context.WithCancel(context.Background())

	w := &Workers{root: root, env: env, cancel: cancel, perType: perType, slots: slots}
	// OneForOne, restart: the workers of a pool share nothing, so one that
	// fails is restarted alone (and says it is idle again), and its
	// siblings' running jobs are left alone,
	// which AllForOne would cut short for no reason. A job's own panic never
	// gets here (the worker recovers it and fails the job); this is for a
	// failure in the worker's code. A worker that fails more than 10 times a
	// minute is stopped and the pool replaces it.
	supervisor := actor.NewOneForOneStrategy(10, time.Minute, actor.DefaultDecider)
	for _, t := range Types {
		props := actor.PropsFromProducer(func() actor.Actor {
			return &pool{env: env, typ: t, size: perType, slots: slots[t]}
		}, actor.WithSupervisor(supervisor))
		w.pools[t] = root.SpawnPrefix(props, "jobs-"+t.String()+"-")
	}
	return w, nil
}

// Queue is where submitted jobs wait for a worker: this node's Workers, or
// a cluster's work queue shared by every node (internal/natsjs), which
// feeds each node's Workers. Submit publishes the job's queued event before
// any worker can start it, and returns an error when it could not (nothing
// then runs). Stop stops taking jobs.
type Queue interface {
	Submit(ctx context.Context, job Job) error
	Stop()
}

var _ Queue = (*Workers)(nil)

// Submit takes a job into its type's queue, publishes its queued event,
// and hands it to its pool, which gives it to a worker fairly across users.
// It returns once the event is published. A *RefusedError says a budget is
// spent (the queue of its type is full, or its user has too many jobs in
// flight or submits too fast): nothing was published and the job does not
// run. Another error says the queued event was not published, and the job
// does not run either. The job must be valid: an id passing CheckID (see
// NewJobID), a known type and the scope ids its type needs, as DecodeJob
// and DemoJob make them; Submit panics otherwise, a programming error.
// Submit keeps job.Params: the caller must not modify it afterwards. After
// Stop, the job is failed at once.
func (w *Workers) Submit(ctx context.Context, job Job) error {
	if err := job.check(); err != nil {
		panic("BUG: jobs: Submit: " + err.Error())
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.stopped {
		if err := w.Announce(ctx, job); err != nil {
			return err
		}
		w.env.emit(w.env.event(job, Failed, w.env.now(), eventData{DurationMs: new(int64(0)), Error: "workers stopped"}))
		return nil
	}
	// Budgets first, so that a refused job leaves no event behind.
	slots := w.slots[job.Type]
	if !slots.reserve() {
		return w.RefuseQueueFull(job.Type)
	}
	release, err := w.Admit(job)
	if err != nil {
		slots.waiting.Add(-1)
		return err
	}
	if err := w.Announce(ctx, job); err != nil {
		slots.waiting.Add(-1)
		release()
		return err
	}
	w.root.Send(w.pools[job.Type], runJob{job: job, queued: w.env.now()})
	return nil
}

// Admit counts job against its user's budgets on this node: the jobs they
// submit a second, and the jobs they have in flight. Submit calls it; a
// cluster's queue calls it on the submitting node before it announces a
// job, and calls release once the job has ended, wherever it ran. It
// returns a *RefusedError (and counts it) when a budget is spent; release is
// then nil.
func (w *Workers) Admit(job Job) (release func(), err error) {
	reason, retry := w.env.users.admit(job.User)
	if reason != "" {
		return nil, w.env.refuse(reason, job.Type, retry)
	}
	var once sync.Once
	return func() { once.Do(func() { w.env.users.release(job.User) }) }, nil
}

// RefuseQueueFull counts a job of type t refused because its queue is full
// (a cluster's queue calls it when its stream refuses a job) and returns the
// error that says so.
func (w *Workers) RefuseQueueFull(t Type) error {
	return w.env.refuse(RefusedQueueFull, t, retryQueueFull)
}

func (e *workerEnv) refuse(reason string, t Type, retry time.Duration) *RefusedError {
	e.m.refused[reason].Inc()
	return &RefusedError{Reason: reason, Type: t, RetryAfter: retry}
}

// Announce publishes job's queued event: what a work queue does before it
// queues the job, so that queued comes before anything a worker publishes.
func (w *Workers) Announce(ctx context.Context, job Job) error {
	if err := job.check(); err != nil {
		return fmt.Errorf("jobs: submit: %w", err)
	}
	if _, err := w.env.publish(ctx, "", []Event{*w.env.event(job, Queued, w.env.now(), eventData{})}); err != nil {
		return fmt.Errorf("jobs: submit %s: %w", job.ID, err)
	}
	return nil
}

// Fail publishes job's failed event with reason as its data.error: for a
// job that was announced but could not be queued.
func (w *Workers) Fail(ctx context.Context, job Job, reason string) error {
	ev := w.env.event(job, Failed, w.env.now(), eventData{DurationMs: new(int64(0)), Error: clipTo(reason, maxErrorLen)})
	_, err := w.env.publish(ctx, EndKey(job.ID), []Event{*ev})
	return err
}

// ErrorInterrupted is the data.error of a job ended by Interrupted.
const ErrorInterrupted = "interrupted"

// Interrupted is the failed event that ends a job whose node stopped
// without ending it (a crash; the job's queued or started event was the
// last): data.error "interrupted", and durationMs from its started event
// to now, or 0 when it had not started. latest is the job's latest event;
// its data is not needed, its scope is kept.
func Interrupted(latest Event, now time.Time) Event {
	var ms int64
	if latest.Status == Started {
		ms = max(now.Sub(latest.Timestamp).Milliseconds(), 0)
	}
	data, _ := json.Marshal(eventData{AssetID: latest.AssetID, ScenarioID: latest.ScenarioID, DurationMs: &ms, Error: ErrorInterrupted}) // plain strings and a number: never fails
	ev := Event{Type: latest.Type, JobID: latest.JobID, Status: Failed, Timestamp: now.UTC(), Data: data,
		AssetID: latest.AssetID, ScenarioID: latest.ScenarioID}
	if err := ev.Validate(); err != nil {
		panic(fmt.Sprintf("BUG: jobs: the interrupted event of job %s: %v", latest.JobID, err))
	}
	return ev
}

// Capacity is how many jobs this node's workers run at once.
func (w *Workers) Capacity() int { return w.perType * len(Types) }

// Timeout bounds one job's run.
func (w *Workers) Timeout() time.Duration { return w.env.timeout }

// Run hands a job from a cluster's work queue to a worker, without a queued
// event (the submitting node published it). attempt is how many times the
// queue has delivered it. done is called once, when the job has ended or was
// given up (finished false: leave it to another node).
func (w *Workers) Run(job Job, attempt uint64, done func(finished bool)) {
	if err := job.check(); err != nil {
		done(true) // a message that is not a job: acknowledge it away
		w.env.log.Error("jobs: invalid job in the queue", "job", job.ID, "err", err)
		return
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.stopped {
		done(false)
		return
	}
	// Not bounded here: the cluster's stream bounds what every node holds.
	w.slots[job.Type].waiting.Add(1)
	w.root.Send(w.pools[job.Type], runJob{job: job, attempt: attempt, done: done, queued: w.env.now()})
}

// Stop ends the workers and waits for their actors to stop. Jobs running or
// still waiting end failed ("canceled"): none is left queued or started
// forever. Stop is idempotent; a concurrent second call waits for the first.
func (w *Workers) Stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped = true
		w.mu.Unlock()
		// Canceling first makes the running jobs end at their next context
		// check, and the waiting ones fail as soon as a worker takes them.
		w.cancel()
		// A running job may take until its next context check to see the
		// cancel; the margin covers a job that ends at its deadline anyway.
		wait := w.env.timeout + 5*time.Second
		var drains []*actor.Future
		for _, t := range Types {
			drains = append(drains, w.root.RequestFuture(w.pools[t], drain{}, wait))
		}
		for i, f := range drains {
			if err := f.Wait(); err != nil {
				w.env.log.Error("jobs: a worker pool did not drain", "type", Types[i].String(), "err", err)
			}
		}
		var stops []*actor.Future
		for _, t := range Types {
			stops = append(stops, w.root.StopFuture(w.pools[t]))
		}
		for i, f := range stops {
			if err := f.Wait(); err != nil {
				w.env.log.Error("jobs: a worker pool did not stop", "type", Types[i].String(), "err", err)
			}
		}
	})
}

// errPanicked stands for a job that panicked; the panic itself is logged, not
// shown to whoever watches the job.
var errPanicked = errors.New("internal error")

// publishTimeout bounds the publishing of one of a job's events. It is not
// tied to the workers' context: the failed events of the jobs Stop cuts
// short must still go out.
const publishTimeout = 10 * time.Second

// emit publishes one of a job's events. An event the log did not take is
// logged: the job goes on, and its next event tells its state.
func (e *workerEnv) emit(ev *Event) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	var key string
	if ev.Status == Completed || ev.Status == Failed {
		key = EndKey(ev.JobID)
	}
	if _, err := e.publish(ctx, key, []Event{*ev}); err != nil {
		e.log.Error("jobs: an event was not published", "job", ev.JobID, "status", ev.Status.String(), "err", err)
	}
}

// EndKey is the idempotency key of job id's end: its completed or failed
// event. The ':' keeps it apart from any key a publisher may send.
func EndKey(id string) string { return "job:" + id + ":end" }

// giveUp ends a job that reached its pool after Stop had drained it: a
// cluster's goes back to its queue, one submitted here fails.
func (e *workerEnv) giveUp(m runJob) {
	defer e.finish(m)
	if m.done != nil {
		m.done(false) // another node will run it
		return
	}
	e.emit(e.event(m.job, Failed, e.now(), eventData{DurationMs: new(int64(0)), Error: "workers stopped"}))
}

// finish ends the count in its user's jobs in flight of a job submitted
// here (a cluster's queue releases its own).
func (e *workerEnv) finish(m runJob) {
	if m.done == nil {
		e.users.release(m.job.User)
	}
}

// handle runs one job and publishes its started and completed or failed
// events.
func (e *workerEnv) handle(m runJob) {
	defer e.finish(m)
	job := m.job
	if m.done != nil && e.base.Err() != nil {
		// Stop has begun (a worker freed by its cancel took this one before
		// the pool heard of the drain): another node runs it, unstarted.
		m.done(false)
		return
	}
	start := e.now()
	if !m.queued.IsZero() {
		e.m.wait[job.Type].Observe(max(0, start.Sub(m.queued).Seconds()))
	}
	var started eventData
	if m.attempt > 1 {
		started.Attempt = m.attempt // a redelivery: the node that had it went away
	}
	e.emit(e.event(job, Started, start, started))
	result, err := e.runBounded(job, e.progress(job, start, started.Attempt))
	if m.done != nil && errors.Is(err, context.Canceled) {
		m.done(false) // stopping: leave it to another node, unfinished
		return
	}
	if m.done != nil {
		defer m.done(true)
	}
	end := e.now()
	ms := end.Sub(start).Milliseconds()
	e.m.duration[job.Type].Observe(end.Sub(start).Seconds())
	if err == nil {
		var ev *Event
		if ev, err = e.tryEvent(job, Completed, end, eventData{DurationMs: &ms, Result: result}); err == nil {
			e.m.done[job.Type][0].Inc()
			e.emit(ev)
			return
		}
	}
	e.m.done[job.Type][1].Inc()
	e.emit(e.event(job, Failed, end, eventData{DurationMs: &ms, Error: e.describe(err)}))
}

// progressEvery bounds how often a job's progress is published: a started
// event with data.progress at most every 100 ms, ten a second.
const progressEvery = 100 * time.Millisecond

// progress returns what job's computation tells how far it got: it
// publishes a started event with data.progress and data.message, at most
// one every progressEvery from start. It is called on the job's goroutine.
func (e *workerEnv) progress(job Job, start time.Time, attempt uint64) Progress {
	last := start
	return func(fraction float64, message string) {
		now := e.now()
		if now.Sub(last) < progressEvery || !(fraction >= 0 && fraction <= 1) {
			return
		}
		last = now
		p := round(fraction, 3)
		e.emit(e.event(job, Started, now, eventData{Progress: &p, Message: clipTo(message, MaxMessageLen-len("…")), Attempt: attempt}))
	}
}

// runBounded runs the job's computation under the timeout and turns a panic
// into errPanicked, so the worker goes on with its next job. A computation
// must check its context: one that ignores it holds its worker until it
// returns.
func (e *workerEnv) runBounded(job Job, report Progress) (result any, err error) {
	ctx, cancel := context.WithTimeout(e.base, e.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("jobs: job panicked", "job", job.ID, "type", job.Type.String(), "err", fmt.Sprint(r), "stack", string(debug.Stack()))
			result, err = nil, errPanicked
		}
	}()
	return e.run(ctx, job, report)
}

// maxErrorLen bounds data.error, whatever a computation's error says.
const maxErrorLen = 512

// describe is the data.error of a failed job.
func (e *workerEnv) describe(err error) string {
	var msg string
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("timed out after %v", e.timeout)
	case errors.Is(err, context.Canceled):
		msg = "canceled: workers stopping"
	default:
		msg = err.Error()
	}
	return clipTo(msg, maxErrorLen)
}

// eventData is the data of the events workers send. It always carries the
// job's scope, so the hub can check RBAC on every step of the job.
type eventData struct {
	AssetID    string   `json:"assetId,omitempty"`
	ScenarioID string   `json:"scenarioId,omitempty"`
	DurationMs *int64   `json:"durationMs,omitempty"` // completed, failed
	Result     any      `json:"result,omitempty"`     // completed
	Error      string   `json:"error,omitempty"`      // failed
	Attempt    uint64   `json:"attempt,omitempty"`    // started, when redelivered
	Progress   *float64 `json:"progress,omitempty"`   // started again, as the job runs: 0 to 1
	Message    string   `json:"message,omitempty"`    // with progress
}

// tryEvent builds a job's event at time ts with data d plus the job's scope.
// It fails only when d does not encode (a result holding NaN, say) or is over
// MaxDataSize encoded.
func (e *workerEnv) tryEvent(job Job, st Status, ts time.Time, d eventData) (*Event, error) {
	d.AssetID, d.ScenarioID = job.AssetID, job.ScenarioID
	data, err := json.Marshal(d) // compact, and escapes any CR, LF, U+2028
	if err != nil {
		return nil, fmt.Errorf("result does not encode as JSON: %v", err)
	}
	if len(data) > MaxDataSize {
		return nil, fmt.Errorf("result is %d bytes encoded, over the %d limit", len(data), MaxDataSize)
	}
	ev := &Event{
		Type:       job.Type,
		JobID:      job.ID,
		Status:     st,
		Timestamp:  ts.UTC(),
		Data:       data,
		AssetID:    job.AssetID,
		ScenarioID: job.ScenarioID,
	}
	if err := ev.Validate(); err != nil {
		panic(fmt.Sprintf("BUG: jobs: invalid %v event for job %s: %v", st, job.ID, err))
	}
	return ev, nil
}

// event is tryEvent for data that always encodes: no result, and an error
// message bounded by maxErrorLen.
func (e *workerEnv) event(job Job, st Status, ts time.Time, d eventData) *Event {
	ev, err := e.tryEvent(job, st, ts, d)
	if err != nil {
		panic(fmt.Sprintf("BUG: jobs: %v event for job %s: %v", st, job.ID, err))
	}
	return ev
}

// DemoJob makes a small random job of a random kind for demo mode, scoped to
// ids picked from assets and scenarios (which must pass CheckID), with a
// fresh id and the given user. A kind whose scope a list cannot provide is
// not picked; DemoJob panics when both lists are empty. It uses only rng, so
// it is as safe for concurrent use as rng is (a *rand.Rand is not).
func DemoJob(rng *rand.Rand, user string, assets, scenarios []string) Job {
	var kinds []Type
	for _, t := range Types {
		if (!t.NeedsAsset() || len(assets) > 0) && (!t.NeedsScenario() || len(scenarios) > 0) {
			kinds = append(kinds, t)
		}
	}
	if len(kinds) == 0 {
		panic("BUG: jobs: DemoJob needs at least one asset or scenario")
	}
	job := Job{ID: NewJobID(), Type: kinds[rng.IntN(len(kinds))], User: user}
	if job.Type.NeedsAsset() {
		job.AssetID = assets[rng.IntN(len(assets))]
	}
	if job.Type.NeedsScenario() {
		job.ScenarioID = scenarios[rng.IntN(len(scenarios))]
	}
	cents := func(lo, hi float64) float64 { return round(lo+(hi-lo)*rng.Float64(), 2) }
	var params any
	switch job.Type {
	case Matrix:
		params = matrixParams{Rows: 3 + rng.IntN(8), Cols: 3 + rng.IntN(8), Shock: cents(0.05, 0.5)}
	case Growth:
		params = growthParams{Principal: cents(1000, 100000), Rate: cents(0.01, 0.12), Years: 5 + rng.IntN(26), Contribution: cents(0, 5000)}
	case Probability:
		params = probabilityParams{Start: 100, Target: cents(80, 200), Mu: cents(-0.02, 0.12), Sigma: cents(0.05, 0.4), Years: float64(1 + rng.IntN(10)), Trials: 5000}
	}
	job.Params, _ = json.Marshal(params) // plain numbers: never fails
	return job
}
