package disklog

import (
	"errors"
	"fmt"
)

var (
	// ErrLocked: another process (another eventhub) holds the data
	// directory. Two writers would each number events from the same
	// counter and overwrite each other's records.
	ErrLocked = errors.New("disklog: data dir in use by another eventhub")
	// ErrNewerVersion: a file of the data directory is in a format newer
	// than this build reads (it was written by a newer eventhub). The log
	// refuses to open rather than misread or cut it.
	ErrNewerVersion = errors.New("disklog: file format newer than this eventhub reads")
	// ErrDamaged: a file of the data directory is not one the log wrote
	// (a bad magic or header, a name that does not match its header), in
	// a way recovery does not cut away: an operator must look at it.
	ErrDamaged = errors.New("disklog: damaged data dir")
)

// Errors of the record decoder. Neither reaches a caller of the log: at
// recovery they mark where the log is cut.
var (
	// errTorn: the bytes end inside a record (a write cut short by a
	// crash).
	errTorn = errors.New("torn record")
	// errCorrupt: a record whose length, checksum or id is wrong.
	errCorrupt = errors.New("corrupt record")
)

// versionError is ErrNewerVersion for one file.
func versionError(path string, version uint32) error {
	return fmt.Errorf("%w: %s is format version %d, this eventhub reads version %d (run the newer eventhub, or move the data dir aside)",
		ErrNewerVersion, path, version, formatVersion)
}
