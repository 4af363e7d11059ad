package natsjs

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/jobs"
)

// LogConfig configures OpenLog.
type LogConfig struct {
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
	// Replicas is how many servers of a NATS cluster keep the stream, 1 to
	// MaxReplicas; an event is acknowledged once most of them have it.
	// Zero means 1. A stream that exists with another count is updated to
	// it. More than 1 needs a JetStream cluster of as many servers: else
	// OpenLog fails with a *ReplicasError.
	Replicas int
	// StartTimeout bounds how long OpenLog waits for JetStream to take the
	// stream, while a cluster forms (its servers starting together, their
	// leader being elected). Zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// MaxBackfill bounds how many events one Read takes from the stream
	// (a resume that the hub's history no longer covers); beyond it Read
	// says ErrExpired and the client gets a reset. Zero means 100,000.
	MaxBackfill int
	// Server is the name of the NATS server that runs in this process
	// (--nats-embed), if any: while its copy of the stream is behind (a
	// restarted node catching up), the log is not Ready. Empty means none.
	Server string
	// CheckEvery is how often the log asks the stream's leader how the
	// stream is, for Ready and for its tails' lag. Zero means a second.
	CheckEvery time.Duration
	// Logger receives the log's warnings. Nil means none.
	Logger *slog.Logger
	// Registerer takes the log's metrics (eventhub_nats_*,
	// eventhub_events_rejected_total). Nil means a private registry.
	Registerer prometheus.Registerer
}

func (c LogConfig) withDefaults() LogConfig {
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
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = time.Second
	}
	if c.MaxBackfill <= 0 {
		c.MaxBackfill = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	return c
}

// Log is the event log of a cluster: a NATS JetStream stream whose sequence
// is the event id. Every node appends to the same stream and tails it, so
// every node routes every event, in the same order, with the same id, and a
// client resumes on any node.
//
// A Log owns its tails' consumer goroutines; each stops with the stop
// function Tail returns. It does not own the NATS connection.
type Log struct {
	cfg    LogConfig
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	m      *logMetrics

	// healthy is what the watcher saw last: the stream has a leader that
	// answers, and this process's server's copy, if it has one, is current.
	healthy atomic.Bool
	// last is the stream's last sequence when its leader last answered the
	// watcher, for the tails' lag and stall watch; 0 until it has.
	last atomic.Uint64
	stop chan struct{} // closed by Close: the watcher ends
	done chan struct{} // closed once the watcher has ended
}

var _ eventlog.Log = (*Log)(nil)

type logMetrics struct {
	connected      prometheus.GaugeFunc
	lag            prometheus.Gauge
	publishLatency prometheus.Histogram
	rejected       map[string]prometheus.Counter
}

// Reasons an event read from the log is not routed.
var rejectReasons = []string{"malformed", "invalid", "batch"}

