package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/internal/natsjs"
)

// TestNATSClusterFlags: the flags of hubs on a NATS cluster, and of hubs
// that are one, are taken as given: replicas, the start timeout, the
// routes, the node's name, and the route password from a file or the
// environment.
func TestNATSClusterFlags(t *testing.T) {
	passFile := filepath.Join(t.TempDir(), "route-password")
	if err := os.WriteFile(passFile, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	node := []string{"--nats-embed", "127.0.0.1:4222", "--nats-store", store, "--nats-cluster", "node-1:6222",
		"--nats-routes", "nats-route://node-2:6222, nats-route://node-3:6222", "--nats-replicas", "3", "--nats-cluster-user", "hub"}
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		check    func(c serveConfig) string // what is wrong with c, if anything
		replicas int
	}{
		{"hubs on an external cluster", []string{"--nats", "nats://a:4222,nats://b:4222,nats://c:4222", "--nats-replicas", "3"}, nil, func(c serveConfig) string {
			if c.natsStartTimeout != 60*time.Second || c.natsCluster != "" {
				return fmt.Sprintf("start timeout %v, cluster %q", c.natsStartTimeout, c.natsCluster)
			}
			return ""
		}, 3},
		{"a node, the route password from a file", append(slices.Clone(node), "--nats-cluster-password-file", passFile, "--nats-start-timeout", "2m"), nil, func(c serveConfig) string {
			if c.natsClusterAuth != (natsjs.Credentials{User: "hub", Password: "from-a-file"}) || c.natsStartTimeout != 2*time.Minute {
				return fmt.Sprintf("route credentials %v, start timeout %v", c.natsClusterAuth.User, c.natsStartTimeout)
			}
			return ""
		}, 3},
		{"a node, the route password from the environment", node, map[string]string{"EVENTHUB_NATS_CLUSTER_PASSWORD": "from-env"}, func(c serveConfig) string {
			want := []string{"nats-route://node-2:6222", "nats-route://node-3:6222"}
			if c.natsClusterAuth.Password != "from-env" || !slices.Equal(c.natsRouteURLs, want) {
				return fmt.Sprintf("routes %v, want %v", c.natsRouteURLs, want)
			}
			if c.natsClusterName != "eventhub" || c.natsName != "" {
				return fmt.Sprintf("cluster name %q, node name %q: want the defaults", c.natsClusterName, c.natsName)
			}
			return ""
		}, 3},
		{"a node on loopback, named, without route credentials", []string{"--nats-embed", "127.0.0.1:4222", "--nats-store", store,
			"--nats-cluster", "127.0.0.1:6222", "--nats-routes", "nats-route://127.0.0.1:6223", "--nats-name", "n1", "--nats-cluster-name", "prod"}, nil, func(c serveConfig) string {
			if c.natsName != "n1" || c.natsClusterName != "prod" || !c.natsClusterAuth.IsZero() || len(c.natsRouteURLs) != 1 {
				return fmt.Sprintf("name %q, cluster %q, routes %v", c.natsName, c.natsClusterName, c.natsRouteURLs)
			}
			return ""
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c, err := parseServeFlags(tc.args, func(k string) string { return tc.env[k] }, &out)
			if err != nil {
				t.Fatalf("refused: %v (%s)", err, out.String())
			}
			if c.natsReplicas != tc.replicas {
				t.Errorf("replicas %d, want %d", c.natsReplicas, tc.replicas)
			}
			if wrong := tc.check(c); wrong != "" {
				t.Error(wrong)
			}
		})
	}
}

// TestServeReplicasOnASingleNATS: a hub asking a NATS server that is not
// clustered for three replicas says so at once, naming the flag.
func TestServeReplicasOnASingleNATS(t *testing.T) {
	srv, err := natsjs.StartServer(natsjs.ServerConfig{Addr: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	start := time.Now()
	err = run(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--nats", srv.ClientURL(), "--nats-replicas", "3"},
		func(string) string { return "" }, io.Discard, io.Discard)
	const want = "--nats-replicas 3: the NATS cluster has only 1 JetStream server"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want one saying %q", err, want)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("it took %v: a server on its own never grows replicas, nothing to wait for", took)
	}
}

// TestServeEmbeddedCluster: three hubs that are the NATS cluster (each
// embeds a node, routes to the others with route credentials from the
// environment, and keeps three replicas), started together as a
// deployment starts them: they wait for the cluster to form, then an event
// published on one reaches a stream on another; the log and the job queue
// have three replicas; no log line shows the route password.
func TestServeEmbeddedCluster(t *testing.T) {
	const password = "route-secret-password-7117"
	env := map[string]string{"EVENTHUB_NATS_CLUSTER_PASSWORD": password}
	const n = 3
	clientAddrs, routeAddrs, routes := make([]string, n), make([]string, n), make([]string, n)
	ports := hubtest.FreePorts(t, 2*n)
	for i := range n {
		clientAddrs[i] = fmt.Sprintf("127.0.0.1:%d", ports[i])
		routeAddrs[i] = fmt.Sprintf("127.0.0.1:%d", ports[n+i])
		routes[i] = "nats-route://" + routeAddrs[i]
	}
	var mu sync.Mutex
	var logged []string
	keep := func(line string) { mu.Lock(); logged = append(logged, line); mu.Unlock() }
	hubs := make([]*runningHub, n)
	for i := range n {
		others := slices.Delete(slices.Clone(routes), i, i+1)
		hubs[i] = launchRun(t, []string{"serve", "--listen", "127.0.0.1:0",
			"--nats-embed", clientAddrs[i], "--nats-store", t.TempDir(), "--nats-name", fmt.Sprintf("hub-%d", i+1),
			"--nats-cluster", routeAddrs[i], "--nats-routes", strings.Join(others, ","), "--nats-cluster-user", "hub",
			"--nats-replicas", "3", "--nats-start-timeout", "60s"}, env, keep)
	}
	addrs := make([]string, n)
	for i, h := range hubs {
		addrs[i] = h.waitListening(t, 70*time.Second).Main
	}

	s := hubtest.OpenStream(t, addrs[2], "/api/events", "Authorization", "Bearer dev:ops")
	if got := post(t, "http://"+addrs[0]+"/api/events", "dev-publish-key", oneEvent); got != 202 {
		t.Fatalf("publish: %d", got)
	}
	if f := s.NextEvent(t, 10*time.Second); !strings.Contains(f.Data, `"jobId":"j1"`) {
		t.Fatalf("stream on the third hub got %+v, want j1", f)
	}

	nc, err := natsjs.Connect("nats://"+clientAddrs[1], natsjs.Credentials{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"EVENTHUB", "EVENTHUB_JOBS"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		stream, err := js.Stream(ctx, name)
		cancel()
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if info := stream.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas (%+v), want 3", name, info.Config.Replicas, info.Cluster)
		}
	}

	for i, h := range hubs {
		if err := h.stop(); err != nil {
			t.Errorf("hub %d: %v", i+1, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(logged, "\n")
	if strings.Contains(all, password) {
		t.Error("a log line shows the route password")
	}
	if !strings.Contains(all, `"name":"hub-1"`) || !strings.Contains(all, `"cluster":"`+routeAddrs[0]+`"`) {
		t.Errorf("the hubs do not log their node's name and route address:\n%s", all)
	}
}
