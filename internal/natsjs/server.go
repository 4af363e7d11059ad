package natsjs

import (
	"errors"
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

	// Name is the server's name. JetStream knows the peers of a cluster by
	// their names, so it must be unique in the cluster and stay the same
	// across restarts. Empty means the host's name and the route port
	// ("web-1-6222"; the client port when not clustered), which stays the
	// same across restarts of a server on the same host and port, and
	// differs between two servers on one host.
	Name string
	// ClusterAddr is host:port the server listens on for routes from the
	// other servers of its cluster, which needs Routes. Empty means a
	// server on its own, not clustered, and no route fields may be set.
	ClusterAddr string
	// ClusterName names the cluster: every server of it has the same.
	// Empty means "eventhub".
	ClusterName string
	// Routes are the route URLs (nats-route://host:port) of the other
	// servers of the cluster, without credentials: ClusterAuth is
	// presented to them. A server may list itself; it is ignored.
	Routes []string
	// ClusterAuth is the user and password a route must present, and the
	// ones this server presents on its own routes: every server of the
	// cluster has the same. The zero value lets any server join: only for
	// a cluster no one else can reach. Routes take no token.
	ClusterAuth Credentials
}

// DefaultClusterName is the cluster's name when ServerConfig.ClusterName is
// empty.
const DefaultClusterName = "eventhub"

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
// it takes connections. With a ClusterAddr it is one server of a JetStream
// cluster: it routes to the others, and JetStream runs once enough of them
// have joined to elect a leader (OpenLog waits for that).
func StartServer(cfg ServerConfig) (*Server, error) {
	host, port, err := splitAddr("nats server address", cfg.Addr)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		Host: host, Port: port,
		JetStream: true, NoLog: true, NoSigs: true,
	}
	switch a := cfg.Auth; {
	case a.Token != "":
		opts.Authorization = a.Token
	case a.User != "":
		opts.Username, opts.Password = a.User, a.Password
	}
	namePort := port
	if cfg.ClusterAddr != "" {
		if namePort, err = clusterOptions(cfg, opts); err != nil {
			return nil, err
		}
	} else if len(cfg.Routes) > 0 || cfg.ClusterName != "" || !cfg.ClusterAuth.IsZero() {
		return nil, errors.New("embedded nats: routes, a cluster name or route credentials need a cluster address")
	}
	if opts.ServerName = cfg.Name; opts.ServerName == "" {
		if opts.ServerName, err = defaultName(cfg.ClusterAddr != "", namePort); err != nil {
			return nil, err
		}
	}
	store := cfg.StoreDir
	if store == "" {
		if store, err = os.MkdirTemp("", "eventhub-nats-"); err != nil {
			return nil, fmt.Errorf("embedded nats store: %w", err)
		}
	}
	opts.StoreDir = store
	srv, err := server.NewServer(opts)
	if err != nil {
		// Its message may quote the options, routes with their password
		// among them: say what it is, not what it holds.
		return nil, fmt.Errorf("embedded nats: %s", redactSecrets(err.Error(), cfg))
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats on %s did not start", cfg.Addr)
	}
	return &Server{srv: srv, store: store}, nil
}

// clusterOptions sets opts for a server of a cluster, as cfg says, and
// returns the route port.
func clusterOptions(cfg ServerConfig, opts *server.Options) (int, error) {
	host, port, err := splitAddr("nats cluster address", cfg.ClusterAddr)
	if err != nil {
		return 0, err
	}
	if a := cfg.ClusterAuth; a.Token != "" || (a.User == "") != (a.Password == "") {
		return 0, errors.New("embedded nats: route credentials are a user and a password")
	}
	name := cfg.ClusterName
	if name == "" {
		name = DefaultClusterName
	}
	opts.Cluster = server.ClusterOpts{
		Name: name, Host: host, Port: port,
		Username: cfg.ClusterAuth.User, Password: cfg.ClusterAuth.Password,
	}
	for _, r := range cfg.Routes {
		u, err := neturl.Parse(strings.TrimSpace(r))
		if err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats") {
			return 0, fmt.Errorf("nats route %q: want nats-route://host:port", redactURLs(r))
		}
		if u.User != nil {
			return 0, fmt.Errorf("nats route %s: give the route credentials as ClusterAuth, not in the URL", redactURLs(r))
		}
		if cfg.ClusterAuth.User != "" {
			u.User = neturl.UserPassword(cfg.ClusterAuth.User, cfg.ClusterAuth.Password)
		}
		opts.Routes = append(opts.Routes, u)
	}
	if len(opts.Routes) == 0 {
		// JetStream refuses to start clustered without them.
		return 0, errors.New("embedded nats: a server of a cluster needs the routes of the others")
	}
	return port, nil
}

// defaultName is the name of a server with no name given: the host's name
// and port, the route port in a cluster.
func defaultName(clustered bool, port int) (string, error) {
	if clustered && port <= 0 {
		// A random port would name a new peer at every start.
		return "", errors.New("embedded nats: a server of a cluster whose route port is random needs a name")
	}
	hostname, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("embedded nats: a server name from the host name: %w", err)
	}
	if port <= 0 {
		return hostname, nil // on its own: no peer knows it by name
	}
	return hostname + "-" + strconv.Itoa(port), nil
}

// splitAddr splits a host:port address; what names it in an error.
func splitAddr(what, addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: %w", what, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: bad port", what, addr)
	}
	return host, port, nil
}

// redactSecrets is msg with the passwords and the token of cfg replaced.
func redactSecrets(msg string, cfg ServerConfig) string {
	for _, secret := range []string{cfg.Auth.Password, cfg.Auth.Token, cfg.ClusterAuth.Password} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "redacted")
			escaped := strings.TrimPrefix(neturl.UserPassword("", secret).String(), ":")
			msg = strings.ReplaceAll(msg, escaped, "redacted")
		}
	}
	return msg
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.srv.Addr().String() }

// StoreDir is where JetStream keeps its streams.
func (s *Server) StoreDir() string { return s.store }

// ClientURL is the URL a client connects to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Name is the server's name: a peer's name in its JetStream cluster.
func (s *Server) Name() string { return s.srv.Name() }

// ClusterAddr is the address the server listens on for routes; empty when
// it is not clustered.
func (s *Server) ClusterAddr() string {
	if a := s.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

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
