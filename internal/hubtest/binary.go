package hubtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hubPackage is what Binary builds.
const hubPackage = "github.com/finexbot/eventhub/cmd/eventhub"

// built is the eventhub binary, built at most once per test binary. dir is
// removed by Main.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// Main runs a package's tests and then removes the binary Binary built, if
// it did. A package whose tests call Binary or StartBinary calls it from
// TestMain:
//
//	func TestMain(m *testing.M) { hubtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// Binary returns the path of the eventhub binary, built with `go build -o`
// the first time a test of this test binary asks for it. Under -short it
// skips the test: building takes a while.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the eventhub binary")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "eventhub-hubtest-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "eventhub")
		if out, err := exec.Command("go", "build", "-o", built.path, hubPackage).CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build %s: %v\n%s", hubPackage, err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// flag that cannot take port 0 (an address two processes must agree on).
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// Ports FreePorts picks from: below Linux's ephemeral range (32768–60999),
// so that no connection the tests open takes one as its local port between
// the pick and the hub's listen.
const (
	freePortMin = 20000
	freePortMax = 32767
)

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago, each picked at random below the ephemeral range (so tests that run
// at once rarely pick the same one) and checked by listening on it.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("no free port in %d–%d after %d tries", freePortMin, freePortMax, tries)
		}
		port := freePortMin + rand.IntN(freePortMax-freePortMin+1)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken: another
		}
		held = append(held, ln) // held until all are picked: distinct
		ports = append(ports, port)
	}
	return ports
}

// Options says how StartBinary runs the hub. The zero value runs
// `eventhub serve --listen 127.0.0.1:0`.
type Options struct {
	// Listen is the --listen address. Empty means 127.0.0.1:0: a free port,
	// which Process.Addr then tells.
	Listen string
	// Args are more flags, after `serve --listen …`.
	Args []string
	// Env is added to the hub's environment, as KEY=value. The caller's
	// EVENTHUB_ and CLERK_ variables are never passed on, so that a
	// developer's own settings do not change what a test sees.
	Env []string
}

// startTimeout bounds how long a hub may take to listen and be ready.
const startTimeout = 15 * time.Second

// stopTimeout bounds how long a hub may take to exit after SIGTERM (its
// --drain, 10s by default, and a little more).
const stopTimeout = 20 * time.Second

// logLines is how many of its last stderr lines a Process keeps.
const logLines = 200

// Process is one run of the eventhub binary. Its fields do not change once
// StartBinary or StartBinaries has returned it.
type Process struct {
	Addr      string // the address it listens on, as it logged it
	AdminAddr string // its --admin-listen address, as it logged it; empty without one

	t         testing.TB
	cmd       *exec.Cmd
	listening <-chan Listening // from its log, once it listens
	readDone  <-chan struct{}  // closed once its log is read to the end
	done      chan struct{}    // closed once the process has exited and err is set
	err       error            // how it exited

	mu  sync.Mutex // guards log, which the stderr reader appends to
	log []string
}

// StartBinary runs `eventhub serve` as opts say, and returns once the hub
// logged the address it listens on and its /readyz (on the admin listener
// when there is one) answers 200. When the test ends the process is
// killed if it still runs, and its log is shown if the test failed. The
// process gets SIGKILL if the test binary dies first (on Linux), so a test
// that times out leaves no hub behind.
func StartBinary(t testing.TB, opts Options) *Process {
	t.Helper()
	p := launch(t, opts)
	p.awaitReady()
	return p
}

// StartBinaries starts a hub for each of opts at once, then waits until
// every one is ready, as StartBinary does: hubs that are one NATS cluster
// become ready only once enough of them run.
func StartBinaries(t testing.TB, opts ...Options) []*Process {
	t.Helper()
	ps := make([]*Process, len(opts))
	for i, o := range opts {
		ps[i] = launch(t, o)
	}
	for _, p := range ps {
		p.awaitReady()
	}
	return ps
}

