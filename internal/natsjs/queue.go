package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/finexbot/eventhub/jobs"
)

// QueueConfig configures StartQueue.
type QueueConfig struct {
	// Conn is connected to NATS with JetStream; the queue does not close it.
	Conn *nats.Conn
	// Stream is the work-queue stream. Zero means "EVENTHUB_JOBS", on
	// subjects <Subject>.<type> with Subject zero meaning "eventhub.jobs".
	Stream, Subject string
	// Lease is how long a job stays with a node that has gone quiet (died,
	// or cut off from NATS) before the queue gives it to another: a node
	// renews the lease of every job it holds, waiting or running, every
	// Lease/3. Zero means DefaultLease.
	Lease time.Duration
	// Ended, when set, says whether a job has ended already: a job given
	// to this node again (its node went quiet after the job's end was in
	// the log, before it could say so to the queue) is then not run again.
	Ended func(ctx context.Context, id string) (bool, error)
	// MaxDeliver bounds how many times one job is tried. Zero means 5.
	MaxDeliver int
	// MaxJobs bounds the jobs in the queue (waiting, or held by a node
	// until they end), a third of it per kind; MaxBytes bounds their size.
	// Past either the stream refuses a job and Submit returns a
	// *jobs.RefusedError. Zero means 3000 jobs; MaxBytes zero means 16 KiB
	// a job.
	MaxJobs  int
	MaxBytes int64
	// Replicas is how many servers of a NATS cluster keep the queue, as
	// LogConfig.Replicas. Zero means 1.
	Replicas int
	// StartTimeout bounds how long StartQueue waits for JetStream to take
	// the stream and its consumer, as LogConfig.StartTimeout. Zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// Logger receives what went wrong with a job in the queue, and the
	// wait for JetStream at start. Nil means no logs.
	Logger *slog.Logger
}

// Queue is a cluster's job queue: a JetStream work queue shared by every
// node, which feeds each node's jobs.Workers. Each job runs once, on
// whichever node takes it first, and a job whose node dies before it ends is
// given to another once its lease runs out (its started event then says
// which attempt it is). It ends once: a job the log shows ended is not run
// again (QueueConfig.Ended), and two runs' ends, if it comes to that, are
// stored once (jobs.EndKey). Submit and Stop may be called from any
// goroutine.
//
// The per-user budgets (jobs.Workers.Admit) bind on the node a job is
// submitted to: it counts the job in its user's jobs in flight until the
// node that ran it says, on this node's subject doneTo, that it has ended.
// A word that never comes (the job ran out of deliveries) is made up for
// after inFlightLease. mu guards pending.
type Queue struct {
	cfg      QueueConfig
	w        *jobs.Workers
	js       jetstream.JetStream
	consumer jetstream.ConsumeContext
	doneTo   string
	doneSub  *nats.Subscription
	stopOnce sync.Once

	mu      sync.Mutex
	pending map[string]*admitted       // by job id: jobs submitted here, not known to have ended
	held    map[jetstream.Msg]struct{} // jobs this node holds, waiting or running: their leases are renewed

	stopRenew chan struct{} // closed by Stop: renew returns
	renewDone chan struct{} // closed when renew has returned
}

// DefaultLease is QueueConfig.Lease's default.
const DefaultLease = 10 * time.Second

// endedTimeout bounds the question whether a redelivered job has ended.
const endedTimeout = 2 * time.Second

// admitted is a job submitted on this node, counted in its user's jobs in
// flight until it ends.
type admitted struct {
	release func()
	lease   *time.Timer
}

// inFlightLease is how long a job submitted here counts in its user's jobs
// in flight at most, if no node says it has ended.
const inFlightLease = 10 * time.Minute

var _ jobs.Queue = (*Queue)(nil)

// wireQueuedJob is a job as it travels in the queue.
type wireQueuedJob struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	AssetID    string          `json:"assetId,omitempty"`
	ScenarioID string          `json:"scenarioId,omitempty"`
	Params     json.RawMessage `json:"params,omitempty"`
	User       string          `json:"user,omitempty"`
	DoneTo     string          `json:"doneTo,omitempty"` // where to say the job has ended
}

