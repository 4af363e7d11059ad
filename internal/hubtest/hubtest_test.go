package hubtest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestDecoder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []Frame
		err      error // after the frames
	}{
		{"hub frames", "retry: 3000\n\n:ping\n\nid: 7\nevent: job\ndata: {\"a\":1}\n\n",
			[]Frame{{Retry: "3000"}, {Comment: "ping"}, {ID: "7", Event: "job", Data: `{"a":1}`}}, io.EOF},
		{"blank lines between frames", "\n\nid: 1\nevent: job\ndata: x\n\n\n", []Frame{{ID: "1", Event: "job", Data: "x"}}, io.EOF},
		{"data lines joined", "data: a\ndata:b\n\n", []Frame{{Data: "a\nb"}}, io.EOF},
		{"cut short", "id: 1\nevent: job\n", nil, io.EOF},
		{"CR", "id: 1\r\n\r\n", nil, ErrUnexpectedLine},
		{"unknown field", "id: 1\nfoo: bar\n\n", nil, ErrUnexpectedLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(strings.NewReader(tc.in))
			for i, want := range tc.want {
				got, err := d.Next()
				if err != nil || got != want {
					t.Fatalf("frame %d = %+v, %v; want %+v", i, got, err, want)
				}
			}
			if f, err := d.Next(); !errors.Is(err, tc.err) {
				t.Errorf("after the frames: %+v, %v; want %v", f, err, tc.err)
			}
		})
	}
}

func TestSample(t *testing.T) {
	t.Parallel()
	const page = `# HELP eventhub_streams_active Streams open.
# TYPE eventhub_streams_active gauge
eventhub_streams_active 3
eventhub_streams_closed_total{reason="slow"} 2
eventhub_streams_closed_total{reason="client_gone"} 5
eventhub_jobs_total{result="completed",type="growth"} 4
eventhub_jobs_total{result="completed",type="matrix"} 1
odd_total{path="a \"b\", c\\d"} 1.5e+06
eventhub_delivery_latency_seconds_bucket{le="+Inf"} 9
`
	for _, tc := range []struct {
		selector string
		want     float64
		err      string
	}{
		{"eventhub_streams_active", 3, ""},
		{`eventhub_streams_closed_total{reason="slow"}`, 2, ""},
		{`eventhub_jobs_total{type="growth", result="completed"}`, 4, ""},
		{`eventhub_jobs_total{type="matrix"}`, 1, ""},
		{`odd_total{path="a \"b\", c\\d"}`, 1.5e6, ""},
		{`eventhub_delivery_latency_seconds_bucket{le="+Inf"}`, 9, ""},
		{"eventhub_streams_closed_total", 0, "matches 2 series"},
		{`eventhub_streams_closed_total{reason="shutdown"}`, 0, "no series"},
		{"eventhub_streams", 0, "no series"},
		{`eventhub_jobs_total{type="growth"`, 0, "closing brace"},
	} {
		got, err := Sample(page, tc.selector)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s = %v, %v; want %v", tc.selector, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s = %v, %v; want an error with %q", tc.selector, got, err, tc.err)
		}
	}
}

func TestPoll(t *testing.T) {
	t.Parallel()
	n := 0
	if !Poll(time.Second, func() bool { n++; return n == 5 }) || n != 5 {
		t.Errorf("Poll returned after %d looks, want 5", n)
	}
	start := time.Now()
	if Poll(50*time.Millisecond, func() bool { return false }) {
		t.Error("Poll of a condition that never holds returned true")
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("Poll gave up after %v, want about 50ms", d)
	}
}

// TestStartBinary runs the real hub: ready, a stream, an event on it, a
// metric, and a clean stop whose last frame is a retry hint.
func TestStartBinary(t *testing.T) {
	p := StartBinary(t, Options{Args: []string{"--drain", "1s"}})
	s := OpenStream(t, p.Addr, "/api/events", "Authorization", "Bearer dev:ops")
	if _, status, body := DialStream(t, nil, p.Addr, "/api/events"); status != 401 {
		t.Errorf("a stream without a token: %d %s, want 401", status, body)
	}
	WaitFor(t, "the stream counted", 5*time.Second, func() bool {
		return Metric(t, p.URL("/metrics"), "eventhub_streams_active") == 1
	})
	event := JobEvent("growth", "j1", "queued", "a1", "", time.Now())
	if resp, body := Request(t, "POST", p.URL("/api/events"), "dev-publish-key", []byte(event)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish: %s %s", resp.Status, body)
	}
	if f := s.NextEvent(t, 5*time.Second); f.Event != "job" || !strings.Contains(f.Data, `"jobId":"j1"`) || f.ID == "" {
		t.Errorf("event %+v, want job j1 with an id", f)
	}
	p.Stop()
	rest := s.Rest(t, 5*time.Second)
	var last Frame
	if len(rest) > 0 {
		last = rest[len(rest)-1]
	}
	if last.Retry == "" {
		t.Errorf("last frame %+v, want a retry hint", last)
	}
	if !strings.Contains(p.Log(), fmt.Sprintf("%q", p.Addr)) {
		t.Errorf("the log does not name the address %s:\n%s", p.Addr, p.Log())
	}
}

// toolTB records how Tool ended a test: a skip or a failure, with its line.
type toolTB struct {
	testing.TB
	ended, msg string
}

func (tb *toolTB) Helper() {}
func (tb *toolTB) Skip(args ...any) {
	tb.ended, tb.msg = "skip", fmt.Sprint(args...)
	runtime.Goexit()
}
func (tb *toolTB) Fatal(args ...any) {
	tb.ended, tb.msg = "fatal", fmt.Sprint(args...)
	runtime.Goexit()
}

// callTool runs Tool(tb, name) on a goroutine of its own, as Skip and
// Fatal end it, and returns what it found and how it ended.
func callTool(t *testing.T, name string) (path string, tb *toolTB) {
	tb = &toolTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		path = Tool(tb, name)
	}()
	<-done
	return path, tb
}

// TestTool: a tool on PATH is found, and its variable wins over PATH; a
// missing one skips with one line naming it and how to get it, except in
// CI, where it fails.
func TestTool(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "nginx")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("CI", "")
	if got, tb := callTool(t, "nginx"); got != fake || tb.ended != "" {
		t.Errorf("nginx on PATH: %q, %s %s; want %q", got, tb.ended, tb.msg, fake)
	}
	t.Setenv("EVENTHUB_CHROMIUM", "/opt/my-chromium")
	if got, tb := callTool(t, "chromium"); got != "/opt/my-chromium" || tb.ended != "" {
		t.Errorf("EVENTHUB_CHROMIUM: %q, %s %s", got, tb.ended, tb.msg)
	}
	t.Setenv("EVENTHUB_CHROMIUM", "")
	for _, ci := range []string{"", "false", "0", "true", "1"} {
		t.Setenv("CI", ci)
		want := "skip"
		if InCI() {
			want = "fatal"
		}
		_, tb := callTool(t, "node")
		if tb.ended != want {
			t.Errorf("CI=%q, node missing: %s, want %s", ci, tb.ended, want)
		}
		if !strings.HasPrefix(tb.msg, "node not found: install Node.js") || strings.Contains(tb.msg, "\n") {
			t.Errorf("CI=%q: %q, want one line naming node and how to get it", ci, tb.msg)
		}
	}
	if !InCI() {
		t.Error(`InCI with CI=1: false`)
	}
}
