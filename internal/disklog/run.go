package disklog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// runFile is the name of the file that says how the log was last run:
// on which boot of the machine, with which Sync policy, and whether it was
// closed.
const runFile = "RUN"

// idJump is how far the id counter jumps after the machine crashed while
// the log acknowledged writes before their fsync (SyncBatch): past every
// id the lost records may have had, which some client may have seen.
const idJump = 1_000_000_000

// runState is the content of the run file.
type runState struct {
	Boot  string `json:"boot"`
	Sync  string `json:"sync"`
	Clean bool   `json:"clean"`
}

// readRun reads the run file; ok is false when there is none (a first
// start) or it is not one.
func readRun(dir string) (runState, bool) {
	b, err := os.ReadFile(filepath.Join(dir, runFile))
	if err != nil {
		return runState{}, false
	}
	var r runState
	return r, json.Unmarshal(b, &r) == nil
}

// writeRun writes the run file durably (a temporary file renamed over it).
func writeRun(dir string, r runState) error {
	b, _ := json.Marshal(r) // strings and a bool: never fails
	path := filepath.Join(dir, runFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err = f.Write(append(b, '\n')); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("run file: %w", err)
	}
	return syncDir(dir)
}

// afterMachineCrash makes the ids go on past what a crash of the machine
// may have lost. The records a SyncBatch log acknowledged in the last
// moments before the crash, before their fsync, may be gone, and a
// client may have seen their ids: the counter jumps by idJump, in a new
// segment, so that no id is given twice, and resumes from before it get a
// reset (the floor moves there), telling clients to reload. It runs at
// Open, when the run file says the log ran with SyncBatch, was not closed,
// and the machine has booted since.
func (l *Log) afterMachineCrash(prev runState, boot string) error {
	if prev.Clean || prev.Sync != SyncBatch.String() || prev.Boot == "" || boot == "" || prev.Boot == boot || len(l.segs) == 0 {
		return nil
	}
	last := l.next - 1
	l.segs[len(l.segs)-1].sealed = true
	l.next += idJump
	// The segment is made now, not at the first append: the jump outlives
	// a restart before it.
	l.w.l = l
	if err := l.w.roll(l.cfg.now()); err != nil {
		return fmt.Errorf("after a crash of the machine: %w", err)
	}
	l.floor = l.next
	l.log.Warn("event log: the machine crashed while the log acknowledged events before their fsync (--sync batch): the last of them may be lost; ids go on from far past them, and resumes from before get a reset",
		"last_id", last, "next_id", l.next)
	return nil
}

// bootID returns an id of this boot of the machine, or "" when it cannot
// tell; a seam for tests.
func (c Config) bootID() string {
	if c.boot != nil {
		return c.boot()
	}
	id, err := machineBootID()
	if err != nil {
		return ""
	}
	return id
}

// closeRun marks the run file clean at Close.
func (l *Log) closeRun() error {
	return writeRun(l.cfg.Dir, runState{Boot: l.boot, Sync: l.cfg.Sync.String(), Clean: true})
}
