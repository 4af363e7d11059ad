package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/eventlog/logtest"
	"github.com/finexbot/eventhub/jobs"
)

func openMemory(t *testing.T, keep int) eventlog.Log {
	t.Helper()
	m, err := eventlog.OpenMemory(eventlog.MemoryConfig{Size: keep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMemoryContract(t *testing.T) { logtest.Run(t, openMemory) }

// TestMemoryHistoryFile: a memory log with a history file goes on where it
// stopped: the same records, ids that follow; the file is removed once
// loaded, so a crash later cannot bring back stale ids.
func TestMemoryHistoryFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "history.jsonl")
	first, err := eventlog.OpenMemory(eventlog.MemoryConfig{Size: 4, File: file})
	if err != nil {
		t.Fatal(err)
	}
	var evs []jobs.Event
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		evs = append(evs, logtest.Event(t, id))
	}
	ids, err := first.Append(context.Background(), "", evs)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Append(context.Background(), "", evs[:1]); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("append after Close: %v, want ErrClosed", err)
	}

	second, err := eventlog.OpenMemory(eventlog.MemoryConfig{Size: 4, File: file})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("history file still there after loading: %v", err)
	}
	lo, hi, _ := second.Bounds(context.Background())
	if lo != ids[2] || hi != ids[5] {
		t.Errorf("bounds after restart [%d, %d], want [%d, %d]", lo, hi, ids[2], ids[5])
	}
	var got []string
	second.Read(context.Background(), ids[2], ids[5], func(r eventlog.Record) { got = append(got, r.Event.JobID) })
	if want := "[d e f]"; fmt.Sprint(got) != want {
		t.Errorf("read after restart: %v, want %s", got, want)
	}
	next, err := second.Append(context.Background(), "", evs[:1])
	if err != nil || next[0] != ids[5]+1 {
		t.Errorf("first id after restart %v (%v), want %d", next, err, ids[5]+1)
	}
}

// TestMemoryHistoryFileBroken: a history file that is not one stops the
// start rather than being silently dropped.
func TestMemoryHistoryFileBroken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.WriteFile(file, []byte("{\"eventhub_history\":1,\"next_id\":5}\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := eventlog.OpenMemory(eventlog.MemoryConfig{File: file}); err == nil {
		t.Fatal("a broken history file was accepted")
	}
}
