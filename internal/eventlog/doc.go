// Package eventlog is eventhub's event log seam: the one place events are
// appended and numbered, and the one place a resume reads what came after
// an id. The hub routes whatever its log hands it and never knows which log
// it has, the way centrifuge's hub asks its Broker.
//
// # The contract
//
// A Log numbers the events it stores with ids that only grow (never 0, and
// never reused, across restarts too). Append stores a batch, all or none,
// and returns the ids. Tail hands every record after an id to one callback,
// in id order, one at a time: appends made by this process and, in a
// cluster, by every other node. Read answers "what came after id N, up to
// M?" for a resume, or ErrExpired when the log no longer holds N+1.
//
// A Record whose Event is nil is a message of the log that is not a valid
// event (a cluster's log is written by workers in any language): its id is
// passed, and nothing is routed.
//
// # Implementations
//
//   - Memory (this package): a single node, in memory. A bounded ring of
//     the newest events; ids start from the clock, a thousand per
//     millisecond, so a restarted node never reuses one.
//   - internal/disklog: a single node, on disk (--data-dir): segments of
//     records, group commit, recovery of a torn tail after a crash; it
//     also keeps every job's latest event (JobKeeper).
//   - internal/natsjs: a cluster. A NATS JetStream stream whose sequence is
//     the event id, so a client resumes on any node.
//
// A new backend (Redis Streams, say) is one package that implements Log
// (see docs/architecture.md, "Adding a log backend") and one flag in
// cmd/eventhub that opens it.
//
// # Concurrency
//
// Every method of a Log may be called from any goroutine. The deliver
// callback of Tail is never called concurrently with itself, must not
// block (it posts to an actor's mailbox) and must not call back into the
// log.
package eventlog
