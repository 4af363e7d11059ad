// Package jobs holds eventhub's domain model: the JobEvent that workers emit at
// each step of a job, the three job kinds and what each computes, the stream
// filters a client may ask for, and the worker actors that run submitted jobs.
//
// Everything that comes from outside the process (a published event, a
// submitted job, a filter in a query string) is validated here, once, at the
// edge: a value of type Event or Filter that exists is valid, and the rest of
// eventhub trusts it. Events are immutable once decoded, so one *Event may be
// shared by every goroutine and actor that routes it.
//
// Schema is the JSON Schema of a JobEvent as the hub sends it, built by
// reflection over the types that encode events (the envelope, the data the
// workers write, each kind's result), so that it changes with them; clients
// in other languages generate their types from it (`eventhub schema`).
//
// Worker actors publish the events they emit through a function they are
// given (the hub's Publish, the door an outside worker's POST goes through
// too); this package imports neither actors nor transport, nor anything of
// NATS. StartWorkers spawns, per job kind, a pool actor that supervises its
// workers (OneForOne, restart), keeps the jobs waiting for them by user, and
// hands an idle worker the next job of the user served least recently.
//
// Admission is bounded: a kind's queue (WorkersConfig.QueueSize), a user's
// jobs in flight and submissions a second (PerUser, Rate and Burst, a token
// bucket per user, forgotten once idle). Over a budget, Submit and Admit
// return a *RefusedError before anything of the job is published.
//
// Queue is the job-queue seam: Workers is this node's queue, and a cluster's
// work queue (internal/natsjs) feeds every node's Workers through Run.
// Submit may be called from any goroutine: it publishes the job's queued
// event before the job can reach a worker, and a worker publishes started,
// then completed or failed, so the log holds each job's events in that
// order. A worker runs one job at a time under a deadline and recovers a
// panicking job into a failed one. Workers.Stop fails what is still running
// or waiting and returns once every worker actor has stopped; call it before
// stopping the hub.
package jobs
