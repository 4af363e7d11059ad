package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp/reuseport"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/internal/disklog"
	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/natsjs"
	"github.com/finexbot/eventhub/jobs"
)

// backend is the event log and, in a cluster, the NATS it runs on, as the
// flags chose them: a memory log on a single node, a disk log with
// --data-dir, a JetStream log with --nats or --nats-embed. close undoes it, after the hub has stopped.
type backend struct {
	log      eventlog.Log
	closeLog func() error
	embedded *natsjs.Server // with --nats-embed
	conn     *nats.Conn     // in a cluster; nil on a single node
	replicas int            // of the log and the job queue, in a cluster
	timeout  time.Duration  // how long to wait for JetStream at start
	// durable is set for the disk log (--data-dir): the job table comes
	// back after a crash, with the jobs the crash interrupted.
	durable bool
}

// openBackend opens the event log the flags ask for; it gives up waiting
// for NATS when ctx is done.
func openBackend(ctx context.Context, cfg serveConfig, reg prometheus.Registerer, log *slog.Logger) (*backend, error) {
	b := backend{replicas: cfg.natsReplicas, timeout: cfg.natsStartTimeout}
	url := cfg.nats
	if cfg.natsEmbed != "" {
		scfg := natsjs.ServerConfig{Addr: cfg.natsEmbed, StoreDir: cfg.natsStore, Auth: cfg.natsAuth, Name: cfg.natsName}
		if cfg.natsCluster != "" {
			scfg.ClusterAddr, scfg.ClusterName, scfg.Routes, scfg.ClusterAuth = cfg.natsCluster, cfg.natsClusterName, cfg.natsRouteURLs, cfg.natsClusterAuth
		}
		srv, err := natsjs.StartServer(scfg)
		if err != nil {
			return nil, err
		}
		attrs := []any{"addr", srv.Addr(), "store", srv.StoreDir(), "name", srv.Name()}
		if cfg.natsCluster != "" {
			// The routes hold no credentials: the flags refuse them there.
			attrs = append(attrs, "cluster", srv.ClusterAddr(), "cluster_name", cfg.natsClusterName, "routes", cfg.natsRouteURLs)
		}
		log.Info("embedded nats listening", attrs...)
		b.embedded = srv
		if url == "" {
			url = srv.ClientURL()
		}
	}
	if url == "" && cfg.dataDir != "" {
		policy, _ := disklog.ParseSync(cfg.sync) // checked by the flags
		dl, err := disklog.Open(disklog.Config{
			Dir: cfg.dataDir, Sync: policy,
			MaxEvents: cfg.dataMaxEvents, MaxBytes: int64(cfg.dataMaxBytes), MaxAge: cfg.dataMaxAge,
			Jobs: cfg.jobs, JobsBytes: int(cfg.jobsBytes), Logger: log, Registerer: reg,
		})
		if err != nil {
			return nil, err
		}
		b.log, b.closeLog, b.durable = dl, dl.Close, true
		return &b, nil
	}
	if url == "" {
		mem, err := eventlog.OpenMemory(eventlog.MemoryConfig{Size: cfg.history, Bytes: int(cfg.historyBytes)})
		if err != nil {
			return nil, err
		}
		b.log, b.closeLog = mem, mem.Close
		return &b, nil
	}
	nc, err := natsjs.Connect(url, cfg.natsAuth, log)
	if err != nil {
		b.close()
		return nil, err
	}
	b.conn = nc
	lc := natsjs.LogConfig{
		Conn: nc, Stream: cfg.natsStream, MaxEvents: cfg.natsMaxEvents, MaxAge: cfg.natsMaxAge,
		Replicas: b.replicas, StartTimeout: b.timeout, Logger: log, Registerer: reg,
	}
	if b.embedded != nil {
		lc.Server = b.embedded.Name() // not ready while its copy catches up
	}
	js, err := natsjs.OpenLog(ctx, lc)
	if err != nil {
		b.close()
		return nil, b.replicasError(err)
	}
	b.log, b.closeLog = js, js.Close
	return &b, nil
}

// endInterrupted ends, failed with data.error "interrupted", every job the
// job table recovered from the disk log whose latest status is queued or
// started: the node that had it died without ending it (a job cut short by
// a clean stop has ended failed already). Its params are not kept, so it
// is not run again. A job of an outside worker that is still at it is
// ended too; that worker's next event supersedes this one.
func endInterrupted(ctx context.Context, hub *actors.Hub, log *slog.Logger) error {
	latest, err := hub.Unfinished(ctx)
	if err != nil {
		return fmt.Errorf("interrupted jobs: %w", err)
	}
	now := time.Now()
	var named []string // the first few, for the log
	for i := 0; i < len(latest); i += jobs.MaxBatch {
		part := latest[i:min(i+jobs.MaxBatch, len(latest))]
		evs := make([]jobs.Event, len(part))
		for j := range part {
			evs[j] = jobs.Interrupted(part[j], now)
			if len(named) < 10 {
				named = append(named, part[j].JobID)
			}
		}
		if _, err := hub.Publish(ctx, evs); err != nil {
			return fmt.Errorf("interrupted jobs: %w", err)
		}
	}
	if len(latest) > 0 {
		log.Info("jobs interrupted by a restart ended failed", "jobs", len(latest), "first", named)
	}
	return nil
}

// queue is where submitted jobs wait for a worker: this node's workers, or
// in a cluster the work queue every node's workers take from (it gives up
// waiting for NATS when ctx is done).
func (b *backend) queue(ctx context.Context, workers *jobs.Workers, hub *actors.Hub, perKind int, lease time.Duration, log *slog.Logger) (jobs.Queue, error) {
	if b.conn == nil {
		return workers, nil
	}
	q, err := natsjs.StartQueue(ctx, workers, natsjs.QueueConfig{
		Conn: b.conn, Logger: log, MaxJobs: perKind * len(jobs.Types),
		Replicas: b.replicas, StartTimeout: b.timeout,
		Lease: lease, Ended: hub.JobEnded, // a job whose end hub has seen is not run again
	})
	if err != nil {
		return nil, b.replicasError(err)
	}
	return q, nil
}

// replicasError is err, which names the flag when JetStream cannot keep
// the replicas it asks for.
func (b *backend) replicasError(err error) error {
	var re *natsjs.ReplicasError
	if errors.As(err, &re) {
		return fmt.Errorf("--nats-replicas %d: %w", b.replicas, err)
	}
	return err
}

// close closes the log, the connection to NATS and the embedded server, in
// that order.
func (b *backend) close() error {
	var err error
	if b.closeLog != nil {
		err = b.closeLog()
	}
	if b.conn != nil {
		b.conn.Close()
	}
	if b.embedded != nil {
		b.embedded.Shutdown()
	}
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	return nil
}

// listen opens the public listener; with --reuse-port several hub processes
// share the address (SO_REUSEPORT), the kernel spreading connections.
func listen(cfg serveConfig) (net.Listener, error) {
	if cfg.reusePort {
		return reuseport.Listen("tcp4", cfg.listen)
	}
	return net.Listen("tcp", cfg.listen)
}
