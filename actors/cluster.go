package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/jobs"
)

// NATSConfig puts a hub in a cluster whose event log is a NATS JetStream
// stream: every hub publishes what it ingests to the stream and routes what
// it reads back from it, and the stream's sequence is the event id, so a
// client resumes on any hub.
type NATSConfig struct {
	// Conn is connected to a NATS server with JetStream. The hub does not
	// close it. It should reconnect forever (nats.MaxReconnects(-1)).
	Conn *nats.Conn
	// Stream is the JetStream stream. Zero means "EVENTHUB". Its subjects
	// are <Subject>.<type>.
	Stream string
	// Subject is the subjects' prefix. Zero means "eventhub.events".
	Subject string
	// MaxEvents and MaxAge bound the stream. Zero means 1,000,000 and 24h.
	MaxEvents int64
	MaxAge    time.Duration
	// Replicas is the stream's replication in a NATS cluster. Zero means 1.
	Replicas int
	// MaxBackfill bounds how many events a resume reads from the stream
	// when local history no longer has them; beyond it the client gets a
	// reset. Zero means 100,000.
	MaxBackfill int
}

func (c NATSConfig) withDefaults() NATSConfig {
	if c.Stream == "" {
		c.Stream = "EVENTHUB"
	}
	if c.Subject == "" {
		c.Subject = "eventhub.events"
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 1_000_000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxBackfill <= 0 {
		c.MaxBackfill = 100_000
	}
	return c
}

// cluster is a hub's side of the JetStream log: it publishes, and a consumer
// goroutine (owned here, stopped by stop) reads the stream in order and
// hands every event to the hub actor.
type cluster struct {
	cfg    NATSConfig
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	m      *clusterMetrics

	cancel context.CancelFunc
	done   sync.WaitGroup
	read   atomic.Uint64 // the last sequence read from the log
}

type clusterMetrics struct {
	connected      prometheus.GaugeFunc
	lag            prometheus.Gauge
	publishLatency prometheus.Histogram
	rejected       map[string]prometheus.Counter
}

// Reasons an event read from the log is not routed.
var rejectReasons = []string{"malformed", "invalid", "batch"}

func newClusterMetrics(reg prometheus.Registerer, nc *nats.Conn) (*clusterMetrics, error) {
	m := &clusterMetrics{
		connected: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eventhub_nats_connected", Help: "1 while the hub is connected to NATS, else 0.",
		}, func() float64 {
			if nc.IsConnected() {
				return 1
			}
			return 0
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventhub_nats_consumer_lag", Help: "Events in the log this hub has not read yet, as of the last one it read.",
		}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventhub_nats_publish_latency_seconds", Help: "From publishing events to the log to JetStream's acknowledgement, per publish.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		rejected: map[string]prometheus.Counter{},
	}
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_events_rejected_total", Help: "Messages in the log that are not valid events, by reason; never routed.",
	}, []string{"reason"})
	for _, r := range rejectReasons {
		m.rejected[r] = rejected.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.connected, m.lag, m.publishLatency, rejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// newCluster makes sure the stream exists and returns where this hub starts
// reading it: far enough back to fill its history, so resumes are local.
func newCluster(cfg NATSConfig, history int, reg prometheus.Registerer, log *slog.Logger) (*cluster, uint64, error) {
	cfg = cfg.withDefaults()
	if cfg.Conn == nil {
		return nil, 0, errors.New("nats: no connection")
	}
	m, err := newClusterMetrics(reg, cfg.Conn)
	if err != nil {
		return nil, 0, fmt.Errorf("register metrics: %w", err)
	}
	js, err := jetstream.New(cfg.Conn, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, msg *nats.Msg, err error) {
		log.Error("nats: an in-process event was not published", "subject", msg.Subject, "err", err)
	}))
	if err != nil {
		return nil, 0, fmt.Errorf("nats: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "eventhub job events",
		Subjects:    []string{cfg.Subject + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     cfg.MaxEvents,
		MaxAge:      cfg.MaxAge,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  2 * time.Minute, // a retried publish within this is not stored twice
	})
	if err != nil {
		return nil, 0, fmt.Errorf("nats: stream %s: %w", cfg.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("nats: stream %s: %w", cfg.Stream, err)
	}
	var start uint64 = 1
	if back := uint64(history); info.State.LastSeq > back {
		start = info.State.LastSeq - back + 1
	}
	start = max(start, info.State.FirstSeq)
	return &cluster{cfg: cfg, js: js, stream: stream, log: log, m: m}, start, nil
}

// subject is where events of type t go.
func (c *cluster) subject(t jobs.Type) string { return c.cfg.Subject + "." + t.String() }

// publish appends events to the log and returns their sequences once
// JetStream has acknowledged all of them. key, when not empty, makes the
// publish idempotent (a retried POST with the same key is stored once);
// without it each event's content is its key.
func (c *cluster) publish(ctx context.Context, events []jobs.Event, key string) ([]uint64, error) {
	if !c.connected() {
		// Fail fast rather than have the client buffer it for later: the
		// caller answers 503 and retries with the same key.
		return nil, fmt.Errorf("%w: not connected", ErrLogUnavailable)
	}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, len(events))
	var buf []byte
	for i := range events {
		ev := &events[i]
		buf = ev.AppendJSON(buf[:0])
		id := key
		if id == "" {
			sum := sha256.Sum256(buf)
			id = hex.EncodeToString(sum[:16])
		} else {
			id += "/" + strconv.Itoa(i)
		}
		f, err := c.js.PublishAsync(c.subject(ev.Type), append([]byte(nil), buf...), jetstream.WithMsgID(id))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrLogUnavailable, err)
		}
		futures[i] = f
	}
	ids := make([]uint64, len(events))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			ids[i] = ack.Sequence
		case err := <-f.Err():
			return nil, fmt.Errorf("%w: %v", ErrLogUnavailable, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrLogUnavailable, ctx.Err())
		}
	}
	c.m.publishLatency.Observe(time.Since(start).Seconds())
	return ids, nil
}

