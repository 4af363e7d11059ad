package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// TestMain lets this test binary stand in for eventhub: run as
// "BINARY serve …" it is fakeHub, so that the cluster's process management
// is tested with real processes, ports and signals in milliseconds.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := fakeHub(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fake hub:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := floorMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	hubtest.Main(m) // removes the hub hubtest.Binary built
}

// floorMain is "eventhub-bench floor" (startFloor's command) for the runs
// against the floor that the tests start: it serves a Floor until SIGTERM.
func floorMain(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	assets := fs.Int("assets", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return (&Floor{Assets: *assets}).ServeUntil(ctx, ln)
}

// fakeHub does what the harness relies on from a clustered eventhub: it
// listens on --listen with SO_REUSEPORT (a Floor serves it), answers
// /readyz and /metrics on --admin-listen, runs "NATS" (a bare listener)
// on --nats-embed or, with --nats, refuses to start unless every server
// it lists is reachable, and exits on SIGTERM. With --nats-cluster it is a
// node of a "NATS cluster": it listens there for routes too, and its
// /readyz answers 503 until every node of --nats-routes listens, as a hub
// waits for its cluster to form. It refuses the flag combinations the hub
// refuses: more than one replica without a cluster, a node without its
// store, routes or name. It says on stderr (its log) how many bench users
// the --permissions file lists, and which NATS role it has. --fail makes
// it exit at once, and --fail-joiner too unless it runs NATS.
func fakeHub(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	admin := fs.String("admin-listen", "", "")
	reusePort := fs.Bool("reuse-port", false, "")
	natsEmbed := fs.String("nats-embed", "", "")
	natsStore := fs.String("nats-store", "", "")
	natsURL := fs.String("nats", "", "")
	natsName := fs.String("nats-name", "", "")
	natsCluster := fs.String("nats-cluster", "", "")
	natsRoutes := fs.String("nats-routes", "", "")
	replicas := fs.Int("nats-replicas", 1, "")
	fail := fs.Bool("fail", false, "")
	failJoiner := fs.Bool("fail-joiner", false, "")
	perms := fs.String("permissions", "", "")
	fs.Int("max-streams-per-user", 16, "")
	fs.Int("max-streams", 0, "")
	fs.Duration("heartbeat", 0, "")
	fs.String("log-level", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *fail, *failJoiner && *natsURL != "":
		return errors.New("asked to fail")
	case !*reusePort || *admin == "":
		return errors.New("want --reuse-port and --admin-listen")
	case (*natsEmbed == "") == (*natsURL == ""):
		return errors.New("want one of --nats-embed and --nats")
	case *natsEmbed != "" && *natsStore == "":
		return errors.New("want --nats-store with --nats-embed")
	case *replicas < 1 || *replicas > MaxNATSReplicas:
		return fmt.Errorf("--nats-replicas %d", *replicas)
	case *replicas > 1 && *natsCluster == "" && *natsURL == "":
		return errors.New("more than one replica needs a NATS cluster")
	case *natsCluster != "" && (*natsEmbed == "" || *natsRoutes == "" || *natsName == ""):
		return errors.New("want --nats-embed, --nats-routes and --nats-name with --nats-cluster")
	}
	table, err := os.ReadFile(*perms)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "permissions %s: %d bench users\n", *perms, strings.Count(string(table), `"`+benchUser))
	var routes []string
	for _, addr := range []string{*natsEmbed, *natsCluster} {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	switch {
	case *natsCluster != "":
		for r := range strings.SplitSeq(*natsRoutes, ",") {
			routes = append(routes, strings.TrimPrefix(r, "nats-route://"))
		}
		fmt.Fprintf(os.Stderr, "NATS node %s of %d replicas, routes %s\n", *natsName, *replicas, strings.Join(routes, " "))
	case *natsEmbed != "":
		fmt.Fprintf(os.Stderr, "NATS alone\n")
	default:
		for u := range strings.SplitSeq(*natsURL, ",") {
			c, err := net.Dial("tcp", strings.TrimPrefix(u, "nats://"))
			if err != nil {
				return fmt.Errorf("nats: %w", err)
			}
			c.Close()
		}
		fmt.Fprintf(os.Stderr, "NATS joined %s, %d replicas\n", *natsURL, *replicas)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1) })
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", *listen)
	if err != nil {
		return err
	}
	f := &Floor{}
	go f.Serve(ln)
	defer f.Close()
	aln, err := net.Listen("tcp", *admin)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		for _, r := range routes {
			c, err := net.Dial("tcp", r)
			if err != nil {
				http.Error(w, "cluster not formed", http.StatusServiceUnavailable)
				return
			}
			c.Close()
		}
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		n := len(f.streams)
		f.mu.Unlock()
		fmt.Fprintf(w, "# TYPE eventhub_streams_active gauge\neventhub_streams_active %d\n", n)
	})
	go http.Serve(aln, mux)
	defer aln.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	return nil
}

func TestHubsFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ streams, hubs int }{{1, 1}, {15000, 1}, {15001, 2}, {30000, 2}, {100000, 7}} {
		if got := hubsFor(c.streams); got != c.hubs {
			t.Errorf("hubsFor(%d) = %d, want %d", c.streams, got, c.hubs)
		}
	}
}

func TestClusterArgs(t *testing.T) {
	t.Parallel()
	base := []string{"serve", "--listen", "{listen}", "--permissions", "{permissions}", "--max-streams", "19000"}
	one := natsNodes{clients: []string{"127.0.0.1:4222"}, stores: []string{"/t/nats"}}
	three := natsNodes{
		clients: []string{"127.0.0.1:4222", "127.0.0.1:4223", "127.0.0.1:4224"},
		routes:  []string{"127.0.0.1:6222", "127.0.0.1:6223", "127.0.0.1:6224"},
		stores:  []string{"/t/nats-1", "/t/nats-2", "/t/nats-3"},
	}
	const head = "serve --listen 127.0.0.1:18080 --permissions /t/p.json --max-streams 19000 " +
		"--reuse-port --admin-listen 127.0.0.1:9001 "
	for _, c := range []struct {
		name string
		nats natsNodes
		i    int
		want string
	}{
		{"first runs NATS", one, 0, head + "--nats-embed 127.0.0.1:4222 --nats-store /t/nats"},
		{"others join it", one, 3, head + "--nats nats://127.0.0.1:4222"},
		{"R3: first node", three, 0, head + "--nats-embed 127.0.0.1:4222 --nats-store /t/nats-1 --nats-name hub-1 " +
			"--nats-cluster 127.0.0.1:6222 --nats-routes nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224 --nats-replicas 3"},
		{"R3: second node", three, 1, head + "--nats-embed 127.0.0.1:4223 --nats-store /t/nats-2 --nats-name hub-2 " +
			"--nats-cluster 127.0.0.1:6223 --nats-routes nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6224 --nats-replicas 3"},
		{"R3: third node", three, 2, head + "--nats-embed 127.0.0.1:4224 --nats-store /t/nats-3 --nats-name hub-3 " +
			"--nats-cluster 127.0.0.1:6224 --nats-routes nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223 --nats-replicas 3"},
		{"R3: others join all three", three, 3, head +
			"--nats nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 --nats-replicas 3"},
		{"R3: the last hub too", three, 6, head +
			"--nats nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 --nats-replicas 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := clusterArgs(base, c.i, "127.0.0.1:18080", "/t/p.json", "127.0.0.1:9001", c.nats)
			if s := strings.Join(got, " "); s != c.want {
				t.Errorf("got  %s\nwant %s", s, c.want)
			}
		})
	}
	if !slices.Contains(DefaultClusterHubArgs, "--max-streams") || slices.Contains(DefaultHubArgs, "--max-streams") {
		t.Errorf("DefaultClusterHubArgs %q should add --max-streams to DefaultHubArgs %q", DefaultClusterHubArgs, DefaultHubArgs)
	}
}

// TestPlanNATS: one node keeps the store it always had, TMP/nats; three
// get six distinct addresses and a store each.
func TestPlanNATS(t *testing.T) {
	t.Parallel()
	one, err := planNATS(1, "/t")
	if err != nil {
		t.Fatal(err)
	}
	if len(one.clients) != 1 || one.routes != nil || !slices.Equal(one.stores, []string{"/t/nats"}) {
		t.Errorf("one node: %+v", one)
	}
	three, err := planNATS(3, "/t")
	if err != nil {
		t.Fatal(err)
	}
	if len(three.clients) != 3 || len(three.routes) != 3 || !slices.Equal(three.stores, []string{"/t/nats-1", "/t/nats-2", "/t/nats-3"}) {
		t.Fatalf("three nodes: %+v", three)
	}
	seen := map[string]bool{}
	for _, a := range append(slices.Clone(three.clients), three.routes...) {
		if seen[a] {
			t.Errorf("address %s picked twice: %+v", a, three)
		}
		seen[a] = true
	}
}

