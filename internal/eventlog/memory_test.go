package eventlog_test

import (
	"context"
	"errors"
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