// publishAsync appends an in-process event (a worker's) without waiting:
// it is routed when it comes back from the log; a failure is logged.
func (c *cluster) publishAsync(ev *jobs.Event) {
	data := ev.AppendJSON(nil)
	sum := sha256.Sum256(data)
	if _, err := c.js.PublishAsync(c.subject(ev.Type), data, jetstream.WithMsgID(hex.EncodeToString(sum[:16]))); err != nil {
		c.log.Error("nats: an in-process event was not published", "job", ev.JobID, "err", err)
	}
}

// consume reads the log from start, in order, and sends each event to the
// hub actor, until stop. An ordered consumer recreates itself after an
// outage and goes on from the last sequence it delivered: nothing is missed.
func (c *cluster) consume(root *actor.RootContext, hub *actor.PID, start uint64) error {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	cons, err := c.js.OrderedConsumer(ctx, c.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("nats: consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		cancel()
		return fmt.Errorf("nats: consumer: %w", err)
	}
	c.done.Go(func() {
		<-ctx.Done()
		it.Stop()
	})
	// The lag is also measured from the log's end every few seconds, so a
	// consumer that reads nothing (stalled, or NATS away) does not show the
	// last lag it saw for ever.
	c.done.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
				info, err := c.stream.Info(ictx)
				cancel()
				if err == nil && info.State.LastSeq >= c.read.Load() {
					c.m.lag.Set(float64(info.State.LastSeq - max(c.read.Load(), start-1)))
				}
			}
		}
	})
	c.done.Go(func() {
		for {
			msg, err := it.Next()
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				c.log.Debug("nats: consumer", "err", err)
				continue
			}
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			c.m.lag.Set(float64(md.NumPending))
			c.read.Store(md.Sequence.Stream)
			root.Send(hub, c.decode(md.Sequence.Stream, msg.Data()))
		}
	})
	return nil
}

// decode turns a message of the log into what the hub actor ingests: the
// event, or a skip for a message that is not one (workers in any language
// publish to the log: validate as at any edge).
func (c *cluster) decode(seq uint64, data []byte) any {
	evs, err := jobs.DecodeEvents(data)
	reason := ""
	switch {
	case errors.Is(err, jobs.ErrMalformed):
		reason = "malformed"
	case err != nil:
		reason = "invalid"
	case len(evs) != 1:
		reason = "batch" // one event per message
	}
	if reason != "" {
		c.m.rejected[reason].Inc()
		c.log.Warn("nats: a message in the log is not a valid event; not routed", "seq", seq, "reason", reason)
		return &logged{seq: seq}
	}
	return &logged{seq: seq, ev: &evs[0]}
}

// backfill reads the log's events after lastID up to upTo (both in the
// log's sequence), at most MaxBackfill of them. ok is false when the log no
// longer holds lastID+1 or there are too many: the client gets a reset.
func (c *cluster) backfill(ctx context.Context, lastID, upTo uint64) (frames []*frame, ok bool, err error) {
	if upTo <= lastID {
		return nil, true, nil
	}
	if upTo-lastID > uint64(c.cfg.MaxBackfill) {
		return nil, false, nil
	}
	info, err := c.stream.Info(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("nats: %w", err)
	}
	if info.State.FirstSeq > lastID+1 {
		return nil, false, nil // gone from the log too
	}
	cons, err := c.js.OrderedConsumer(ctx, c.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       lastID + 1,
		InactiveThreshold: 10 * time.Second, // the server forgets it soon after
	})
	if err != nil {
		return nil, false, fmt.Errorf("nats: %w", err)
	}
	for {
		want := int(min(upTo-lastID, 1000))
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, false, fmt.Errorf("nats: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			seq := md.Sequence.Stream
			if seq > upTo {
				return frames, true, nil
			}
			lastID = seq
			if l, _ := c.decode(seq, msg.Data()).(*logged); l.ev != nil {
				frames = append(frames, &frame{id: seq, ev: l.ev, bytes: appendEventFrame(make([]byte, 0, frameSize(l.ev)), seq, l.ev)})
			}
			if seq == upTo {
				return frames, true, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, false, fmt.Errorf("nats: %w", err)
		}
		if got == 0 {
			return nil, false, errors.New("nats: the log ended before the resume point")
		}
	}
}

// beyondEnd reports whether id is past the log's last sequence (a bogus or
// stale id). Unknown (the log unreachable) counts as not beyond.
func (c *cluster) beyondEnd(id uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.stream.Info(ctx)
	return err == nil && id > info.State.LastSeq
}

// connected reports whether the hub can reach the log.
func (c *cluster) connected() bool { return c.cfg.Conn.IsConnected() }

// stop ends the consumer and waits for it.
func (c *cluster) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.done.Wait()
}
