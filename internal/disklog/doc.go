// Package disklog is the event log of a single node on disk
// (--data-dir): what it acknowledges survives a crash of the process, and,
// by its Sync policy, of the machine. It implements eventlog.Log, and
// eventlog.JobKeeper: it keeps every job's latest event, so that the hub's
// job table is whole again after a restart.
//
// # Model
//
// The log is a directory of segments, files of records with contiguous
// ids named by their first id (00000000001700000000.seg), and a job-state
// file (jobs.state). A record is [length][crc32c][id][event JSON]; the
// format is in record.go and docs/architecture.md. One goroutine, the
// writer, appends: every Append waiting is encoded into one buffer,
// written with one write to the newest segment and, with SyncAlways,
// covered by one fsync (a group commit); with SyncBatch the writer fsyncs
// at most SyncInterval after a write. Then it hands the records to the
// tails, from memory, and answers the appends. A segment is sealed at
// SegmentBytes and the next one begun.
//
// Reads (a resume's Read, a new Tail's backlog) read committed records
// from the files with pread, starting from a sparse in-memory index of
// each segment (an entry every 16 KiB), without holding up the writer.
//
// Retention drops whole segments, oldest first: by count (MaxEvents), by
// bytes (MaxBytes) and by age (MaxAge). Before a segment goes, the latest
// event of each job whose latest event is in it is written to the
// job-state file (in the same record format, rewritten atomically), within
// the job index's budgets (Jobs, JobsBytes).
//
// At Open the log recovers: it reads every record, checks its checksum
// and id, and cuts the file at the first bad one. A torn tail (a write a
// crash cut short, and a batch whose last record is missing) was never
// acknowledged; damage inside a sealed segment loses the rest of that
// segment, and resumes from before it get a reset. Both are logged and
// counted. A file of a newer format version is refused, and so is a data
// directory that another process holds (a lock file, flock).
//
// A run file (RUN) says on which boot of the machine the log last ran, with
// which policy, and whether it was closed. A SyncBatch log that was not
// closed when the machine went down (the boot id changed) may have lost
// what it acknowledged last, before its fsync, and clients may have seen
// those ids: the id counter jumps by a billion, and resumes from before
// get a reset. Ids are never given twice.
//
// When a write or fsync fails (a full disk), the appends of that commit
// answer eventlog.ErrUnavailable and nothing of them is published; the
// file is cut back, the log is not Ready, and appends are refused at once
// until a probe (every second) finds the disk takes a write again.
//
// # Concurrency
//
// Every method may be called from any goroutine. The deliver callback of
// Tail is called by the writer goroutine (or by Tail itself, for the
// backlog), never concurrently with itself; it must not block or call back
// into the log. Close waits for the writer.
package disklog
