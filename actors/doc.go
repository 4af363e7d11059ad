// Package actors is eventhub's routing core: a hub actor, user actors that
// load each user's permissions, and one conn actor per open stream, on
// protoactor-go.
//
// # Model
//
// Events come from the event log (internal/eventlog): Hub.Publish appends
// them there, and the hub actor routes what the log's tail hands back, in
// id order, the same way on one node (a memory log) and in a cluster (a
// JetStream log every node tails). The hub actor owns its history (the
// newest frames, a cache of the log that answers resumes), the job table
// behind snapshots, the users it knows with their streams, and the routing
// index (the users with streams by asset, by scenario, and the admins).
// Each event is encoded into its SSE frame once and posted straight to the
// mailboxes of the streams that may see it (the index is exact: it is the
// RBAC rule) and asked for it (each stream's filter), so the cost of an
// event follows its audience, not the number of users or connections. A
// resume that history no longer covers reads the log, off the actor.
//
// A user actor loads one user's permissions from the source, refreshes
// them every TTL while the user has streams, and has the hub put a change
// in force (re-index, and narrow or close the streams) at one point of the
// event sequence. It runs only while it has a load to do: then it hands its
// state back to the hub and stops (passivation), and the hub answers from
// that state until it is due again.
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
// (log tail → hub → conn), so a stream sees events in id order, never twice,
// and a resumed stream's replay, posted by the hub as it attaches the
// stream, is followed by the live events with no gap.
//
// # Concurrency
//
// Hub's exported methods may be called from any goroutine. Actors keep their
// state to themselves and need no locks; the few things shared across
// goroutines (a stream's close reason, a mailbox's queue, the admission
// counts) are guarded where they are declared.
package actors
