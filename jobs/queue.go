package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// QueueConfig configures a cluster's job work queue.
type QueueConfig struct {
	// Conn is connected to NATS with JetStream; the queue does not close it.
	Conn *nats.Conn
	// PublishEvent appends an event to the cluster's event log and returns
	// once the log has it. Submit uses it for the queued event, so that
	// queued is in the log before any node can start the job.
	PublishEvent func(ctx context.Context, ev *Event) error
	// Stream is the work-queue stream. Zero means "EVENTHUB_JOBS", on
	// subjects <Subject>.<type> with Subject zero meaning "eventhub.jobs".
	Stream, Subject string
	// AckWait is how long a node may hold a job before it is given to
	// another: it must exceed the workers' Timeout. Zero means the workers'
	// Timeout plus 20s.
	AckWait time.Duration
	// MaxDeliver bounds how many times one job is tried. Zero means 5.
	MaxDeliver int
}

// Queue submits jobs to a JetStream work queue shared by every node of a
// cluster and feeds this node's workers from it: each job runs once, on
// whichever node takes it first, and a job whose node dies before it ends
// is given to another after AckWait (its started event then says which
// attempt it is). Submit and Stop may be called from any goroutine.
type Queue struct {
	cfg      QueueConfig
	w        *Workers
	js       jetstream.JetStream
	consumer jetstream.ConsumeContext
}

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
func StartQueue(w *Workers, cfg QueueConfig) (*Queue, error) {
	if cfg.Conn == nil || cfg.PublishEvent == nil {
		return nil, errors.New("jobs: queue needs a NATS connection and PublishEvent")
	}
	if cfg.Stream == "" {
		cfg.Stream = "EVENTHUB_JOBS"
	}
	if cfg.Subject == "" {
		cfg.Subject = "eventhub.jobs"
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = w.env.timeout + 20*time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 5
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("jobs: queue: %w", err)
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
		return nil, fmt.Errorf("jobs: queue stream %s: %w", cfg.Stream, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:    "workers", // one consumer shared by every node: each job goes to one
		AckPolicy:  jetstream.AckExplicitPolicy,
		AckWait:    cfg.AckWait,
		MaxDeliver: cfg.MaxDeliver,
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: queue consumer: %w", err)
	}
	q := &Queue{cfg: cfg, w: w, js: js}
	// Take no more than this node's workers can hold, so the others get
	// their share.
	slots := max(2, w.perType*len(Types))
	q.consumer, err = cons.Consume(q.take, jetstream.PullMaxMessages(slots))
	if err != nil {
		return nil, fmt.Errorf("jobs: queue consume: %w", err)
	}
	return q, nil
}

// take hands one job from the queue to a worker; the job's message is
// acknowledged when it ends, or handed back if this node stops first.
func (q *Queue) take(msg jetstream.Msg) {
	var wj wireQueuedJob
	if err := json.Unmarshal(msg.Data(), &wj); err != nil {
		q.w.env.log.Error("jobs: a message in the queue is not a job", "err", err)
		msg.Term() // never redeliver it
		return
	}
	t, _ := ParseType(wj.Type)
	job := Job{ID: wj.ID, Type: t, AssetID: wj.AssetID, ScenarioID: wj.ScenarioID, Params: wj.Params, User: wj.User}
	var attempt uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	q.w.run(job, attempt, func(finished bool) {
		if finished {
			msg.Ack()
		} else {
			msg.Nak()
		}
	})
}

// Submit sends job's queued event to the log, then puts the job in the
// queue. It must be valid, as for Workers.Submit. If the job cannot be
// queued its failed event follows the queued one and Submit says why.
func (q *Queue) Submit(ctx context.Context, job Job) error {
	if err := job.check(); err != nil {
		return fmt.Errorf("jobs: submit: %w", err)
	}
	env := q.w.env
	now := env.now()
	if err := q.cfg.PublishEvent(ctx, env.event(job, Queued, now, eventData{})); err != nil {
		return fmt.Errorf("jobs: submit %s: %w", job.ID, err)
	}
	data, _ := json.Marshal(wireQueuedJob{ID: job.ID, Type: job.Type.String(), AssetID: job.AssetID, ScenarioID: job.ScenarioID, Params: job.Params, User: job.User})
	if _, err := q.js.Publish(ctx, q.cfg.Subject+"."+job.Type.String(), data, jetstream.WithMsgID(job.ID)); err != nil {
		failed := env.event(job, Failed, env.now(), eventData{DurationMs: new(int64(0)), Error: "could not queue the job"})
		if perr := q.cfg.PublishEvent(ctx, failed); perr != nil {
			env.log.Error("jobs: a job was announced but neither queued nor failed", "job", job.ID, "err", perr)
		}
		return fmt.Errorf("jobs: queue %s: %w", job.ID, err)
	}
	return nil
}

// Stop stops taking jobs. The jobs this node holds are handed back when
// its Workers stop: call Stop first, then Workers.Stop.
func (q *Queue) Stop() {
	q.consumer.Stop()
	<-q.consumer.Closed()
}
