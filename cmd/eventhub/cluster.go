package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp/reuseport"

	"github.com/finexbot/eventhub/actors"
	"github.com/finexbot/eventhub/jobs"
)

// natsSetup is what --nats or --nats-embed brought up: the embedded server
// if any, and the connection. close undoes it, after the hub has stopped.
type natsSetup struct {
	embedded *server.Server
	conn     *nats.Conn
}

// startNATS runs the embedded NATS server if asked, and connects to the
// cluster's NATS; nil when neither flag is set (single node).
func startNATS(cfg serveConfig, log *slog.Logger) (*natsSetup, error) {
	url := cfg.nats
	var ns natsSetup
	if cfg.natsEmbed != "" {
		host, portStr, err := net.SplitHostPort(cfg.natsEmbed)
		if err != nil {
			return nil, fmt.Errorf("--nats-embed %q: %w", cfg.natsEmbed, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("--nats-embed %q: bad port", cfg.natsEmbed)
		}
		store := cfg.natsStore
		if store == "" {
			var err error
			if store, err = os.MkdirTemp("", "eventhub-nats-"); err != nil {
				return nil, fmt.Errorf("embedded nats store: %w", err)
			}
		}
		srv, err := server.NewServer(&server.Options{
			ServerName: "eventhub-" + strconv.Itoa(os.Getpid()), Host: host, Port: port,
			JetStream: true, StoreDir: store, NoLog: true, NoSigs: true,
		})
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			srv.Shutdown()
			return nil, fmt.Errorf("embedded nats on %s did not start", cfg.natsEmbed)
		}
		log.Info("embedded nats listening", "addr", srv.Addr().String(), "store", store)
		ns.embedded = srv
		if url == "" {
			url = srv.ClientURL()
		}
	}
	if url == "" {
		return nil, nil
	}
	nc, err := nats.Connect(url,
		nats.Name("eventhub"),
		nats.MaxReconnects(-1), // a hub outlives NATS outages: it waits, not dies
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		ns.close()
		return nil, fmt.Errorf("nats %s: %w", url, err)
	}
	ns.conn = nc
	return &ns, nil
}

// hubConfig is the hub's cluster configuration.
func (ns *natsSetup) hubConfig(cfg serveConfig) *actors.NATSConfig {
	return &actors.NATSConfig{Conn: ns.conn, Stream: cfg.natsStream, MaxEvents: cfg.natsMaxEvents, MaxAge: cfg.natsMaxAge}
}

// startQueue feeds the workers from the cluster's work queue and returns
// the submit function for POST /api/jobs.
func (ns *natsSetup) startQueue(workers *jobs.Workers, hub *actors.Hub) (*jobs.Queue, error) {
	return jobs.StartQueue(workers, jobs.QueueConfig{
		Conn: ns.conn,
		PublishEvent: func(ctx context.Context, ev *jobs.Event) error {
			_, err := hub.Publish(ctx, []jobs.Event{*ev})
			return err
		},
	})
}

func (ns *natsSetup) close() {
	if ns.conn != nil {
		ns.conn.Close()
	}
	if ns.embedded != nil {
		ns.embedded.Shutdown()
		ns.embedded.WaitForShutdown()
	}
}

// listen opens the public listener; with --reuse-port several hub processes
// share the address (SO_REUSEPORT), the kernel spreading connections.
func listen(cfg serveConfig) (net.Listener, error) {
	if cfg.reusePort {
		return reuseport.Listen("tcp4", cfg.listen)
	}
	return net.Listen("tcp", cfg.listen)
}
