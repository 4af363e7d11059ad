package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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

// clusterArgs returns the arguments of hub i (0-based) of a cluster: base
// with its placeholders filled in, then --reuse-port, a private admin
// address (its own /readyz and /metrics, which the shared address cannot
// give: any hub may answer there), and NATS: hub 0 runs it embedded with
// JetStream on natsAddr, storing in store; the others join it.
func clusterArgs(base []string, i int, listen, perms, admin, natsAddr, store string) []string {
	args := fillArgs(base, listen, perms)
	args = append(args, "--reuse-port", "--admin-listen", admin)
	if i == 0 {
		return append(args, "--nats-embed", natsAddr, "--nats-store", store)
	}
	return append(args, "--nats", "nats://"+natsAddr)
}

// cluster is several eventhub processes on one address (SO_REUSEPORT: the
// kernel spreads connections over them) sharing one NATS JetStream log,
// embedded in the first. It is used by one goroutine.
type cluster struct {
	hubs  []*process // hubs[0] runs NATS
	admin []string   // each hub's admin address (host:port)
	nats  string     // NATS client address
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

// startCluster starts n hubs of binary on addr: hub 0 first, with NATS
// embedded, and once it is ready the others at once, and waits until every
// one is ready (its /readyz answers 200: listening and connected to NATS).
// Every hub reads the same permissions, perms (from userPermissions). On
// error every hub it started is stopped.
func startCluster(ctx context.Context, binary string, base []string, n int, addr, dir string, perms []byte) (*cluster, error) {
	permsFile, err := writePermissions(dir, perms)
	if err != nil {
		return nil, err
	}
	c := &cluster{}
	if c.nats, err = freePort(); err != nil {
		return nil, err
	}
	store := filepath.Join(dir, "nats")
	start := func(i int) error {
		admin, err := freePort()
		if err != nil {
			return err
		}
		args := clusterArgs(base, i, addr, permsFile, admin, c.nats, store)
		p, err := startProcess(binary, args, filepath.Join(dir, "hub"+strconv.Itoa(i+1)+".log"))
		if err != nil {
			return err
		}
		p.addr = addr
		c.hubs, c.admin = append(c.hubs, p), append(c.admin, admin)
		return nil
	}
	if err := start(0); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, 0, 30*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	for i := 1; i < n; i++ {
		if err := start(i); err != nil {
			c.stop()
			return nil, err
		}
	}
	for i := 1; i < n; i++ {
		if err := c.waitReady(ctx, i, 30*time.Second); err != nil {
			c.stop()
			return nil, err
		}
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

// stop stops the hubs that joined, all at once, then hub 0, which runs
// NATS: the others would otherwise spend their drain reconnecting to it.
func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, p := range c.hubs[min(1, len(c.hubs)):] {
		wg.Go(p.stop)
	}
	wg.Wait()
	if len(c.hubs) > 0 {
		c.hubs[0].stop()
	}
}

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
		h := HubUsage{PID: pid, NATS: i == 0, Streams: -1, RSSBefore: before[i].RSS, RSSConnected: now[i].RSS}
		if m := scrape(ctx, urls[i]); m != nil {
			h.Streams = int64(m.streams)
			if h.Streams > 0 {
				h.RSSPerStream = float64(h.RSSConnected-h.RSSBefore) / float64(h.Streams)
			}
		}
		r.res.Hubs[i] = h
	}
}
