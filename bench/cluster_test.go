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
// on --nats-embed or, with --nats, refuses to start unless that is
// reachable, and exits on SIGTERM. It says on stderr (its log) how many
// bench users the --permissions file lists. --fail makes it exit at once,
// and --fail-joiner too unless it runs NATS.
func fakeHub(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	admin := fs.String("admin-listen", "", "")
	reusePort := fs.Bool("reuse-port", false, "")
	natsEmbed := fs.String("nats-embed", "", "")
	fs.String("nats-store", "", "")
	natsURL := fs.String("nats", "", "")
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
	}
	table, err := os.ReadFile(*perms)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "permissions %s: %d bench users\n", *perms, strings.Count(string(table), `"`+benchUser))
	if *natsEmbed != "" {
		ln, err := net.Listen("tcp", *natsEmbed)
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
	} else {
		c, err := net.Dial("tcp", strings.TrimPrefix(*natsURL, "nats://"))
		if err != nil {
			return fmt.Errorf("nats: %w", err)
		}
		c.Close()
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
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "{}") })
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
	for _, c := range []struct {
		name string
		i    int
		want string
	}{
		{"first runs NATS", 0, "serve --listen 127.0.0.1:18080 --permissions /t/p.json --max-streams 19000 " +
			"--reuse-port --admin-listen 127.0.0.1:9001 --nats-embed 127.0.0.1:4222 --nats-store /t/nats"},
		{"others join it", 3, "serve --listen 127.0.0.1:18080 --permissions /t/p.json --max-streams 19000 " +
			"--reuse-port --admin-listen 127.0.0.1:9001 --nats nats://127.0.0.1:4222"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := clusterArgs(base, c.i, "127.0.0.1:18080", "/t/p.json", "127.0.0.1:9001", "127.0.0.1:4222", "/t/nats")
			if s := strings.Join(got, " "); s != c.want {
				t.Errorf("got  %s\nwant %s", s, c.want)
			}
		})
	}
	if !slices.Contains(DefaultClusterHubArgs, "--max-streams") || slices.Contains(DefaultHubArgs, "--max-streams") {
		t.Errorf("DefaultClusterHubArgs %q should add --max-streams to DefaultHubArgs %q", DefaultClusterHubArgs, DefaultHubArgs)
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

// TestClusterStartStop starts three fake hubs on one port: the first
// must be ready before the others can join it, every hub answers on its
// admin address, connections to the shared port are served, and stop
// leaves nothing running.
func TestClusterStartStop(t *testing.T) {
	t.Parallel()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := startCluster(ctx, os.Args[0], DefaultClusterHubArgs, 3, addr, t.TempDir(), userPermissions(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cl.stop()
		}
	})
	if len(cl.pids()) != 3 || cl.exited() != nil {
		t.Fatalf("pids %v, exited %v", cl.pids(), cl.exited())
	}
	for _, u := range cl.metricsURLs() {
		if m := scrape(ctx, u); m == nil {
			t.Errorf("%s: no metrics", u)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /api/events HTTP/1.1\r\nHost: h\r\n\r\n")
	head := make([]byte, len(floorHead))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, head); err != nil || string(head) != string(floorHead) {
		t.Errorf("stream head %q, %v", head, err)
	}
	c.Close()
	cl.stop()
	stopped = true
	for i, p := range cl.hubs {
		if p.exited() == nil {
			t.Errorf("hub %d still running after stop", i+1)
		}
	}
}

// TestClusterHubFails: a hub that cannot start fails the start, naming
// it and quoting its log, and the hubs already started are stopped.
func TestClusterHubFails(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, flag, want string }{
		{"first", "--fail", "hub 1"},
		{"joiner", "--fail-joiner", "hub 2"},
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
			_, err = startCluster(ctx, os.Args[0], args, 3, addr, t.TempDir(), userPermissions(0, 0))
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

// TestIdleAgainstFakeCluster runs a scenario through Run against two
// fake hubs on one port: the streams spread over both, and the run
// reports each hub's streams and memory and their sum.
func TestIdleAgainstFakeCluster(t *testing.T) {
	t.Parallel()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmp, err := Run(context.Background(), Config{
		Scenario:  "idle",
		SubURL:    "http://" + addr + "/api/events",
		HubBinary: os.Args[0],
		Hubs:      2,
		Streams:   60,
		Duration:  200 * time.Millisecond,
		Settle:    50 * time.Millisecond,
		WorkDir:   dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := cmp.Runs[0]
	if r.Target != "eventhub ×2" || r.Connected != 60 || r.Failed != 0 {
		t.Fatalf("target %q, connected %d, failed %d (%v)", r.Target, r.Connected, r.Failed, r.FailReasons)
	}
	if len(r.Hubs) != 2 || !r.Hubs[0].NATS || r.Hubs[1].NATS {
		t.Fatalf("hubs %+v, want two, the first with NATS", r.Hubs)
	}
	var streams, rss int64
	for _, h := range r.Hubs {
		streams += h.Streams
		rss += h.RSSConnected
	}
	if streams != 60 {
		t.Errorf("streams per hub %d + %d, want 60 in all", r.Hubs[0].Streams, r.Hubs[1].Streams)
	}
	// Read a moment apart, the sum and the parts differ a little.
	if r.Server == nil || r.Server.RSSConnected < rss/2 || r.Server.RSSConnected > 2*rss {
		t.Errorf("server usage %+v, want the hubs' RSS summed (%d)", r.Server, rss)
	}
	// Every hub was given the permissions of the 60 users, one a stream.
	want := fmt.Sprintf("permissions %s: 60 bench users", filepath.Join(dir, "permissions.json"))
	for i := 1; i <= 2; i++ {
		if log := tail(filepath.Join(dir, fmt.Sprintf("hub%d.log", i)), 4096); !strings.Contains(log, want) {
			t.Errorf("hub %d's log %q, want %q", i, log, want)
		}
	}
}
