// Package natsjs is everything eventhub does with NATS JetStream, in one
// place: the event log of a cluster (Log, an eventlog.Log), the job work
// queue shared by the nodes (Queue, a jobs.Queue), and the NATS server a
// hub may run inside its own process (Server) and the connection to NATS
// (Connect). No other package of eventhub imports NATS.
//
// # The event log
//
// One JetStream stream holds every event, one message each, on subjects
// <prefix>.<type>. Its sequence is the event id: every node appends to it
// and tails it with an ordered consumer, so every node routes every event
// in the same order with the same id, and a client resumes on any node.
// An Append with an idempotency key sends it as the Msg-Id of each message
// (key/index), so a publisher that retries on another node within the
// stream's two-minute duplicate window stores its events once. Messages
// that are not valid events (workers in any language write to the stream)
// are counted in eventhub_events_rejected_total and passed as records
// without an event.
//
// # The job queue
//
// A work-queue stream with one durable consumer shared by every node: each
// job is taken by one node, acknowledged when it ends, and handed to
// another node after AckWait if its node dies first.
//
// # Replicas and the cluster
//
// Both streams take a replica count (LogConfig.Replicas,
// QueueConfig.Replicas): in a JetStream cluster each is kept by that many
// servers and survives the loss of a minority of them. OpenLog and
// StartQueue make or update their stream while a cluster forms, retrying
// with backoff for the start timeout; a count JetStream cannot keep is a
// *ReplicasError. The embedded Server may be a node of such a cluster
// (ServerConfig.ClusterAddr and Routes), so that hubs need no other
// component.
//
// # Concurrency
//
// Log and Queue methods may be called from any goroutine. Each Tail owns
// its consumer goroutines until its stop function returns. Neither owns the
// NATS connection: Connect's caller closes it, after the hub has stopped.
package natsjs
