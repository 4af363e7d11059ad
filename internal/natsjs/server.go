package natsjs

import (
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
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
	// Auth is what a client must present to connect. The zero value lets
	// any client in: only for a server no one else can reach.
	Auth Credentials
}

// Credentials authenticate a NATS client: a token, or a user and a
// password. The zero value is none. They are secrets: never logged.
type Credentials struct {
	User, Password string
	Token          string
}

// IsZero reports whether c holds no credentials.
func (c Credentials) IsZero() bool { return c == Credentials{} }

// options are the nats.go options that present c.
func (c Credentials) options() []nats.Option {
	switch {
	case c.Token != "":
		return []nats.Option{nats.Token(c.Token)}
	case c.User != "":
		return []nats.Option{nats.UserInfo(c.User, c.Password)}
	}
	return nil
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
	opts := &server.Options{
		ServerName: "eventhub-" + strconv.Itoa(os.Getpid()), Host: host, Port: port,
		JetStream: true, StoreDir: store, NoLog: true, NoSigs: true,
	}
	switch a := cfg.Auth; {
	case a.Token != "":
		opts.Authorization = a.Token
	case a.User != "":
		opts.Username, opts.Password = a.User, a.Password
	}
	srv, err := server.NewServer(opts)
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
// good, presenting auth: a hub outlives NATS outages, it waits for NATS
// rather than dying, and reconnects as often as it takes. The caller
// closes the connection.
func Connect(url string, auth Credentials, log *slog.Logger) (*nats.Conn, error) {
	opts := append(auth.options(),
		nats.Name("eventhub"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", redactURLs(url), err)
	}
	return nc, nil
}

// redactURLs is urls (comma-separated) with any password or token in them
// replaced, for an error message or a log line.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := neturl.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = neturl.User("redacted")
			parts[i] = u.String()
		} else if err != nil {
			parts[i] = "(unparsable url)"
		}
	}
	return strings.Join(parts, ",")
}