// TestConfigNATSReplicas: the replicas default to 1; more need as many
// hubs, and JetStream keeps at most 5; a refusal is ErrConfig, which
// Run returns before it starts anything.
func TestConfigNATSReplicas(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		cfg      Config
		replicas int
		err      string
	}{
		{"default", Config{Hubs: 7, HubBinary: "eh"}, 1, ""},
		{"three of seven", Config{Hubs: 7, HubBinary: "eh", NATSReplicas: 3}, 3, ""},
		{"three of three", Config{Hubs: 3, HubBinary: "eh", NATSReplicas: 3}, 3, ""},
		{"three of auto", Config{Hubs: -1, Streams: 100000, HubBinary: "eh", NATSReplicas: 3}, 3, ""},
		{"five", Config{Hubs: 7, HubBinary: "eh", NATSReplicas: 5}, 5, ""},
		{"more than the hubs", Config{Hubs: 2, HubBinary: "eh", NATSReplicas: 3}, 0, "3 NATS replicas need at least as many hubs"},
		{"one hub", Config{HubBinary: "eh", NATSReplicas: 2}, 0, "2 NATS replicas need at least as many hubs"},
		{"six", Config{Hubs: 7, HubBinary: "eh", NATSReplicas: 6}, 0, "6 NATS replicas: JetStream keeps 1 to 5"},
		{"negative", Config{Hubs: 7, HubBinary: "eh", NATSReplicas: -1}, 0, "-1 NATS replicas"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			err := cfg.defaults()
			if c.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want ErrConfig saying %q", err, c.err)
				}
				return
			}
			if err != nil || cfg.NATSReplicas != c.replicas {
				t.Fatalf("replicas %d, err %v; want %d", cfg.NATSReplicas, err, c.replicas)
			}
		})
	}
	// Refused before anything starts: no hub log, no permissions file.
	dir := t.TempDir()
	_, err := Run(context.Background(), Config{Scenario: "idle", HubBinary: os.Args[0], Hubs: 2, NATSReplicas: 3,
		SubURL: "http://127.0.0.1:1/api/events", WorkDir: dir})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Run: err = %v, want ErrConfig", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("Run left %d files in its work dir after refusing", len(entries))
	}
}

func TestConfigHubs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  Config
		hubs int
		err  bool
	}{
		{"auto", Config{Hubs: -1, Streams: 100000, HubBinary: "eh"}, 7, false},
		{"one", Config{Hubs: 1, HubBinary: "eh"}, 1, false},
		{"no binary", Config{Hubs: 3}, 0, true},
		{"floor", Config{Hubs: 3, HubBinary: "eh", CompareFloor: true}, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			err := cfg.defaults()
			if c.err {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil || cfg.Hubs != c.hubs {
				t.Fatalf("hubs %d, err %v; want %d", cfg.Hubs, err, c.hubs)
			}
			if want := c.hubs > 1; slices.Contains(cfg.HubArgs, "--max-streams") != want {
				t.Errorf("hub args %q", cfg.HubArgs)
			}
		})
	}
}

// TestClusterStartStop starts fake hubs on one port: those that run NATS
// must be ready before the others can join them (and the nodes of a NATS
// cluster are started together: each is ready only once the others
// listen), every hub answers on its admin address, connections to the
// shared port are served, and stop leaves nothing running.
func TestClusterStartStop(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name           string
		hubs, replicas int
		roles          []string // what each hub's log says of its NATS
	}{
		{"one NATS", 3, 1, []string{"NATS alone", "NATS joined nats://", "NATS joined nats://"}},
		{"three NATS nodes", 4, 3, []string{"NATS node hub-1 of 3 replicas", "NATS node hub-2 of 3 replicas",
			"NATS node hub-3 of 3 replicas", "NATS joined nats://127.0.0.1:"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir := t.TempDir()
			cl, err := startCluster(ctx, os.Args[0], DefaultClusterHubArgs, c.hubs, c.replicas, addr, dir, userPermissions(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					cl.stop()
				}
			})
			if len(cl.pids()) != c.hubs || cl.exited() != nil {
				t.Fatalf("pids %v, exited %v", cl.pids(), cl.exited())
			}
			for _, u := range cl.metricsURLs() {
				if m := scrape(ctx, u); m == nil {
					t.Errorf("%s: no metrics", u)
				}
			}
			for i, role := range c.roles {
				if log := tail(filepath.Join(dir, fmt.Sprintf("hub%d.log", i+1)), 4096); !strings.Contains(log, role) {
					t.Errorf("hub %d's log %q, want %q", i+1, log, role)
				}
				if cl.runsNATS(i) != (i < c.replicas) {
					t.Errorf("hub %d runs NATS: %v", i+1, cl.runsNATS(i))
				}
			}
			if c.replicas > 1 {
				// The joiners know every node.
				log := tail(filepath.Join(dir, fmt.Sprintf("hub%d.log", c.hubs)), 4096)
				if n := strings.Count(log, "nats://"); n != c.replicas {
					t.Errorf("the last hub joined %d servers, want %d: %q", n, c.replicas, log)
				}
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET /api/events HTTP/1.1\r\nHost: h\r\n\r\n")
			head := make([]byte, len(floorHead))
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(conn, head); err != nil || string(head) != string(floorHead) {
				t.Errorf("stream head %q, %v", head, err)
			}
			conn.Close()
			cl.stop()
			stopped = true
			for i, p := range cl.hubs {
				if p.exited() == nil {
					t.Errorf("hub %d still running after stop", i+1)
				}
			}
		})
	}
}

