package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultClusterHubArgs are the arguments each hub of a cluster gets when
// HubArgs is not set: DefaultHubArgs with a stream limit each process can
// keep under its 20,000 open files. The harness adds the cluster's own
// flags (clusterArgs).
var DefaultClusterHubArgs = append(append([]string{}, DefaultHubArgs...), "--max-streams", "19000")

// StreamsPerHub is how many streams Config.Hubs < 0 plans per hub process:
// well below the 19,000 each may hold, so that the kernel's uneven spread
// over SO_REUSEPORT listeners (±2% at 100,000) does not push one over.
const StreamsPerHub = 15000

// hubsFor returns how many hubs hold streams: ceil(streams / StreamsPerHub).
func hubsFor(streams int) int {
	return max(1, (streams+StreamsPerHub-1)/StreamsPerHub)
}

// MaxNATSReplicas is the most replicas JetStream keeps of a stream, and
// so the most NATS nodes Config.NATSReplicas may ask for.
const MaxNATSReplicas = 5

// natsNodes are a cluster's NATS servers: node i runs embedded in hub i.
// With one node (the default) it runs alone and keeps one copy of the
// log; with more, the nodes are one NATS cluster, routed to each other,
// and the log and the job queue are kept on each of them.
type natsNodes struct {
	clients []string // each node's client address (host:port)
	routes  []string // each node's route address (host:port); none for one node
	stores  []string // each node's JetStream store
}

// clusterArgs returns the arguments of hub i (0-based) of a cluster: base
// with its placeholders filled in, then --reuse-port, a private admin
// address (its own /readyz and /metrics, which the shared address cannot
// give: any hub may answer there), and NATS. With one node, hub 0 runs it
// embedded with JetStream, storing in its store, and the others join it.
// With N nodes, hubs 0 … N-1 each run one, named hub-<i+1>, routed to the
// others, the others join them through all N, and every hub asks for N
// replicas of the log and the job queue.
func clusterArgs(base []string, i int, listen, perms, admin string, nats natsNodes) []string {
	args := fillArgs(base, listen, perms)
	args = append(args, "--reuse-port", "--admin-listen", admin)
	n := len(nats.clients)
	if n == 1 {
		if i == 0 {
			return append(args, "--nats-embed", nats.clients[0], "--nats-store", nats.stores[0])
		}
		return append(args, "--nats", "nats://"+nats.clients[0])
	}
	replicas := strconv.Itoa(n)
	if i < n {
		var others []string
		for j, r := range nats.routes {
			if j != i {
				others = append(others, "nats-route://"+r)
			}
		}
		return append(args, "--nats-embed", nats.clients[i], "--nats-store", nats.stores[i],
			"--nats-name", "hub-"+strconv.Itoa(i+1), "--nats-cluster", nats.routes[i],
			"--nats-routes", strings.Join(others, ","), "--nats-replicas", replicas)
	}
	urls := make([]string, n)
	for j, c := range nats.clients {
		urls[j] = "nats://" + c
	}
	return append(args, "--nats", strings.Join(urls, ","), "--nats-replicas", replicas)
}

// cluster is several eventhub processes on one address (SO_REUSEPORT: the
// kernel spreads connections over them) sharing one NATS JetStream log,
// embedded in the first hubs (natsNodes). It is used by one goroutine.
type cluster struct {
	hubs  []*process // hubs[:len(nats.clients)] run NATS
	admin []string   // each hub's admin address (host:port)
	nats  natsNodes
}