// StartQueue makes sure the work queue exists and starts feeding w from it.
// It waits up to cfg.StartTimeout for a JetStream cluster to take the
// queue, or until ctx is done.
func StartQueue(ctx context.Context, w *jobs.Workers, cfg QueueConfig) (*Queue, error) {
	if cfg.Conn == nil {
		return nil, errors.New("nats: the job queue needs a connection")
	}
	if cfg.Stream == "" {
		cfg.Stream = "EVENTHUB_JOBS"
	}
	if cfg.Subject == "" {
		cfg.Subject = "eventhub.jobs"
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 3000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = int64(cfg.MaxJobs) * 16 << 10
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if err := checkReplicas(cfg.Replicas); err != nil {
		return nil, err
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("nats: job queue: %w", err)
	}
	wait := startWait{timeout: cfg.StartTimeout, log: cfg.Logger}
	stream, err := ensureStream(ctx, js, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "eventhub jobs waiting for a worker",
		Subjects:    []string{cfg.Subject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  2 * time.Minute,
		// Full is full: a new job is refused (Submit answers 429), never an
		// old one dropped. A subject per kind, so one kind's backlog does
		// not refuse another's jobs.
		MaxMsgs:              int64(cfg.MaxJobs),
		MaxBytes:             cfg.MaxBytes,
		MaxMsgsPerSubject:    int64(max(1, cfg.MaxJobs/len(jobs.Types))),
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		Replicas:             cfg.Replicas,
	}, wait)
	if err != nil {
		return nil, err
	}
	// The consumer has the stream's replicas (its own count is zero), and
	// is placed while the cluster forms too.
	var cons jetstream.Consumer
	what := "job queue consumer " + cfg.Stream + "/workers"
	timedOut, err := wait.retry(ctx, what, cfg.Replicas, func(ctx context.Context) error {
		c, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:    "workers", // one consumer shared by every node: each job goes to one
			AckPolicy:  jetstream.AckExplicitPolicy,
			AckWait:    cfg.Lease,
			MaxDeliver: cfg.MaxDeliver,
		})
		cons = c
		return err
	})
	if err != nil {
		return nil, wait.failed(what, cfg.Replicas, err, timedOut)
	}
	q := &Queue{cfg: cfg, w: w, js: js, doneTo: nats.NewInbox(), pending: map[string]*admitted{}, held: map[jetstream.Msg]struct{}{},
		stopRenew: make(chan struct{}), renewDone: make(chan struct{})}
	q.doneSub, err = cfg.Conn.Subscribe(q.doneTo, func(m *nats.Msg) { q.ended(string(m.Data)) })
	if err != nil {
		return nil, fmt.Errorf("nats: job queue: %w", err)
	}
	// Take no more than this node's workers can hold, so the others get
	// their share.
	q.consumer, err = cons.Consume(q.take, jetstream.PullMaxMessages(max(2, w.Capacity())))
	if err != nil {
		q.doneSub.Unsubscribe()
		return nil, fmt.Errorf("nats: job queue consume: %w", err)
	}
	go q.renew()
	return q, nil
}

// renew renews, every Lease/3 until Stop, the lease of each job this node
// holds: a job that waits for a worker or runs longer than Lease stays
// here, and one whose node died goes to another within Lease.
func (q *Queue) renew() {
	defer close(q.renewDone)
	t := time.NewTicker(q.cfg.Lease / 3)
	defer t.Stop()
	var msgs []jetstream.Msg
	for {
		select {
		case <-q.stopRenew:
			return
		case <-t.C:
		}
		msgs = msgs[:0]
		q.mu.Lock()
		for m := range q.held {
			msgs = append(msgs, m)
		}
		q.mu.Unlock()
		for _, m := range msgs {
			m.InProgress() // a lost renewal is made up by the next
		}
	}
}

// hold starts (on) or ends the renewal of msg's lease.
func (q *Queue) hold(msg jetstream.Msg, on bool) {
	q.mu.Lock()
	if on {
		q.held[msg] = struct{}{}
	} else {
		delete(q.held, msg)
	}
	q.mu.Unlock()
}

// endedAlready reports whether a job the queue gives this node again has
// ended: the log has its end (a node died after publishing it, before it
// acknowledged the job). When the answer cannot be had, it runs again; its
// end is then stored once (jobs.EndKey).
func (q *Queue) endedAlready(id string, attempt uint64) bool {
	if attempt <= 1 || q.cfg.Ended == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), endedTimeout)
	defer cancel()
	ended, err := q.cfg.Ended(ctx, id)
	return err == nil && ended
}

