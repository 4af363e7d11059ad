package actors

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

// writeHistoryFile writes frames and nextID to path atomically (a temporary
// file renamed over it), so a crash mid-write leaves the old file or none.
func writeHistoryFile(path string, nextID uint64, frames []*frame) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("history file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	w := bufio.NewWriterSize(tmp, 64<<10)
	hdr, _ := json.Marshal(historyHeader{Version: historyFileVersion, NextID: nextID})
	w.Write(append(hdr, '\n'))
	var line []byte
	for _, f := range frames {
		line = append(line[:0], `{"id":`...)
		line = strconv.AppendUint(line, f.id, 10)
		line = append(line, `,"event":`...)
		line = f.ev.AppendJSON(line)
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

// errNoHistoryFile: there is no history file to load (a first start).
var errNoHistoryFile = errors.New("no history file")

// readHistoryFile loads what writeHistoryFile wrote, validating every event
// as outside input: the file may have been edited or truncated. It keeps at
// most the last max events.
func readHistoryFile(path string, max int) (nextID uint64, frames []*frame, err error) {
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
	if err := json.Unmarshal(head, &hdr); err != nil || hdr.Version != historyFileVersion || hdr.NextID == 0 {
		return 0, nil, bad(1, "not an eventhub history file (version %d)", hdr.Version)
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
		if len(frames) > 0 && hl.ID != frames[len(frames)-1].id+1 {
			return 0, nil, bad(n, "id %d does not follow %d", hl.ID, frames[len(frames)-1].id)
		}
		if hl.ID >= hdr.NextID {
			return 0, nil, bad(n, "id %d is not below next_id %d", hl.ID, hdr.NextID)
		}
		ev := &evs[0]
		frames = append(frames, &frame{id: hl.ID, ev: ev, bytes: appendEventFrame(nil, hl.ID, ev)})
		if len(frames) > 2*max {
			frames = append(frames[:0], frames[len(frames)-max:]...)
		}
	}
	if len(frames) > max {
		frames = frames[len(frames)-max:]
	}
	if len(frames) > 0 && frames[len(frames)-1].id != hdr.NextID-1 {
		return 0, nil, fmt.Errorf("history file %s: last id %d, next_id %d: events are missing", path, frames[len(frames)-1].id, hdr.NextID)
	}
	return hdr.NextID, frames, nil
}