func newLogMetrics(reg prometheus.Registerer, nc *nats.Conn) (*logMetrics, error) {
	m := &logMetrics{
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

// OpenLog makes sure the stream exists, with cfg's limits and replicas,
// waiting up to cfg.StartTimeout for a JetStream cluster to form, or until
// ctx is done.
func OpenLog(ctx context.Context, cfg LogConfig) (*Log, error) {
	cfg = cfg.withDefaults()
	if cfg.Conn == nil {
		return nil, errors.New("nats: no connection")
	}
	if err := checkReplicas(cfg.Replicas); err != nil {
		return nil, err
	}
	m, err := newLogMetrics(cfg.Registerer, cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	stream, err := ensureStream(ctx, js, jetstream.StreamConfig{
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
	}, startWait{timeout: cfg.StartTimeout, log: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c := &Log{cfg: cfg, js: js, stream: stream, log: cfg.Logger, m: m, stop: make(chan struct{}), done: make(chan struct{})}
	c.healthy.Store(true) // the stream's leader just answered
	c.last.Store(stream.CachedInfo().State.LastSeq)
	go c.watch()
	return c, nil
}

// Close stops the log's watcher. The connection is the caller's.
func (c *Log) Close() error {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	return nil
}

// watch asks the stream's leader how the stream is every CheckEvery, until
// Close, and keeps the answer for Ready.
func (c *Log) watch() {
	defer close(c.done)
	tick := time.NewTicker(c.cfg.CheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		healthy, why := c.check()
		if c.healthy.Swap(healthy) != healthy {
			if healthy {
				c.log.Info("event log ready", "stream", c.cfg.Stream)
			} else {
				c.log.Warn("event log not ready", "stream", c.cfg.Stream, "why", why)
			}
		}
	}
}

// check asks for the stream's info: it has a leader only if its leader
// answers, and it says how current each copy is.
func (c *Log) check() (healthy bool, why string) {
	ctx, cancel := context.WithTimeout(context.Background(), max(c.cfg.CheckEvery, time.Second))
	defer cancel()
	info, err := c.stream.Info(ctx)
	if err != nil {
		return false, "the stream's leader does not answer: " + err.Error()
	}
	c.last.Store(info.State.LastSeq)
	switch {
	case info.Cluster == nil:
		return true, ""
	case info.Cluster.Leader == "":
		return false, "the stream has no leader"
	}
	// A leader that lost its quorum may still answer for a while, from
	// what it knows: count the copies that are current with it.
	current := 1
	for _, p := range info.Cluster.Replicas {
		if p.Current && !p.Offline {
			current++
		}
		if p.Name == c.cfg.Server && !p.Current {
			return false, fmt.Sprintf("this server's copy is catching up (%d behind)", p.Lag)
		}
	}
	if copies := 1 + len(info.Cluster.Replicas); 2*current <= copies {
		return false, fmt.Sprintf("%d of the stream's %d servers are current: no quorum", current, copies)
	}
	return true, ""
}

// subject is where events of type t go.
func (c *Log) subject(t jobs.Type) string { return c.cfg.Subject + "." + t.String() }

// Append publishes events to the stream and returns their sequences once
// JetStream has acknowledged all of them. key, when not empty, makes the
// append idempotent (a retried POST with the same key, within the stream's
// two-minute duplicate window, is stored once and answered with the same
// ids); without it each event's content is its key.
func (c *Log) Append(ctx context.Context, key string, events []jobs.Event) ([]uint64, error) {
	if !c.Ready() {
		// Fail fast rather than have the client buffer it for later: the
		// caller answers 503 and retries with the same key.
		return nil, fmt.Errorf("%w: not connected", eventlog.ErrUnavailable)
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
			return nil, fmt.Errorf("%w: %v", eventlog.ErrUnavailable, err)
		}
		futures[i] = f
	}
	ids := make([]uint64, len(events))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			ids[i] = ack.Sequence
		case err := <-f.Err():
			return nil, fmt.Errorf("%w: %v", eventlog.ErrUnavailable, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", eventlog.ErrUnavailable, ctx.Err())
		}
	}
	c.m.publishLatency.Observe(time.Since(start).Seconds())
	return ids, nil
}

// Tail reads the stream from after+1, in order, and hands every record to
// deliver, until stop. An ordered consumer recreates itself after an outage
// and goes on from the last sequence it delivered: nothing is missed.
func (c *Log) Tail(after uint64, deliver func(eventlog.Record)) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	var read atomic.Uint64 // the last sequence read from the stream
	read.Store(after)
	// open makes a consumer from the sequence after the last one read.
	open := func() (jetstream.MessagesContext, error) {
		cons, err := c.js.OrderedConsumer(ctx, c.cfg.Stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   read.Load() + 1,
		})
		if err != nil {
			return nil, err
		}
		return cons.Messages(jetstream.PullHeartbeat(tailHeartbeat))
	}
	first, err := open()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("nats: consumer: %w", err)
	}
	var cur atomic.Pointer[jetstream.MessagesContext] // the consumer in use
	cur.Store(&first)
	// The watchdog looks where the stream ends (as the log's watcher last
	// saw it) every CheckEvery: for the lag, so that a consumer that reads
	// nothing (stalled, or NATS away) does not show the last lag it saw
	// for ever; and to see a consumer that the stream has left behind. A
	// consumer whose server went is made anew by nats.go, but while the
	// cluster elects a new leader that can fail, and nats.go then waits
	// longer and longer: a tail that has read nothing for tailStall while
	// the stream grew stops its consumer, and the reader makes a new one
	// from where it was.
	done.Go(func() {
		t := time.NewTicker(c.cfg.CheckEvery)
		defer t.Stop()
		var last uint64
		var stalled time.Time // since when nothing was read while the stream grew; zero while not
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r, end := read.Load(), c.last.Load()
			if end >= r {
				c.m.lag.Set(float64(end - r))
			}
			switch {
			case end <= r || r != last:
				stalled = time.Time{}
			case stalled.IsZero():
				stalled = time.Now()
			case time.Since(stalled) >= tailStall:
				c.log.Warn("nats: the tail read nothing while the stream grew: making its consumer anew", "read", r, "stream_last", end)
				(*cur.Load()).Stop()
				stalled = time.Time{}
			}
			last = r
		}
	})
	done.Go(func() {
		for {
			it := *cur.Load()
			for {
				msg, err := it.Next()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						break // stopped by the watchdog: a new consumer
					}
					c.log.Debug("nats: consumer", "err", err)
					continue
				}
				md, err := msg.Metadata()
				if err != nil {
					continue
				}
				c.m.lag.Set(float64(md.NumPending))
				read.Store(md.Sequence.Stream)
				deliver(c.decode(md.Sequence.Stream, msg.Data()))
			}
			for {
				next, err := open()
				if ctx.Err() != nil {
					if err == nil {
						next.Stop()
					}
					return
				}
				if err == nil {
					cur.Store(&next)
					break
				}
				c.log.Warn("nats: making the tail's consumer", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(tailRetry):
				}
			}
		}
	})
	return func() {
		cancel()
		(*cur.Load()).Stop() // Next returns ErrMsgIteratorClosed: the reader ends
		done.Wait()
	}, nil
}