// freePort returns a loopback address with a port that was free a moment
// ago. Another program may take it before the hub does; the hub then fails
// to start and the run says so.
func freePort() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// freePorts returns n loopback addresses as freePort does, distinct: each
// port is held until all are picked.
func freePorts(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		held = append(held, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// planNATS picks the addresses and stores of a cluster's replicas NATS
// nodes, under dir. One node stores in dir/nats; node i of several in
// dir/nats-<i+1>.
func planNATS(replicas int, dir string) (natsNodes, error) {
	if replicas <= 1 {
		addr, err := freePort()
		if err != nil {
			return natsNodes{}, err
		}
		return natsNodes{clients: []string{addr}, stores: []string{filepath.Join(dir, "nats")}}, nil
	}
	addrs, err := freePorts(2 * replicas)
	if err != nil {
		return natsNodes{}, err
	}
	nodes := natsNodes{clients: addrs[:replicas], routes: addrs[replicas:]}
	for i := range replicas {
		nodes.stores = append(nodes.stores, filepath.Join(dir, "nats-"+strconv.Itoa(i+1)))
	}
	return nodes, nil
}

// natsReadyLimit bounds the wait for a hub that runs a node of a NATS
// cluster: the nodes elect the streams' leaders first, and the hub waits
// for that up to its --nats-start-timeout (60 s by default).
const natsReadyLimit = 75 * time.Second

// startCluster starts n hubs of binary on addr, replicas of them (at least
// one) running a NATS node embedded: those first, all at once (the nodes of
// a cluster wait for each other), and once each is ready the others at once,
// and waits until every one is ready (its /readyz answers 200: listening
// and connected to NATS). Every hub reads the same permissions, perms (from
// userPermissions). On error every hub it started is stopped.
func startCluster(ctx context.Context, binary string, base []string, n, replicas int, addr, dir string, perms []byte) (*cluster, error) {
	permsFile, err := writePermissions(dir, perms)
	if err != nil {
		return nil, err
	}
	replicas = max(replicas, 1)
	c := &cluster{}
	if c.nats, err = planNATS(replicas, dir); err != nil {
		return nil, err
	}
	start := func(i int) error {
		admin, err := freePort()
		if err != nil {
			return err
		}
		args := clusterArgs(base, i, addr, permsFile, admin, c.nats)
		p, err := startProcess(binary, args, filepath.Join(dir, "hub"+strconv.Itoa(i+1)+".log"))
		if err != nil {
			return err
		}
		p.addr = addr
		c.hubs, c.admin = append(c.hubs, p), append(c.admin, admin)
		return nil
	}
	// startAll starts hubs from … to-1 at once, then waits for each.
	startAll := func(from, to int, limit time.Duration) error {
		for i := from; i < to; i++ {
			if err := start(i); err != nil {
				return err
			}
		}
		for i := from; i < to; i++ {
			if err := c.waitReady(ctx, i, limit); err != nil {
				return err
			}
		}
		return nil
	}
	limit := 30 * time.Second
	if replicas > 1 {
		limit = natsReadyLimit
	}
	if err := startAll(0, replicas, limit); err != nil {
		c.stop()
		return nil, err
	}
	if err := startAll(replicas, n, 30*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// waitReady polls hub i's /readyz until it answers 200.
func (c *cluster) waitReady(ctx context.Context, i int, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + c.admin[i] + "/readyz"
	deadline := time.Now().Add(limit)
	for {
		if err := c.hubs[i].exited(); err != nil {
			return fmt.Errorf("hub %d: %w", i+1, err)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub %d not ready at %s after %v: %w (log %s)", i+1, url, limit, err, c.hubs[i].log)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// exited reports an error if any hub is no longer running.
func (c *cluster) exited() error {
	for i, p := range c.hubs {
		if err := p.exited(); err != nil {
			return fmt.Errorf("hub %d: %w", i+1, err)
		}
	}
	return nil
}

func (c *cluster) pids() []int {
	pids := make([]int, len(c.hubs))
	for i, p := range c.hubs {
		pids[i] = p.pid()
	}
	return pids
}

// metricsURLs are the hubs' /metrics, on their admin addresses.
func (c *cluster) metricsURLs() []string {
	urls := make([]string, len(c.admin))
	for i, a := range c.admin {
		urls[i] = "http://" + a + "/metrics"
	}
	return urls
}

// stop stops the hubs that joined, all at once, then those that run NATS,
// all at once: the others would otherwise spend their drain reconnecting
// to them.
func (c *cluster) stop() {
	nodes := min(max(len(c.nats.clients), 1), len(c.hubs))
	stopAll := func(ps []*process) {
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Go(p.stop)
		}
		wg.Wait()
	}
	stopAll(c.hubs[nodes:])
	stopAll(c.hubs[:nodes])
}

// runsNATS reports whether hub i runs a NATS node.
func (c *cluster) runsNATS(i int) bool { return i < max(len(c.nats.clients), 1) }

// writePermissions writes the bench permissions file, perms, into dir
// and returns its path.
func writePermissions(dir string, perms []byte) (string, error) {
	path := filepath.Join(dir, "permissions.json")
	if err := os.WriteFile(path, perms, 0o600); err != nil {
		return "", fmt.Errorf("writing bench permissions: %w", err)
	}
	return path, nil
}

// hubsConnected records each hub's streams (from its /metrics) and RSS
// once the streams are connected.
func (r *runner) hubsConnected(ctx context.Context, before []procUsage) {
	now := r.hubUsages()
	urls := r.cluster.metricsURLs()
	r.res.Hubs = make([]HubUsage, len(r.pids))
	for i, pid := range r.pids {
		h := HubUsage{PID: pid, NATS: r.cluster.runsNATS(i), Streams: -1, RSSBefore: before[i].RSS, RSSConnected: now[i].RSS}
		if m := scrape(ctx, urls[i]); m != nil {
			h.Streams = int64(m.streams)
			if h.Streams > 0 {
				h.RSSPerStream = float64(h.RSSConnected-h.RSSBefore) / float64(h.Streams)
			}
		}
		r.res.Hubs[i] = h
	}
}
