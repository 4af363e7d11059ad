package sock

import (
	"bytes"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// hangUps records what a Watcher reports, for a test to wait on.
type hangUps struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func newHangUps() *hangUps { return &hangUps{ch: make(chan string, 16)} }

func (h *hangUps) report(v string) {
	h.mu.Lock()
	h.got = append(h.got, v)
	h.mu.Unlock()
	h.ch <- v
}

// startWatcher is a Watcher whose reports go to a hangUps, stopped at the
// end of the test. It skips the test where a Watcher cannot watch sockets.
func startWatcher(t *testing.T) (*Watcher[string], *hangUps) {
	t.Helper()
	h := newHangUps()
	w, err := NewWatcher(h.report)
	if err != nil {
		t.Fatal(err)
	}
	server, _ := hubtest.TCPPair(t)
	probe := Wrap(server)
	if !w.Watch(&probe, "probe") {
		w.Stop()
		if runtime.GOOS == "linux" {
			t.Fatal("a Watcher on Linux did not watch a TCP socket")
		}
		t.Skipf("no socket watching on %s: connections have reader goroutines", runtime.GOOS)
	}
	w.Unwatch(&probe)
	t.Cleanup(w.Stop)
	return w, h
}

// TestWatcherHangUp: a client that sends bytes is not reported (they are
// read and dropped, more than one drain reads at once); a client that
// closes is reported at once, as what it was watched with.
func TestWatcherHangUp(t *testing.T) {
	w, h := startWatcher(t)
	server, client := hubtest.TCPPair(t)
	c := Wrap(server)
	if !w.Watch(&c, "s1") {
		t.Fatal("Watch of a TCP socket reported false")
	}
	if _, err := client.Write(bytes.Repeat([]byte("x"), 64<<10)); err != nil {
		t.Fatal(err)
	}
	// The connection still works both ways, and nothing was reported.
	msg := net.Buffers{[]byte("still here")}
	if err := c.Write(&msg, waitTimeout); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	client.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := client.Read(buf); err != nil || string(buf) != "still here" {
		t.Fatalf("client read %q, %v after chatter", buf, err)
	}
	select {
	case v := <-h.ch:
		t.Fatalf("%s reported as hung up after it only sent bytes", v)
	case <-time.After(50 * time.Millisecond):
	}

	client.Close()
	select {
	case v := <-h.ch:
		if v != "s1" {
			t.Fatalf("hang-up reported as %q, want s1", v)
		}
	case <-time.After(waitTimeout):
		t.Fatal("a client that closed was not reported")
	}
	if !w.Unwatch(&c) || w.Unwatch(&c) {
		t.Fatal("Unwatch: want true once, then false")
	}
	c.Close()
}

// TestWatcherUnwatched: after Unwatch, a hang-up is not reported, and a
// connection that is not a socket is not watched (its owner reads it).
func TestWatcherUnwatched(t *testing.T) {
	w, h := startWatcher(t)
	server, client := hubtest.TCPPair(t)
	c := Wrap(server)
	if !w.Watch(&c, "s1") {
		t.Fatal("Watch of a TCP socket reported false")
	}
	w.Unwatch(&c)
	c.Close()
	client.Close()

	p1, p2 := net.Pipe()
	t.Cleanup(func() { p1.Close(); p2.Close() })
	pc := Wrap(p1)
	if w.Watch(&pc, "pipe") {
		t.Fatal("Watch of a pipe reported true: it has no descriptor to watch")
	}
	if w.Unwatch(&pc) {
		t.Fatal("Unwatch of a connection never watched reported true")
	}
	select {
	case v := <-h.ch:
		t.Fatalf("%s reported after Unwatch", v)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestWatcherStop: Stop ends the Watcher's goroutine and releases its
// descriptors; a nil Watcher watches nothing and stops as a no-op.
func TestWatcherStop(t *testing.T) {
	before := runtime.NumGoroutine()
	w, err := NewWatcher(func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	server, client := hubtest.TCPPair(t)
	c := Wrap(server)
	w.Watch(&c, "s1")
	client.Close()
	c.Close()
	w.Unwatch(&c)
	w.Stop()
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Stop, %d before NewWatcher", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}

	var none *Watcher[string]
	if none.Watch(&c, "s1") || none.Unwatch(&c) {
		t.Fatal("a nil Watcher watched")
	}
	none.Stop()
}
