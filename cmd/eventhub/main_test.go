package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/disklog"
	"github.com/finexbot/eventhub/internal/hubtest"
)

// startRun runs the program in process with args and env, and returns the
// address it listens on once it logs it.
func startRun(t *testing.T, args []string, env map[string]string) (addr string, stop func() error) {
	t.Helper()
	addr, _, stop = startRunAdmin(t, args, env)
	return addr, stop
}

// startRunAdmin is startRun that also returns the admin listener's address
// (empty without --admin-listen).
func startRunAdmin(t *testing.T, args []string, env map[string]string) (addr, adminAddr string, stop func() error) {
	t.Helper()
	r := launchRun(t, args, env, nil)
	l := r.waitListening(t, 10*time.Second)
	return l.Main, l.Admin, r.stop
}

// runningHub is the program run in process by launchRun.
type runningHub struct {
	t         *testing.T
	cancel    context.CancelFunc
	listening <-chan hubtest.Listening
	done      chan error // run's result
	stopped   bool
}

// launchRun starts the program in process with args and env, its log lines
// given to keep (nil: none), and returns at once: hubs that wait for each
// other (the nodes of a NATS cluster) start together. It is stopped at
// cleanup.
func launchRun(t *testing.T, args []string, env map[string]string, keep func(line string)) *runningHub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &runningHub{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, args, func(k string) string { return env[k] }, io.Discard, pw)
		pw.CloseWithError(io.EOF)
		r.done <- err
	}()
	r.listening, _ = hubtest.ReadLog(pr, keep)
	t.Cleanup(func() { r.stop() })
	return r
}

// waitListening returns the hub's addresses once it listens, and fails the
// test if it ends first or does not listen within d.
func (r *runningHub) waitListening(t *testing.T, d time.Duration) hubtest.Listening {
	t.Helper()
	select {
	case l := <-r.listening:
		return l
	case err := <-r.done:
		r.stopped = true
		r.cancel()
		t.Fatalf("run ended before listening: %v", err)
	case <-time.After(d):
		r.cancel()
		t.Fatalf("run did not listen within %v", d)
	}
	return hubtest.Listening{}
}

// stop cancels the run and returns its result; once stopped, nil.
func (r *runningHub) stop() error {
	if r.stopped {
		return nil
	}
	r.stopped = true
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(15 * time.Second):
		r.t.Fatal("run did not return within 15s of cancel")
		return nil
	}
}

// post publishes body to url with the key auth and returns the status.
func post(t *testing.T, url, auth, body string) int {
	t.Helper()
	resp, _ := hubtest.Request(t, http.MethodPost, url, auth, []byte(body))
	return resp.StatusCode
}

const oneEvent = `{"type":"growth","jobId":"j1","status":"queued","timestamp":"2026-11-27T10:00:00Z","data":{"assetId":"a1"}}`

func TestServeDefaultsAndEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		goodKey   string
		rejectKey string
	}{
		{"defaults", []string{"serve", "--listen", "127.0.0.1:0"}, nil, "dev-publish-key", "other"},
		{"key from environment", []string{"serve", "--listen", "127.0.0.1:0"},
			map[string]string{"EVENTHUB_PUBLISH_KEY": "from-env"}, "from-env", "dev-publish-key"},
		{"flag beats environment", []string{"serve", "--listen", "127.0.0.1:0", "--publish-key", "from-flag"},
			map[string]string{"EVENTHUB_PUBLISH_KEY": "from-env"}, "from-flag", "from-env"},
		{"listen from environment", []string{"serve"},
			map[string]string{"EVENTHUB_LISTEN": "127.0.0.1:0"}, "dev-publish-key", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, stop := startRun(t, tc.args, tc.env)
			if resp, _ := hubtest.Request(t, http.MethodGet, "http://"+addr+"/healthz", "", nil); resp.StatusCode != 200 {
				t.Fatalf("healthz: %d", resp.StatusCode)
			}
			if got := post(t, "http://"+addr+"/api/events", tc.goodKey, oneEvent); got != 202 {
				t.Errorf("publish with %q: %d, want 202", tc.goodKey, got)
			}
			if tc.rejectKey != "" {
				if got := post(t, "http://"+addr+"/api/events", tc.rejectKey, oneEvent); got != 401 {
					t.Errorf("publish with %q: %d, want 401", tc.rejectKey, got)
				}
			}
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
		})
	}
}