// TestClusterHubFails: a hub that cannot start fails the start, naming
// it and quoting its log, and the hubs already started are stopped.
func TestClusterHubFails(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, flag, want string
		replicas         int
	}{
		{"first", "--fail", "hub 1", 1},
		{"joiner", "--fail-joiner", "hub 2", 1},
		{"a node of three", "--fail", "hub 1", 3},
		{"joiner of three nodes", "--fail-joiner", "hub 4", 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append(append([]string{}, DefaultClusterHubArgs...), c.flag)
			_, err = startCluster(ctx, os.Args[0], args, 4, c.replicas, addr, t.TempDir(), userPermissions(0, 0))
			if err == nil || !strings.Contains(err.Error(), "asked to fail") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %s failing, with its log", err, c.want)
			}
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("a hub still listens on %s", addr)
			}
		})
	}
}

// TestIdleAgainstFakeCluster runs a scenario through Run against fake
// hubs on one port: the streams spread over them, and the run reports
// each hub's streams and memory and their sum, which hubs run NATS, and
// how many replicas the log was kept with.
func TestIdleAgainstFakeCluster(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name           string
		hubs, replicas int
		target         string
		nats           []bool
	}{
		{"one NATS", 2, 0, "eventhub ×2", []bool{true, false}},
		{"two NATS nodes", 3, 2, "eventhub ×3 (NATS ×2)", []bool{true, true, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			idleAgainstFakeCluster(t, c.hubs, c.replicas, c.target, c.nats)
		})
	}
}

func idleAgainstFakeCluster(t *testing.T, hubs, replicas int, target string, nats []bool) {
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmp, err := Run(context.Background(), Config{
		Scenario:     "idle",
		SubURL:       "http://" + addr + "/api/events",
		HubBinary:    os.Args[0],
		Hubs:         hubs,
		NATSReplicas: replicas,
		Streams:      60,
		Duration:     200 * time.Millisecond,
		Settle:       50 * time.Millisecond,
		WorkDir:      dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := cmp.Runs[0]
	if r.Target != target || r.Connected != 60 || r.Failed != 0 {
		t.Fatalf("target %q, connected %d, failed %d (%v); want %q", r.Target, r.Connected, r.Failed, r.FailReasons, target)
	}
	if want := max(replicas, 1); r.NATSReplicas != want {
		t.Errorf("NATS replicas %d, want %d", r.NATSReplicas, want)
	}
	if len(r.Hubs) != hubs {
		t.Fatalf("hubs %+v, want %d", r.Hubs, hubs)
	}
	var streams, rss int64
	for i, h := range r.Hubs {
		if h.NATS != nats[i] {
			t.Errorf("hub %d runs NATS: %v, want %v", i+1, h.NATS, nats[i])
		}
		streams += h.Streams
		rss += h.RSSConnected
	}
	if streams != 60 {
		t.Errorf("streams per hub %+v, want 60 in all", r.Hubs)
	}
	// Read a moment apart, the sum and the parts differ a little.
	if r.Server == nil || r.Server.RSSConnected < rss/2 || r.Server.RSSConnected > 2*rss {
		t.Errorf("server usage %+v, want the hubs' RSS summed (%d)", r.Server, rss)
	}
	// Every hub was given the permissions of the 60 users, one a stream.
	want := fmt.Sprintf("permissions %s: 60 bench users", filepath.Join(dir, "permissions.json"))
	for i := 1; i <= hubs; i++ {
		if log := tail(filepath.Join(dir, fmt.Sprintf("hub%d.log", i)), 4096); !strings.Contains(log, want) {
			t.Errorf("hub %d's log %q, want %q", i, log, want)
		}
	}
}
