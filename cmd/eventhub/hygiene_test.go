package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// TestAdminShowsNoSecret: a publish key given on the command line is on no
// admin page: /debug/pprof/cmdline is gone, and neither /metrics nor the
// pprof index holds it. The admin server runs with timeouts, and a profile
// longer than it allows is refused up front.
func TestAdminShowsNoSecret(t *testing.T) {
	const key = "cmdline-secret-publish-key-31337"
	h := hubtest.StartBinary(t, hubtest.Options{Args: []string{"--publish-key", key, "--admin-listen", "127.0.0.1:0"}})
	get := func(url string) (int, string) {
		t.Helper()
		resp, body := hubtest.Request(t, http.MethodGet, url, "", nil)
		return resp.StatusCode, body
	}
	admin := "http://" + h.AdminAddr
	if status, _ := get(admin + "/debug/pprof/cmdline"); status != 404 {
		t.Errorf("/debug/pprof/cmdline: %d, want 404", status)
	}
	for _, page := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/goroutine?debug=2", "/healthz", "/readyz"} {
		status, body := get(admin + page)
		if status != 200 {
			t.Errorf("%s: %d", page, status)
		}
		if strings.Contains(body, key) {
			t.Errorf("%s shows the publish key", page)
		}
	}
	if status, body := get(admin + "/debug/pprof/profile?seconds=3600"); status != 400 {
		t.Errorf("an hour-long profile: %d %s, want 400", status, body)
	}
	if status, _ := get(admin + "/debug/pprof/trace?seconds=0.05"); status != 200 {
		t.Errorf("a short trace: %d", status)
	}
	if strings.Contains(h.Log(), key) {
		t.Error("the log shows the publish key")
	}
}

// TestPublishKeyFromFile: the key may come from a file, so that it is not
// on the command line; giving it twice is refused.
func TestPublishKeyFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, stop := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--publish-key-file", file}, nil)
	if got := post(t, "http://"+addr+"/api/events", "from-a-file", oneEvent); got != 202 {
		t.Errorf("the key from the file: %d, want 202", got)
	}
	if got := post(t, "http://"+addr+"/api/events", "from-a-fil", oneEvent); got != 401 {
		t.Errorf("a prefix of the key: %d, want 401", got)
	}
	if got := post(t, "http://"+addr+"/api/events", "dev-publish-key", oneEvent); got != 401 {
		t.Errorf("the dev default beside a key file: %d, want 401", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestEmbeddedNATSNeedsCredentials: with a token, the embedded NATS server
// refuses a client without it, so a raw PUB on the event subject cannot
// reach users; the hub (and a second hub given the token) work as before.
func TestEmbeddedNATSNeedsCredentials(t *testing.T) {
	const token = "nats-secret-token-4242"
	natsAddr := fmt.Sprintf("127.0.0.1:%d", hubtest.FreePort(t))
	env := map[string]string{"EVENTHUB_NATS_TOKEN": token}
	a, stopA := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--nats-embed", natsAddr, "--nats-store", t.TempDir()}, env)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, stopB := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--nats", "nats://" + natsAddr, "--nats-token-file", tokenFile}, nil)
	s := hubtest.OpenStream(t, a, "/api/events", "Authorization", "Bearer dev:ops")

	// A raw client: without the token, or with another, it cannot connect,
	// so it cannot publish an event past the publish key.
	for name, opts := range map[string][]nats.Option{
		"no credentials": nil,
		"a wrong token":  {nats.Token("guess")},
		"a user":         {nats.UserInfo("eventhub", token)},
	} {
		nc, err := nats.Connect("nats://"+natsAddr, opts...)
		if err == nil {
			nc.Publish("eventhub.events.growth", []byte(strings.Replace(oneEvent, `"j1"`, `"raw"`, 1)))
			nc.Flush()
			nc.Close()
			t.Errorf("a NATS client with %s connected and published", name)
		}
	}
	// The hubs, with the token, work: an event published on b reaches a
	// stream on a, and it is the first one (the raw PUB never arrived).
	if got := post(t, "http://"+b+"/api/events", "dev-publish-key", oneEvent); got != 202 {
		t.Fatalf("publish on the joined hub: %d", got)
	}
	if f := s.NextEvent(t, 10*time.Second); !strings.Contains(f.Data, `"jobId":"j1"`) {
		t.Fatalf("stream got %+v, want j1", f)
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
}

// startLimited runs the hub binary with an open-file limit of files (soft
// and hard, set by util-linux's prlimit) and returns its address.
func startLimited(t *testing.T, files int, args ...string) string {
	t.Helper()
	prlimit := hubtest.Tool(t, "prlimit")
	bin := hubtest.Binary(t)
	cmd := exec.Command(prlimit, fmt.Sprintf("--nofile=%d:%d", files, files), bin, "serve", "--listen", "127.0.0.1:0")
	cmd.Args = append(cmd.Args, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = hubtest.DieWithParent()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []string
	listening, logDone := hubtest.ReadLog(stderr, func(line string) { mu.Lock(); log = append(log, line); mu.Unlock() })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-logDone
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("hub log:\n%s", strings.Join(log, "\n"))
			mu.Unlock()
		}
	})
	select {
	case l := <-listening:
		return l.Main
	case <-logDone:
		t.Fatal("the hub exited before listening")
	case <-time.After(15 * time.Second):
		t.Fatal("the hub did not listen within 15s")
	}
	return ""
}

// TestDescriptorReserve: a hub whose open-file limit is held by
// idle streams (as many as --max-streams lets it take) and by connections
// that send nothing still takes a publish (202), answers a stream over the
// limit with a clean 429, and opens a stream once one is free.
func TestDescriptorReserve(t *testing.T) {
	const files = 256
	addr := startLimited(t, files, "--max-streams-per-user", "0")
	maxStreams := files - fileReserve

	var streams []*hubtest.Stream
	for i := range maxStreams {
		s, status, body := hubtest.DialStream(t, nil, addr, "/api/events", "Authorization", "Bearer dev:ops")
		if status != 200 {
			t.Fatalf("stream %d of %d: %d %s", i+1, maxStreams, status, body)
		}
		streams = append(streams, s)
	}
	// Connections that send nothing, more than the descriptors left.
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range files {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}

	publish := func() int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/events", strings.NewReader(oneEvent))
		req.Header.Set("Authorization", "Bearer dev-publish-key")
		req.Close = true
		client := &http.Client{Timeout: 3 * time.Second}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The idle connections are evicted once idle a second; a publisher
	// that came in the same instant gets 503 and tries again.
	hubtest.WaitFor(t, "a publish to get 202", 10*time.Second, func() bool { return publish() == 202 })
	if f := streams[0].NextEvent(t, 5*time.Second); !strings.Contains(f.Data, `"jobId":"j1"`) {
		t.Fatalf("stream got %+v", f)
	}
	tryStream := func() int {
		s, status, _ := hubtest.DialStream(t, nil, addr, "/api/events", "Authorization", "Bearer dev:ops")
		if s != nil {
			streams = append(streams, s)
		}
		return status
	}
	hubtest.WaitFor(t, "a stream over --max-streams to get a clean 429", 10*time.Second, func() bool { return tryStream() == 429 })
	streams[1].Conn.Close()
	hubtest.WaitFor(t, "a stream to open once one is free", 10*time.Second, func() bool { return tryStream() == 200 })
	hubtest.WaitFor(t, "healthz to answer 200", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
