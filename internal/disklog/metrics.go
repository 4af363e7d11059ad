package disklog

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the disk log's metrics, children resolved once.
type metrics struct {
	bytes       prometheus.Gauge
	fsync       prometheus.Observer
	recovery    prometheus.Gauge
	cutTorn     prometheus.Counter
	cutCorrupt  prometheus.Counter
	writeErrors prometheus.Counter
	syncErrors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, dir string) (*metrics, error) {
	bytes := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eventhub_log_bytes", Help: "Bytes the event log takes on disk (--data-dir): its segments and the job-state file.",
	})
	fsync := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "eventhub_log_fsync_seconds",
		Help:    "How long each fsync of the event log took (--data-dir): one per group commit.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 17), // 50µs … 3.3s
	})
	recovery := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eventhub_log_recovery_seconds", Help: "How long the event log took to open at start (--data-dir): reading every segment, cutting damage, rebuilding the job index.",
	})
	cut := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_log_records_cut_total",
		Help: "Records the event log cut at start (--data-dir): torn (a write a crash cut short, never acknowledged) or corrupt (damage on disk, and what followed it in its segment).",
	}, []string{"reason"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventhub_log_write_errors_total", Help: "Writes (write) and fsyncs (sync) of the event log that failed (--data-dir): a full or failing disk.",
	}, []string{"op"})
	m := &metrics{
		bytes: bytes, fsync: fsync, recovery: recovery,
		cutTorn: cut.WithLabelValues("torn"), cutCorrupt: cut.WithLabelValues("corrupt"),
		writeErrors: errs.WithLabelValues("write"), syncErrors: errs.WithLabelValues("sync"),
	}
	collectors := []prometheus.Collector{bytes, fsync, recovery, cut, errs}
	if _, _, ok := diskSpace(dir); ok {
		collectors = append(collectors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "eventhub_log_disk_free_bytes", Help: "Bytes free on the file system of the event log (--data-dir), for an unprivileged process.",
			}, func() float64 { free, _, _ := diskSpace(dir); return float64(free) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "eventhub_log_disk_size_bytes", Help: "Size of the file system of the event log (--data-dir).",
			}, func() float64 { _, size, _ := diskSpace(dir); return float64(size) }))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
