package actors

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/finexbot/eventhub/jobs"
)

// CloseReason says why a stream ended. It is a metric label, so the set is
// small and fixed.
type CloseReason int32

// The reasons a stream ends. Zero means open.
const (
	_                     CloseReason = iota
	CloseClientGone                   // the client closed the connection
	CloseSlow                         // its mailbox overflowed
	CloseWriteTimeout                 // a write did not finish within the write timeout
	CloseWriteError                   // a write failed
	CloseShutdown                     // the hub is shutting down
	CloseLifetime                     // the stream reached its lifetime
	CloseRevoked                      // the user lost every permission ("forbidden")
	CloseAuthzUnavailable             // the user's permissions could not be loaded (fail closed)
	CloseError                        // the conn actor failed (a bug): the stream is closed, not left hanging
	closeReasonCount
)

var closeReasonNames = [closeReasonCount]string{
	CloseClientGone:       "client_gone",
	CloseSlow:             "slow",
	CloseWriteTimeout:     "write_timeout",
	CloseWriteError:       "write_error",
	CloseShutdown:         "shutdown",
	CloseLifetime:         "lifetime",
	CloseRevoked:          "forbidden",
	CloseAuthzUnavailable: "authz_unavailable",
	CloseError:            "error",
}

func (r CloseReason) String() string {
	if r > 0 && r < closeReasonCount {
		return closeReasonNames[r]
	}
	return "open"
}

// StreamError names why a stream request was refused or a stream failed; it
// is the label of eventhub_stream_errors_total.
type StreamError string

// Stream errors counted by the transport and by conn actors.
const (
	StreamUnauthorized StreamError = "unauthorized"
	StreamForbidden    StreamError = "forbidden"
	StreamBadRequest   StreamError = "bad_request"
	StreamTooMany      StreamError = "too_many_streams"
	StreamUnavailable  StreamError = "unavailable"
	StreamWriteError   StreamError = "write_error"
	StreamWriteTimeout StreamError = "write_timeout"
)

var streamErrors = [...]StreamError{StreamUnauthorized, StreamForbidden, StreamBadRequest,
	StreamTooMany, StreamUnavailable, StreamWriteError, StreamWriteTimeout}

// metrics holds the hub's Prometheus metrics with every labelled child
// resolved once, so the hot paths touch only atomic counters.
type metrics struct {
	streamsActive   prometheus.Gauge
	streamsOpened   prometheus.Counter
	streamsClosed   [closeReasonCount]prometheus.Counter
	streamErrors    map[StreamError]prometheus.Counter
	ingested        [len(jobs.Types) + 1][len(jobs.Statuses) + 1]prometheus.Counter
	delivered       prometheus.Counter
	mailboxOverflow prometheus.Counter
	usersActive     prometheus.Gauge
	// userActorsRunning counts the user actors awake (loading permissions).
	userActorsRunning prometheus.Gauge
	authzCache        [authzResults]prometheus.Counter
	deliveryLatency   prometheus.Histogram
	ingestLatency     prometheus.Histogram
	historyEvents     prometheus.Gauge
	historyBytes      prometheus.Gauge
	mailboxDepth      prometheus.Histogram

	historyEvicted       [evictReasons]prometheus.Counter
	jobsEvicted          [evictReasons]prometheus.Counter
	jobsBytes            prometheus.Gauge
	snapshotTruncated    prometheus.Counter
	mailboxOverflowBytes prometheus.Counter
	framesConflated      prometheus.Counter
	replaysRefused       prometheus.Counter
	backfills            [backfillResults]prometheus.Counter
}

// Why history or the job table let an entry go.
const (
	evictCount = iota // over its count
	evictBytes        // over its bytes
	evictReasons
)

var evictReasonNames = [evictReasons]string{"count", "bytes"}

// How a read of the log for a resume ended.
const (
	backfillOK       = iota // read, within its budget
	backfillExpired         // over its byte budget, or the log no longer has it
	backfillRefused         // over the hub's or the user's concurrent reads: not started
	backfillCanceled        // the stream closed during the read
	backfillError           // the log failed (unreachable, timed out)
	backfillResults
)

var backfillResultNames = [backfillResults]string{"ok", "expired", "refused", "canceled", "error"}

// Results of a user actor's permissions cache.
const (
	authzHit     = iota // an authorization answered from the cache
	authzMiss           // an authorization that needed a load
	authzRefresh        // a background refresh started
	authzError          // a load that failed
	authzResults
)