// tailStall is how long a tail may read nothing while the stream grew
// before its consumer is made anew; tailRetry how long it waits between
// attempts to make it.
const (
	tailStall = 3 * time.Second
	tailRetry = 250 * time.Millisecond
)

// tailHeartbeat is how often the server of a tail's consumer says it is
// there while no event comes. After two missed heartbeats the tail makes
// its consumer anew on a server that is: in a cluster whose server died
// (the stream's leader, say), events flow again within about two seconds,
// not the ten of nats.go's default.
const tailHeartbeat = time.Second

// decode turns a message of the stream into a record: the event, or none
// for a message that is not one (workers in any language publish to the
// stream: validate as at any edge).
func (c *Log) decode(seq uint64, data []byte) eventlog.Record {
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
		return eventlog.Record{ID: seq}
	}
	return eventlog.Record{ID: seq, Event: &evs[0]}
}

// Read reads the stream's records after lastID up to upTo, at most
// MaxBackfill of them: ErrExpired when the stream no longer holds lastID+1
// or there are more. It fetches at most 1 MiB of messages at a time, and
// stops with ctx's error as soon as ctx is done (the caller cancels it to
// stop a read that went over its budget, or whose client left).
func (c *Log) Read(ctx context.Context, lastID, upTo uint64, fn func(eventlog.Record)) error {
	if upTo <= lastID {
		return nil
	}
	if upTo-lastID > uint64(c.cfg.MaxBackfill) {
		return eventlog.ErrExpired
	}
	info, err := c.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if info.State.FirstSeq > lastID+1 {
		return eventlog.ErrExpired // gone from the stream too
	}
	cons, err := c.js.OrderedConsumer(ctx, c.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       lastID + 1,
		InactiveThreshold: 10 * time.Second, // the server forgets it soon after
	})
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A batch is bounded in bytes, so a read holds little more than
		// what its caller keeps (not FetchBytes: its buffers are sized for a
		// million messages); and in time, and canceled with ctx.
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(int(min(upTo-lastID, 1000)), jetstream.FetchMaxBytes(readBatchBytes), jetstream.FetchContext(bctx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("nats: %w", err)
		}
		got, err := c.readBatch(ctx, batch, upTo, &lastID, fn)
		cancel()
		if err != nil || lastID == upTo {
			return err
		}
		if got == 0 {
			return errors.New("nats: the stream ended before the resume point")
		}
	}
}

// readBatch hands fn the records of batch, up to upTo, moving *lastID on;
// it stops with ctx's error once ctx is done.
func (c *Log) readBatch(ctx context.Context, batch jetstream.MessageBatch, upTo uint64, lastID *uint64, fn func(eventlog.Record)) (int, error) {
	got := 0
	for msg := range batch.Messages() {
		if err := ctx.Err(); err != nil {
			return got, err // the rest of the batch is dropped with the consumer
		}
		got++
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		seq := md.Sequence.Stream
		if seq > upTo {
			*lastID = upTo
			return got, nil
		}
		*lastID = seq
		fn(c.decode(seq, msg.Data()))
		if seq == upTo {
			return got, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return got, err
	}
	if err := batch.Error(); err != nil {
		return got, fmt.Errorf("nats: %w", err)
	}
	return got, nil
}

// readBatchBytes bounds one fetch of Read: an event is at most 64 KiB of
// data, so a batch holds at least a dozen.
const readBatchBytes = 1 << 20

// Bounds returns the stream's first and last sequence.
func (c *Log) Bounds(ctx context.Context) (first, last uint64, err error) {
	info, err := c.stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("nats: stream %s: %w", c.cfg.Stream, err)
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// Ready reports whether the node is connected to NATS and the stream is
// usable: it has a leader (a quorum of its servers), and this process's
// server's copy, if it has one, has caught up. It is what the watcher saw
// last, at most CheckEvery ago.
func (c *Log) Ready() bool { return c.cfg.Conn.IsConnected() && c.healthy.Load() }
