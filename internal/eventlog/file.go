package eventlog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/finexbot/eventhub/jobs"
)

// The history file keeps the history ring and the id counter across a
// restart, so clients resume across it with no gap. It is JSON lines: a
// header, then one line per event, oldest first:
//
//	{"eventhub_history":1,"next_id":1043}
//	{"id":1041,"event":{"type":"growth",…}}
//	{"id":1042,"event":{…}}
const historyFileVersion = 1

type historyHeader struct {
	Version int    `json:"eventhub_history"`
	NextID  uint64 `json:"next_id"`
}

type historyLine struct {
	ID    uint64          `json:"id"`
	Event json.RawMessage `json:"event"`
}

// writeHistoryFile writes records and nextID to path atomically (a temporary
// file renamed over it), so a crash mid-write leaves the old file or none.
func writeHistoryFile(path string, nextID uint64, records []Record) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("history file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	w := bufio.NewWriterSize(tmp, 64<<10)
	hdr, _ := json.Marshal(historyHeader{Version: historyFileVersion, NextID: nextID})
	w.Write(append(hdr, '\n'))
	var line []byte
	for _, r := range records {
		line = append(line[:0], `{"id":`...)
		line = strconv.AppendUint(line, r.ID, 10)
		line = append(line, `,"event":`...)
		line = r.Event.AppendJSON(line)
		line = append(line, "}\n"...)
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("history file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("history file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("history file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("history file: %w", err)
	}
	return nil
}

// maxNextID is the highest next_id a history file may hold: half the id
// space, which a hub appending a million events a second would reach in
// 292,000 years, so ids never wrap around. The ids a memory log starts
// from the clock (a thousand per millisecond) are far below it.
const maxNextID = 1 << 63

// errNoHistoryFile: there is no history file to load (a first start).
var errNoHistoryFile = errors.New("no history file")

// readHistoryFile loads what writeHistoryFile wrote, validating every event
// as outside input: the file may have been edited or truncated. It keeps at
// most the last max events.
func readHistoryFile(path string, max int) (nextID uint64, records []Record, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, errNoHistoryFile
	}
	if err != nil {
		return 0, nil, fmt.Errorf("history file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("history file %s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}
	head, err := r.ReadBytes('\n')
	if err != nil {
		return 0, nil, bad(1, "no header: %v", err)
	}
	var hdr historyHeader
	if err := json.Unmarshal(head, &hdr); err != nil || hdr.Version != historyFileVersion {
		return 0, nil, bad(1, "not an eventhub history file (version %d)", hdr.Version)
	}
	// Ids are never 0 and only grow: a next_id of 0, or one so high that
	// the ids after it would wrap around to 0, is not one this hub wrote.
	if hdr.NextID == 0 || hdr.NextID > maxNextID {
		return 0, nil, bad(1, "next_id %d is impossible: ids run from 1 to %d", hdr.NextID, uint64(maxNextID))
	}
	for n := 2; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, bad(n, "%v", err)
		}
		var hl historyLine
		if err := json.Unmarshal(line, &hl); err != nil {
			return 0, nil, bad(n, "%v", err)
		}
		evs, err := jobs.DecodeEvents(hl.Event)
		if err != nil || len(evs) != 1 {
			return 0, nil, bad(n, "event: %v", err)
		}
		if len(records) > 0 && hl.ID != records[len(records)-1].ID+1 {
			return 0, nil, bad(n, "id %d does not follow %d", hl.ID, records[len(records)-1].ID)
		}
		if hl.ID == 0 {
			return 0, nil, bad(n, "id 0 is impossible: ids start at 1")
		}
		if hl.ID >= hdr.NextID {
			return 0, nil, bad(n, "id %d is not below next_id %d", hl.ID, hdr.NextID)
		}
		records = append(records, Record{ID: hl.ID, Event: &evs[0]})
		if len(records) > 2*max {
			records = append(records[:0], records[len(records)-max:]...)
		}
	}
	if len(records) > max {
		records = records[len(records)-max:]
	}
	if len(records) > 0 && records[len(records)-1].ID != hdr.NextID-1 {
		return 0, nil, fmt.Errorf("history file %s: last id %d, next_id %d: events are missing", path, records[len(records)-1].ID, hdr.NextID)
	}
	return hdr.NextID, records, nil
}