var authzResultNames = [authzResults]string{"hit", "miss", "refresh", "error"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		streamsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventhub_streams_active", Help: "Open SSE streams.",
		}),
		streamsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventhub_streams_opened_total", Help: "SSE streams opened.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventhub_events_delivered_total", Help: "Event frames written to streams (replays included).",
		}),
		mailboxOverflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventhub_mailbox_overflow_total", Help: "Frames refused by a full stream mailbox; each closes its stream as slow.",
		}),
		usersActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventhub_users_active", Help: "Users the hub keeps: with open streams or permissions cached.",
		}),
		userActorsRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventhub_user_actors_running", Help: "User actors awake, loading permissions; the others are passivated, their permissions kept by the hub.",
		}),
		streamErrors: make(map[StreamError]prometheus.Counter, len(streamErrors)),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventhub_delivery_latency_seconds",
			Help:    "From an event's ingest by the hub to its frame written to a stream's socket; one sample per write, for its oldest live event.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17), // 100µs … 6.6s
		}),
		ingestLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventhub_ingest_latency_seconds",
			Help:    "From a publish reaching the hub to its events having ids and being routed, per publish.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16), // 50µs … 1.6s
		}),
		historyEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventhub_history_events", Help: "Events kept in history for resume.",
		}),
		historyBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventhub_history_bytes", Help: "Approximate memory of the events kept in history.",
		}),
		mailboxDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventhub_mailbox_depth",
			Help:    "Frames waiting in a stream's mailbox, sampled for every stream once per heartbeat interval.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
		}),
	}
	m.jobsBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eventhub_job_table_bytes", Help: "Approximate memory of the job table (the latest event of the most recent jobs, for GET /api/jobs).",
	})
	m.snapshotTruncated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventhub_snapshot_truncated_total", Help: "GET /api/jobs answers cut short at the snapshot byte budget.",
	})
	m.framesConflated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventhub_frames_conflated_total",
		Help: "Progress (started) frames a conflating stream (conflate=1) dropped unsent because a newer one of the same job came.",
	})
	m.mailboxOverflowBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventhub_mailbox_byte_overflow_total", Help: "Frames refused by a stream mailbox over its byte budget (also counted in eventhub_mailbox_overflow_total); each closes its stream as slow.",
	})
	m.replaysRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventhub_replays_refused_total", Help: "Resumes whose replay was over the stream mailbox's byte budget: the stream starts with a reset (expired) instead.",
	})
	historyEvicted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_history_evicted_total", Help: "Events history let go, by the budget that made it: count or bytes.",
	}, []string{"reason"})
	jobsEvicted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_job_table_evicted_total", Help: "Jobs the job table let go, by the budget that made it: count or bytes.",
	}, []string{"reason"})
	for r, name := range evictReasonNames {
		m.historyEvicted[r] = historyEvicted.WithLabelValues(name)
		m.jobsEvicted[r] = jobsEvicted.WithLabelValues(name)
	}
	backfills := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_backfills_total", Help: "Reads of the event log for resumes history no longer covers, by result: ok, expired (over its byte budget, or gone from the log), refused (too many at once), canceled (the stream closed), error.",
	}, []string{"result"})
	for r, name := range backfillResultNames {
		m.backfills[r] = backfills.WithLabelValues(name)
	}
	closed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_streams_closed_total", Help: "SSE streams closed, by reason.",
	}, []string{"reason"})
	for r := CloseReason(1); r < closeReasonCount; r++ {
		m.streamsClosed[r] = closed.WithLabelValues(r.String())
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_stream_errors_total", Help: "Stream requests refused before the stream started, and streams ended by a failed write, by reason.",
	}, []string{"reason"})
	for _, e := range streamErrors {
		m.streamErrors[e] = errs.WithLabelValues(string(e))
	}
	ingested := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_events_ingested_total", Help: "Events accepted by the hub, by job type and status.",
	}, []string{"type", "status"})
	for _, t := range jobs.Types {
		for _, s := range jobs.Statuses {
			m.ingested[t][s] = ingested.WithLabelValues(t.String(), s.String())
		}
	}
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_authz_cache_total", Help: "Users' permission cache: hit and miss per authorization, refresh per background reload, error per failed load.",
	}, []string{"result"})
	for i, name := range authzResultNames {
		m.authzCache[i] = cache.WithLabelValues(name)
	}
	for _, c := range []prometheus.Collector{m.deliveryLatency, m.ingestLatency, m.historyEvents, m.historyBytes, m.mailboxDepth, cache, m.streamsActive, m.streamsOpened, closed, errs, ingested, m.delivered, m.mailboxOverflow, m.usersActive, m.userActorsRunning,
		m.jobsBytes, m.snapshotTruncated, m.mailboxOverflowBytes, m.framesConflated, m.replaysRefused, historyEvicted, jobsEvicted, backfills} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