func TestServeRefusesBadConfiguration(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A data dir another hub holds, and one with a segment of a newer
	// format.
	locked := t.TempDir()
	holder, err := disklog.Open(disklog.Config{Dir: locked})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	newer, newerSegment := newerVersionDataDir(t)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, nil, "unknown command"},
		{"dev auth off loopback", []string{"serve", "--listen", "0.0.0.0:8080"}, nil, "loopback"},
		{"unknown auth", []string{"serve", "--auth", "ldap"}, nil, "want dev or clerk"},
		{"bad duration in env", []string{"serve"}, map[string]string{"EVENTHUB_HEARTBEAT": "soon"}, "EVENTHUB_HEARTBEAT"},
		{"bad mailbox", []string{"serve", "--mailbox", "0"}, nil, "mailbox"},
		{"missing permissions file", []string{"serve", "--permissions", "/nonexistent.json"}, nil, "permissions"},
		{"unknown flag", []string{"serve", "--colour"}, nil, "colour"},
		{"clerk without keys", []string{"serve", "--auth", "clerk", "--publish-key", "k"}, nil, "CLERK_JWT_KEY"},
		{"clerk without publish key", []string{"serve", "--auth", "clerk"}, map[string]string{"CLERK_SECRET_KEY": "sk_test_1"}, "publish-key"},
		{"clerk with a bad key", []string{"serve", "--auth", "clerk", "--publish-key", "k"}, map[string]string{"CLERK_JWT_KEY": "not a pem"}, "CLERK_JWT_KEY"},
		{"clerk permissions without secret", []string{"serve", "--permissions", "clerk"}, nil, "CLERK_SECRET_KEY"},
		{"bad permissions url", []string{"serve", "--permissions", "http://"}, nil, "permissions url"},
		{"history file, retired", []string{"serve", "--history-file", "h.jsonl"}, nil, "--history-file is replaced by --data-dir DIR, which also survives a crash"},
		{"data dir in a cluster", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--data-dir", "/tmp/x"}, nil, "--data-dir keeps a single node's event log on disk"},
		{"data dir with an embedded nats", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--data-dir", "/tmp/x"}, nil, "--data-dir keeps a single node's event log on disk"},
		{"sync without a data dir", []string{"serve", "--sync", "always"}, nil, "--sync is for the event log on disk: it needs --data-dir"},
		{"sync from the environment without a data dir", []string{"serve"}, map[string]string{"EVENTHUB_SYNC": "batch"}, "--sync is for the event log on disk"},
		{"unknown sync", []string{"serve", "--data-dir", "/tmp/x", "--sync", "sometimes"}, nil, `--sync "sometimes": want batch or always`},
		{"data retention without a data dir", []string{"serve", "--data-max-age", "1h"}, nil, "--data-max-age is for the event log on disk"},
		{"no data retention", []string{"serve", "--data-dir", "/tmp/x", "--data-max-bytes", "0"}, nil, "must be positive"},
		{"data dir not writable", []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(empty, "data")}, nil, "data dir"},
		{"data dir held by another hub", []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", locked}, nil, "data dir in use by another eventhub: " + filepath.Join(locked, "LOCK") + " is held by pid"},
		{"data dir of a newer format", []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", newer}, nil, newerSegment + " is format version 2"},
		{"no jobs", []string{"serve", "--jobs", "0"}, nil, "--jobs 0: must be positive"},
		{"nats store without an embedded server", []string{"serve", "--nats-store", "/tmp/x"}, nil, "--nats-embed"},
		{"reuse-port without a shared log", []string{"serve", "--reuse-port"}, nil, "--reuse-port"},
		{"embedded nats beyond loopback without credentials", []string{"serve", "--nats-embed", "0.0.0.0:4222"}, nil, "credentials"},
		{"embedded nats on every address without credentials", []string{"serve", "--nats-embed", ":4222"}, nil, "credentials"},
		{"publish key twice", []string{"serve", "--publish-key", "k", "--publish-key-file", empty}, nil, "once"},
		{"empty publish key file", []string{"serve", "--publish-key-file", empty}, nil, "empty"},
		{"missing publish key file", []string{"serve", "--publish-key-file", "/nonexistent/key"}, nil, "--publish-key-file"},
		{"nats user without a password", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-user", "hub"}, nil, "password"},
		{"nats password without a user", []string{"serve", "--nats", "nats://127.0.0.1:4222"}, map[string]string{"EVENTHUB_NATS_PASSWORD": "p"}, "--nats-user"},
		{"nats token and user", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-user", "hub"},
			map[string]string{"EVENTHUB_NATS_PASSWORD": "p", "EVENTHUB_NATS_TOKEN": "t"}, "not both"},
		{"nats credentials without nats", []string{"serve"}, map[string]string{"EVENTHUB_NATS_TOKEN": "t"}, "--nats"},
		{"negative per-address cap", []string{"serve", "--max-conns-per-ip", "-1"}, nil, "--max-conns-per-ip"},
		{"bad size in env", []string{"serve"}, map[string]string{"EVENTHUB_HISTORY_BYTES": "lots"}, "EVENTHUB_HISTORY_BYTES"},
		{"no mailbox bytes", []string{"serve", "--mailbox-bytes", "0"}, nil, "--mailbox-bytes"},
		{"no backfills", []string{"serve", "--max-backfills", "0"}, nil, "--max-backfills"},
		{"no nats replicas", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-replicas", "0"}, nil, "--nats-replicas 0: JetStream keeps 1 to 5"},
		{"more nats replicas than JetStream keeps", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-replicas", "6"}, nil, "--nats-replicas 6: JetStream keeps 1 to 5"},
		{"nats replicas on a single node", []string{"serve", "--nats-replicas", "3"}, nil, "--nats-replicas 3 needs a NATS cluster"},
		{"nats replicas on a single embedded server", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-replicas", "3"}, nil, "--nats-replicas 3 needs a NATS cluster"},
		{"nats replicas from the environment", []string{"serve"}, map[string]string{"EVENTHUB_NATS_REPLICAS": "2"}, "--nats-replicas 2 needs a NATS cluster"},
		{"no nats start timeout", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-start-timeout", "0s"}, nil, "--nats-start-timeout"},
		{"a job lease under a second", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--job-lease", "500ms"}, nil, "--job-lease"},
		{"nats cluster without an embedded server", []string{"serve", "--nats-cluster", "127.0.0.1:6222", "--nats-store", "/tmp/x"}, nil, "--nats-embed"},
		{"nats cluster without a store", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-cluster", "127.0.0.1:6222"}, nil, "--nats-cluster needs --nats-store"},
		{"nats routes without a cluster", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-routes", "nats-route://127.0.0.1:6223"}, nil, "--nats-routes are the other nodes of an embedded cluster: it needs --nats-cluster"},
		{"nats cluster beyond loopback without route credentials", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x",
			"--nats-cluster", "0.0.0.0:6222"}, nil, "it needs route credentials"},
		{"nats cluster on every address without route credentials", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x",
			"--nats-cluster", ":6222"}, nil, "it needs route credentials"},
		{"nats cluster without routes", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "127.0.0.1:6222"}, nil, "--nats-cluster needs --nats-routes"},
		{"nats cluster on a random port", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "127.0.0.1:0"}, nil, "fixed port"},
		{"nats cluster not host:port", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "6222"}, nil, "want host:port"},
		{"nats route not a route URL", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "127.0.0.1:6222",
			"--nats-routes", "nats://127.0.0.1:6223"}, nil, "is not nats-route://host:port"},
		{"nats route with credentials", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "127.0.0.1:6222",
			"--nats-routes", "nats-route://hub:pw@127.0.0.1:6223"}, nil, "a route URL holds no credentials"},
		{"nats cluster user without a password", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "127.0.0.1:6222",
			"--nats-cluster-user", "hub"}, nil, "--nats-cluster-user needs a password"},
		{"nats route password without a user", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "127.0.0.1:6222"},
			map[string]string{"EVENTHUB_NATS_CLUSTER_PASSWORD": "p"}, "a NATS route password needs --nats-cluster-user"},
		{"empty nats route password file", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-store", "/tmp/x", "--nats-cluster", "127.0.0.1:6222",
			"--nats-cluster-user", "hub", "--nats-cluster-password-file", empty}, nil, "--nats-cluster-password-file"},
		{"nats route credentials without a cluster", []string{"serve", "--nats-embed", "127.0.0.1:4222", "--nats-cluster-user", "hub"},
			map[string]string{"EVENTHUB_NATS_CLUSTER_PASSWORD": "p"}, "they need --nats-cluster"},
		{"nats name without an embedded server", []string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-name", "n1"}, nil, "--nats-name names the embedded NATS server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &out, &out)
			if err == nil || !strings.Contains(err.Error()+out.String(), tc.want) {
				t.Fatalf("err %v (output %q), want one mentioning %q", err, out.String(), tc.want)
			}
		})
	}
}

