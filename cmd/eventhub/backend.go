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
	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/natsjs"
	"github.com/finexbot/eventhub/jobs"
)

// backend is the event log and, in a cluster, the NATS it runs on, as the
// flags chose them: a memory log on a single node, a JetStream log with
// --nats or --nats-embed. close undoes it, after the hub has stopped.
type backend struct {
	log      eventlog.Log
	closeLog func() error
	embedded *natsjs.Server // with --nats-embed
	conn     *nats.Conn     // in a cluster; nil on a single node
	replicas int            // of the log and the job queue, in a cluster
	timeout  time.Duration  // how long to wait for JetStream at start
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
	if url == "" {
		mem, err := eventlog.OpenMemory(eventlog.MemoryConfig{Size: cfg.history, Bytes: int(cfg.historyBytes), File: cfg.historyFile, Logger: log})
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
