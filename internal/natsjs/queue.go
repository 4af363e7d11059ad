package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	// AckWait is how long a node may hold a job before it is given to
	// another: it must exceed the workers' Timeout. Zero means the workers'
	// Timeout plus 20s.
	AckWait time.Duration
	// MaxDeliver bounds how many times one job is tried. Zero means 5.
	MaxDeliver int
	// Logger receives what went wrong with a job in the queue. Nil means
	// no logs.
	Logger *slog.Logger
}

// Queue is a cluster's job queue: a JetStream work queue shared by every
// node, which feeds each node's jobs.Workers. Each job runs once, on
// whichever node takes it first, and a job whose node dies before it ends is
// given to another after AckWait (its started event then says which attempt
// it is). Submit and Stop may be called from any goroutine.
type Queue struct {
	cfg      QueueConfig
	w        *jobs.Workers
	js       jetstream.JetStream
	consumer jetstream.ConsumeContext
	stopOnce sync.Once
}

var _ jobs.Queue = (*Queue)(nil)

// wireQueuedJob is a job as it travels in the queue.
type wireQueuedJob struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	AssetID    string          `json:"assetId,omitempty"`
	ScenarioID string          `json:"scenarioId,omitempty"`
	Params     json.RawMessage `json:"params,omitempty"`
	User       string          `json:"user,omitempty"`
}

// StartQueue makes sure the work queue exists and starts feeding w from it.
func StartQueue(w *jobs.Workers, cfg QueueConfig) (*Queue, error) {
	if cfg.Conn == nil {
		return nil, errors.New("nats: the job queue needs a connection")
	}
	if cfg.Stream == "" {
		cfg.Stream = "EVENTHUB_JOBS"
	}
	if cfg.Subject == "" {
		cfg.Subject = "eventhub.jobs"
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = w.Timeout() + 20*time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("nats: job queue: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "eventhub jobs waiting for a worker",
		Subjects:    []string{cfg.Subject + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: job queue stream %s: %w", cfg.Stream, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:    "workers", // one consumer shared by every node: each job goes to one
		AckPolicy:  jetstream.AckExplicitPolicy,
		AckWait:    cfg.AckWait,
		MaxDeliver: cfg.MaxDeliver,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: job queue consumer: %w", err)
	}
	q := &Queue{cfg: cfg, w: w, js: js}
	// Take no more than this node's workers can hold, so the others get
	// their share.
	q.consumer, err = cons.Consume(q.take, jetstream.PullMaxMessages(max(2, w.Capacity())))
	if err != nil {
		return nil, fmt.Errorf("nats: job queue consume: %w", err)
	}
	return q, nil
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
	q.w.Run(job, attempt, func(finished bool) {
		if finished {
			msg.Ack()
		} else {
			msg.Nak()
		}
	})
}

// Submit publishes job's queued event, then puts the job in the queue. It
// must be valid, as for jobs.Workers.Submit. If the job cannot be queued its
// failed event follows the queued one and Submit says why.
func (q *Queue) Submit(ctx context.Context, job jobs.Job) error {
	if err := q.w.Announce(ctx, job); err != nil {
		return err
	}
	data, _ := json.Marshal(wireQueuedJob{ID: job.ID, Type: job.Type.String(), AssetID: job.AssetID, ScenarioID: job.ScenarioID, Params: job.Params, User: job.User})
	if _, err := q.js.Publish(ctx, q.cfg.Subject+"."+job.Type.String(), data, jetstream.WithMsgID(job.ID)); err != nil {
		if ferr := q.w.Fail(ctx, job, "could not queue the job"); ferr != nil {
			q.cfg.Logger.Error("nats: a job was announced but neither queued nor failed", "job", job.ID, "err", ferr)
		}
		return fmt.Errorf("nats: queue %s: %w", job.ID, err)
	}
	return nil
}

// Stop stops taking jobs. The jobs this node holds are handed back when
// its Workers stop: call Stop first, then Workers.Stop. It is idempotent.
func (q *Queue) Stop() {
	q.stopOnce.Do(func() {
		q.consumer.Stop()
		<-q.consumer.Closed()
	})
}