// take hands one job from the queue to a worker; the job's message is
// acknowledged when it ends, or handed back if this node stops first.
func (q *Queue) take(msg jetstream.Msg) {
	var wj wireQueuedJob
	if err := json.Unmarshal(msg.Data(), &wj); err != nil {
		q.cfg.Logger.Error("nats: a message in the job queue is not a job", "err", err)
		msg.Term() // never redeliver it
		return
	}
	t, _ := jobs.ParseType(wj.Type)
	job := jobs.Job{ID: wj.ID, Type: t, AssetID: wj.AssetID, ScenarioID: wj.ScenarioID, Params: wj.Params, User: wj.User}
	var attempt uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	ended := func() {
		msg.Ack()
		if wj.DoneTo != "" {
			// Best effort: a word lost is made up for by the lease.
			q.cfg.Conn.Publish(wj.DoneTo, []byte(job.ID))
		}
	}
	if q.endedAlready(job.ID, attempt) {
		q.cfg.Logger.Info("nats: a job given again had ended already: not run again", "job", job.ID, "attempt", attempt)
		ended()
		return
	}
	q.hold(msg, true)
	q.w.Run(job, attempt, func(finished bool) {
		q.hold(msg, false)
		if !finished {
			msg.Nak()
			return
		}
		ended()
	})
}

// Submit counts job against its user's budgets on this node, publishes its
// queued event, then puts the job in the queue. It must be valid, as for
// jobs.Workers.Submit. A user over a budget gets a *jobs.RefusedError and
// nothing is published. If the job cannot be queued its failed event
// follows the queued one and Submit says why: a *jobs.RefusedError when
// the queue is full (the queued event must come before any node can start
// the job, so it is published before the queue can say so).
func (q *Queue) Submit(ctx context.Context, job jobs.Job) error {
	release, err := q.w.Admit(job)
	if err != nil {
		return err
	}
	if err := q.w.Announce(ctx, job); err != nil {
		release()
		return err
	}
	a := &admitted{release: release}
	q.mu.Lock()
	q.pending[job.ID] = a
	a.lease = time.AfterFunc(inFlightLease, func() { q.ended(job.ID) })
	q.mu.Unlock()
	data, _ := json.Marshal(wireQueuedJob{ID: job.ID, Type: job.Type.String(), AssetID: job.AssetID, ScenarioID: job.ScenarioID, Params: job.Params, User: job.User, DoneTo: q.doneTo})
	if _, err := q.js.Publish(ctx, q.cfg.Subject+"."+job.Type.String(), data, jetstream.WithMsgID(job.ID)); err != nil {
		q.ended(job.ID)
		reason := "could not queue the job"
		full := streamFull(err)
		if full {
			reason = "the job queue is full"
		}
		if ferr := q.w.Fail(ctx, job, reason); ferr != nil {
			q.cfg.Logger.Error("nats: a job was announced but neither queued nor failed", "job", job.ID, "err", ferr)
		}
		if full {
			return q.w.RefuseQueueFull(job.Type)
		}
		return fmt.Errorf("nats: queue %s: %w", job.ID, err)
	}
	return nil
}

// ended ends the count of a job submitted here in its user's jobs in
// flight, once: when a node says it has ended, its lease runs out, or it
// could not be queued.
func (q *Queue) ended(id string) {
	q.mu.Lock()
	a := q.pending[id]
	delete(q.pending, id)
	q.mu.Unlock()
	if a != nil {
		a.lease.Stop()
		a.release()
	}
}

// streamFull reports whether err is the stream refusing a message over its
// limits (Discard new: maximum messages, bytes, or messages per subject
// exceeded).
func streamFull(err error) bool {
	apiErr := apiError(err)
	return apiErr != nil && apiErr.ErrorCode == errCodeStoreFailed && strings.HasPrefix(apiErr.Description, "maximum ") && strings.HasSuffix(apiErr.Description, " exceeded")
}

// errCodeStoreFailed is JetStream's code for a message the stream did not
// store; its description says why.
const errCodeStoreFailed jetstream.ErrorCode = 10077

// Stop stops taking jobs. The jobs this node holds are handed back when
// its Workers stop: call Stop first, then Workers.Stop. It is idempotent.
func (q *Queue) Stop() {
	q.stopOnce.Do(func() {
		q.consumer.Stop()
		<-q.consumer.Closed()
		close(q.stopRenew)
		<-q.renewDone
		q.doneSub.Unsubscribe()
		q.mu.Lock()
		for id, a := range q.pending {
			a.lease.Stop()
			delete(q.pending, id)
		}
		q.mu.Unlock()
	})
}
