package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// TestMemoryHistoryFileImpossibleIDs: a history file whose ids cannot be
// (edited, or not ours) is refused at open with an error that names what
// is wrong, nothing is loaded, and the file is left where it is for the
// operator to look at.
func TestMemoryHistoryFileImpossibleIDs(t *testing.T) {
	t.Parallel()
	line := func(id uint64) string {
		return fmt.Sprintf(`{"id":%d,"event":{"type":"growth","jobId":"j","status":"queued","timestamp":"2026-11-27T10:00:00.000Z","data":{"assetId":"a1"}}}`+"\n", id)
	}
	header := func(next uint64) string { return fmt.Sprintf(`{"eventhub_history":1,"next_id":%d}`+"\n", next) }
	tests := []struct {
		name, file, want string
	}{
		{"next_id 0", header(0), "next_id 0 is impossible"},
		{"next_id the last id", header(1<<64 - 1), "next_id 18446744073709551615 is impossible"},
		{"next_id so high the ids after it would wrap", header(1<<63 + 1), "is impossible"},
		{"next_id so high, with its events", header(1<<64-1) + line(1<<64-3) + line(1<<64-2), "is impossible"},
		{"an id 0", header(1) + line(0), "id 0 is impossible"},
		{"an id at next_id", header(5) + line(4) + line(5), "id 5 is not below next_id 5"},
		{"an id above next_id", header(5) + line(9), "id 9 is not below next_id 5"},
		{"ids that go back", header(10) + line(8) + line(7), "does not follow"},
		{"events missing before next_id", header(10) + line(5), "events are missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "history.jsonl")
			if err := os.WriteFile(file, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := eventlog.OpenMemory(eventlog.MemoryConfig{File: file})
			if err == nil {
				_, last, _ := m.Bounds(context.Background())
				m.Close()
				t.Fatalf("a history file with impossible ids was loaded (next id %d)", last+1)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), file) {
				t.Errorf("error %q: want it to name the file and say %q", err, tt.want)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("the refused file is gone: %v", err)
			}
		})
	}
}

// TestMemoryBytes: the ring keeps at most its byte budget, letting the
// oldest go (ids stay contiguous, and a Read from before them is expired),
// even when the count would allow more.
func TestMemoryBytes(t *testing.T) {
	t.Parallel()
	const budget = 256 << 10
	m, err := eventlog.OpenMemory(eventlog.MemoryConfig{Size: 1000, Bytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	big := logtest.Event(t, "big")
	big.Data = []byte(`{"assetId":"a1","blob":"` + strings.Repeat("x", 60<<10) + `"}`)
	var ids []uint64
	for range 20 {
		got, err := m.Append(context.Background(), "", []jobs.Event{big})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	first, last, _ := m.Bounds(context.Background())
	kept := int(last - first + 1)
	if size := eventlog.RecordSize(eventlog.Record{ID: 1, Event: &big}); kept*size > budget || (kept+1)*size <= budget {
		t.Errorf("kept %d events of %d bytes: want as many as fit in %d", kept, size, budget)
	}
	if last != ids[len(ids)-1] {
		t.Errorf("newest id %d, want %d", last, ids[len(ids)-1])
	}
	if err := m.Read(context.Background(), ids[0], last, func(eventlog.Record) {}); !errors.Is(err, eventlog.ErrExpired) {
		t.Errorf("read from an event the budget let go: %v, want ErrExpired", err)
	}
	n := 0
	if err := m.Read(context.Background(), first-1, last, func(eventlog.Record) { n++ }); err != nil || n != kept {
		t.Errorf("read of what is kept: %d records, %v; want %d", n, err, kept)
	}
}
