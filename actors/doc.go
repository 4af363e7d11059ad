// Package actors is eventhub's routing core: a hub actor, one user actor per
// connected user, and one conn actor per open stream, on protoactor-go.
//
// # Model
//
// Events come from the event log (internal/eventlog): Hub.Publish appends
// them there, and the hub actor routes what the log's tail hands back, in
// id order, the same way on one node (a memory log) and in a cluster (a
// JetStream log every node tails). The hub actor owns its history (the
// newest frames, a cache of the log that answers resumes), the job table
// behind snapshots, and the routing index (users by asset, by scenario, and
// the admins). Each event is encoded into its SSE frame once and sent only
// to the user actors whose permissions can cover it, so the cost of an
// event follows its audience, not the number of connections. A resume that
// history no longer covers reads the log, off the actor.
//
// A user actor owns one user's permissions and the list of that user's
// streams. It applies the RBAC rule (authz.Permissions.Allows) and each
// stream's filter, and posts the shared frame to the matching conn actors.
// It stops when its last stream has closed.
//
// A conn actor owns one socket's writing side. Its mailbox is bounded in
// frames and in bytes and never blocks a sender: a frame that does not fit
// is refused and counted (eventhub_mailbox_overflow_total) and the stream
// is closed with reason "slow"; the client resumes with Last-Event-ID. A conn actor coalesces
// every frame pending in its mailbox into one write, which on the worker
// pool never waits: a socket that is full moves its stream to a goroutine
// of its own that writes under a deadline. One epoll goroutine per hub
// watches every stream's socket and sees a client that went away at once
// (where there is no epoll, a small reader goroutine per stream does).
//
// See docs/architecture.md for the whole picture.
//
// # Ordering
//
// Everything one stream receives passes through one chain of FIFO mailboxes
// (hub → user → conn), so a stream sees events in id order, never twice, and
// a resumed stream's replay is followed by the live events with no gap.
//
// # Concurrency
//
// Hub's exported methods may be called from any goroutine. Actors keep their
// state to themselves and need no locks; the few things shared across
// goroutines (a stream's close reason, a mailbox's queue, the admission
// counts) are guarded where they are declared.
package actors