// launch starts the process and its log reader, and returns at once.
func launch(t testing.TB, opts Options) *Process {
	t.Helper()
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	cmd := exec.Command(Binary(t), append([]string{"serve", "--listen", listen}, opts.Args...)...)
	cmd.SysProcAttr = DieWithParent()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EVENTHUB_") && !strings.HasPrefix(kv, "CLERK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, opts.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, cmd: cmd, done: make(chan struct{})}
	p.listening, p.readDone = ReadLog(stderr, func(line string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.log = append(p.log, line)
		if len(p.log) > logLines {
			p.log = p.log[1:]
		}
	})
	go func() { // with StderrPipe, Wait only once the reads are done
		<-p.readDone
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("hub %s log:\n%s", p.Addr, p.Log())
		}
	})
	return p
}

// awaitReady waits until the hub listens and its /readyz answers 200,
// failing the test if it exits first or takes over startTimeout.
func (p *Process) awaitReady() {
	t := p.t
	t.Helper()
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case a := <-p.listening:
		p.Addr, p.AdminAddr = a.Main, a.Admin
	case <-p.done:
		t.Fatalf("hub exited before listening: %v\n%s", p.err, p.Log())
	case <-deadline.C:
		t.Fatalf("hub did not listen within %v\n%s", startTimeout, p.Log())
	}
	ready := "http://" + p.Addr + "/readyz"
	if p.AdminAddr != "" {
		ready = "http://" + p.AdminAddr + "/readyz"
	}
	client := &http.Client{Timeout: time.Second}
	if !Poll(startTimeout, func() bool {
		if p.exited() {
			return true // and fail below, at once
		}
		resp, err := client.Get(ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) || p.exited() {
		t.Fatalf("hub not ready within %v (exited: %v)\n%s", startTimeout, p.exited(), p.Log())
	}
}

// Listening is what a hub logs once it listens.
type Listening struct {
	Main  string // the --listen address
	Admin string // the --admin-listen address; empty without one
}

// ReadLog reads a hub's JSON log from r until EOF, gives each line to keep
// (nil: none), and sends the addresses on listening (capacity 1) once the
// hub logs that it listens. done is closed once r is read to its end. It
// serves a hub run in the test's own process (cmd/eventhub's run writes
// its log to a pipe) as well as StartBinary's.
func ReadLog(r io.Reader, keep func(line string)) (listening <-chan Listening, done <-chan struct{}) {
	ch := make(chan Listening, 1) // the hub listens once, maybe after the test gave up
	finished := make(chan struct{})
	go func() { // ends at EOF, when the hub exits or its log is closed
		defer close(finished)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		admin := ""
		for sc.Scan() {
			if keep != nil {
				keep(sc.Text())
			}
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line.Msg {
			case "eventhub admin listening": // logged before the main one
				admin = line.Addr
			case "eventhub listening":
				select {
				case ch <- Listening{Main: line.Addr, Admin: admin}:
				default: // it said so before: the first one counts
				}
			}
		}
		// A line too long for the scanner ends the scan: read the rest, so
		// that the hub never blocks writing its log.
		io.Copy(io.Discard, r)
	}()
	return ch, finished
}

// URL is the hub's URL for path, e.g. p.URL("/api/events").
func (p *Process) URL(path string) string { return "http://" + p.Addr + path }

// Log returns the last lines the hub wrote to stderr (its JSON log).
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits for the hub to exit, failing the test unless
// it exits with status 0 within 20s.
func (p *Process) Stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Fatalf("hub exit: %v\n%s", p.err, p.Log())
		}
	case <-time.After(stopTimeout):
		p.t.Fatalf("hub did not exit within %v of SIGTERM\n%s", stopTimeout, p.Log())
	}
}

// Kill kills the hub, as a crash would, and waits for it to be gone. It
// does nothing if the hub has exited already.
func (p *Process) Kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}
