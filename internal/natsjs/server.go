package natsjs

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerConfig configures StartServer.
type ServerConfig struct {
	// Addr is host:port the embedded server listens on for clients.
	Addr string
	// StoreDir is where JetStream keeps its streams. Empty means a new
	// temporary directory.
	StoreDir string
}

// Server is a NATS server with JetStream run inside the hub's process, so
// that a small cluster needs no other component. Its owner shuts it down
// after the hub and the connections to it have stopped.
type Server struct {
	srv   *server.Server
	store string
}

// StartServer starts an embedded NATS server with JetStream and waits until
// it takes connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("nats server address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats server address %q: bad port", cfg.Addr)
	}
	store := cfg.StoreDir
	if store == "" {
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
		return nil, fmt.Errorf("embedded nats on %s did not start", cfg.Addr)
	}
	return &Server{srv: srv, store: store}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.srv.Addr().String() }

// StoreDir is where JetStream keeps its streams.
func (s *Server) StoreDir() string { return s.store }

// ClientURL is the URL a client connects to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits until it has.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// Connect connects to the NATS servers at url (a comma-separated list) for
// good: a hub outlives NATS outages, it waits for NATS rather than dying,
// and reconnects as often as it takes. The caller closes the connection.
func Connect(url string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name("eventhub"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", url, err)
	}
	return nc, nil
}
