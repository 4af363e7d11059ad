package natsjs_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/eventlog/logtest"
	"github.com/finexbot/eventhub/internal/natsjs"
	"github.com/finexbot/eventhub/jobs"
)

// startNATS runs an embedded NATS server with JetStream on a free port and
// connects to it, both stopped at cleanup.
func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := natsjs.StartServer(natsjs.ServerConfig{Addr: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := natsjs.Connect(srv.ClientURL(), natsjs.Credentials{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestLogContract runs the event log's contract on JetStream: one server,
// a stream of its own for each case.
func TestLogContract(t *testing.T) {
	nc := startNATS(t)
	var n atomic.Int64
	logtest.Run(t, func(t *testing.T, keep int) eventlog.Log {
		i := n.Add(1)
		l, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{
			Conn: nc, Stream: fmt.Sprintf("TEST%d", i), Subject: fmt.Sprintf("test%d.events", i), MaxEvents: int64(keep),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// TestLogIdempotencyKey: a retried append with the same key is stored once
// and answered with the same ids; another key stores again.
func TestLogIdempotencyKey(t *testing.T) {
	l, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: startNATS(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	evs := []jobs.Event{logtest.Event(t, "j1"), logtest.Event(t, "j2")}
	first, err := l.Append(context.Background(), "retry-me", evs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Append(context.Background(), "retry-me", evs)
	if err != nil || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("a retry with the same key: %v (%v), want %v", again, err, first)
	}
	other, err := l.Append(context.Background(), "another", evs)
	if err != nil || other[0] <= first[1] {
		t.Errorf("another key: %v (%v), want new ids after %v", other, err, first)
	}
	if _, last, _ := l.Bounds(context.Background()); last != other[1] {
		t.Errorf("the stream holds up to %d, want %d: a retry was stored twice", last, other[1])
	}
}