// newerVersionDataDir returns a data dir holding a segment whose header
// says format version 2, and that segment's path.
func newerVersionDataDir(t *testing.T) (dir, segment string) {
	t.Helper()
	dir = t.TempDir()
	segment = filepath.Join(dir, "00000000000000000001.seg")
	header := append([]byte("EVHUBSEG"), 2, 0, 0, 0) // magic, version 2 (little-endian)
	if err := os.WriteFile(segment, append(header, make([]byte, 52)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, segment
}

// TestSIGTERMExitsZero runs the real binary, opens a stream, and sends
// SIGTERM: the stream gets a final retry hint and the process exits 0.
func TestSIGTERMExitsZero(t *testing.T) {
	h := hubtest.StartBinary(t, hubtest.Options{Args: []string{"--demo"}})
	s := hubtest.OpenStream(t, h.Addr, "/api/events", "Authorization", "Bearer dev:ops")
	// Wait for the demo's first event, so the stream is surely live.
	if f := s.NextEvent(t, 15*time.Second); f.Event != "job" {
		t.Fatalf("first event %+v, want a job", f)
	}
	h.Stop() // fails unless it exits 0
	retry := false
	for _, f := range s.Rest(t, 5*time.Second) {
		retry = retry || f.Retry != ""
	}
	if !retry {
		t.Error("stream ended without a retry hint")
	}
}

// TestServeWithClerkAuth: with --auth clerk the hub verifies session tokens
// with CLERK_JWT_KEY and refuses development tokens.
func TestServeWithClerkAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	addr, stop := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--auth", "clerk", "--publish-key", "secret"},
		map[string]string{"CLERK_JWT_KEY": pemKey})
	resp, body := hubtest.Request(t, http.MethodGet, "http://"+addr+"/api/events", "dev:alice", nil)
	if resp.StatusCode != 401 || !strings.Contains(body, "malformed") {
		t.Fatalf("dev token under clerk auth: %d %s", resp.StatusCode, body)
	}
	if got := post(t, "http://"+addr+"/api/events", "secret", oneEvent); got != 202 {
		t.Errorf("publish with the key: %d", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestAdminListener: with --admin-listen, /metrics and pprof are served
// there and not on the public listener; without it, /metrics stays public
// and pprof is off.
func TestAdminListener(t *testing.T) {
	status := func(url string) int {
		t.Helper()
		resp, _ := hubtest.Request(t, http.MethodGet, url, "", nil)
		return resp.StatusCode
	}
	addr, admin, stop := startRunAdmin(t, []string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, nil)
	if admin == "" {
		t.Fatal("no admin listener logged")
	}
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"http://" + admin + "/metrics", 200},
		{"http://" + admin + "/debug/pprof/", 200},
		{"http://" + admin + "/healthz", 200},
		{"http://" + admin + "/readyz", 200},
		{"http://" + addr + "/metrics", 404},
		{"http://" + addr + "/debug/pprof/", 404},
		{"http://" + addr + "/healthz", 200},
	} {
		if got := status(tc.url); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.url, got, tc.want)
		}
	}
	if body := hubtest.Scrape(t, "http://"+admin+"/metrics"); !strings.Contains(body, "eventhub_build_info{go=") || !strings.Contains(body, "eventhub_jobs_total") {
		t.Errorf("admin /metrics lacks eventhub_build_info or the job metrics")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	addr, admin, stop = startRunAdmin(t, []string{"serve", "--listen", "127.0.0.1:0"}, nil)
	if admin != "" {
		t.Errorf("an admin listener without --admin-listen: %s", admin)
	}
	if got := status("http://" + addr + "/metrics"); got != 200 {
		t.Errorf("public /metrics without an admin listener: %d", got)
	}
	if got := status("http://" + addr + "/debug/pprof/"); got != 404 {
		t.Errorf("pprof without an admin listener: %d", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestServeCluster: one hub embeds NATS, another joins it with --nats, and
// both share one port with --reuse-port; an event published on either
// reaches a stream on the other.
func TestServeCluster(t *testing.T) {
	ports := hubtest.FreePorts(t, 2)
	natsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	port := strconv.Itoa(ports[1])
	a, stopA := startRun(t, []string{"serve", "--listen", "127.0.0.1:" + port, "--reuse-port",
		"--nats-embed", natsAddr, "--nats-store", t.TempDir()}, nil)
	b, stopB := startRun(t, []string{"serve", "--listen", "127.0.0.1:" + port, "--reuse-port",
		"--nats", "nats://" + natsAddr}, nil)
	if a != b {
		t.Fatalf("hubs on %s and %s, want one shared port", a, b)
	}
	// Streams land on either process; each sees every event once.
	var streams []*hubtest.Stream
	for range 4 {
		streams = append(streams, hubtest.OpenStream(t, a, "/api/events", "Authorization", "Bearer dev:ops"))
	}
	if got := post(t, "http://"+a+"/api/events", "dev-publish-key", oneEvent); got != 202 {
		t.Fatalf("publish: %d", got)
	}
	for i, s := range streams {
		if f := s.NextEvent(t, 10*time.Second); !strings.Contains(f.Data, `"jobId":"j1"`) {
			t.Fatalf("stream %d got %+v", i, f)
		}
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
}
