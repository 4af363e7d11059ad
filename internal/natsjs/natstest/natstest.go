// Package natstest runs a NATS cluster with JetStream inside a test's
// process, on loopback: what the tests of a replicated log (natsjs's, and
// the chaos tests of cmd/eventhub) stop and start servers of. It is a test
// harness: only tests import it.
package natstest

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/internal/natsjs"
)

// Cluster is n embedded NATS servers, named n1 … nN, that form one
// JetStream cluster with route credentials between them, as n hubs started
// together with the embedded cluster flags do. Stop takes a server down;
// Start brings it back on the same ports and store. Its methods are for the
// test's goroutine.
type Cluster struct {
	t       testing.TB
	servers map[string]*natsjs.Server      // by name; nil while stopped
	configs map[string]natsjs.ServerConfig // by name, to start it again
	// URLs are the servers' client URLs, as a hub's --nats lists them.
	URLs []string
}

// Start starts n servers on free ports, each routing to all the others;
// they are shut down at the test's cleanup.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := hubtest.FreePorts(t, 2*n) // routes, then clients
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i])
	}
	c := &Cluster{t: t, servers: map[string]*natsjs.Server{}, configs: map[string]natsjs.ServerConfig{}}
	for i := range n {
		cfg := natsjs.ServerConfig{
			Addr: fmt.Sprintf("127.0.0.1:%d", ports[n+i]), StoreDir: t.TempDir(),
			Name: fmt.Sprintf("n%d", i+1), ClusterAddr: fmt.Sprintf("127.0.0.1:%d", ports[i]), ClusterName: "test",
			Routes:      routes, // its own among them, as every node of a cluster may list them all
			ClusterAuth: natsjs.Credentials{User: "route", Password: "route-secret"},
		}
		c.configs[cfg.Name] = cfg
		c.Start(cfg.Name)
		c.URLs = append(c.URLs, c.servers[cfg.Name].ClientURL())
	}
	return c
}

// Start starts the server named name again, after Stop.
func (c *Cluster) Start(name string) {
	c.t.Helper()
	srv, err := natsjs.StartServer(c.configs[name])
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(srv.Shutdown)
	c.servers[name] = srv
}

// Stop shuts the server named name down.
func (c *Cluster) Stop(name string) {
	c.servers[name].Shutdown()
	c.servers[name] = nil
}

// Server is the server named name, or nil when there is none running.
func (c *Cluster) Server(name string) *natsjs.Server { return c.servers[name] }

// Connect connects to every server of the cluster, as a hub given all
// their URLs with --nats does, and closes the connection at cleanup.
func (c *Cluster) Connect() *nats.Conn {
	c.t.Helper()
	nc, err := natsjs.Connect(strings.Join(c.URLs, ","), natsjs.Credentials{}, slog.New(slog.DiscardHandler))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}
