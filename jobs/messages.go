package jobs

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Messages between Workers and its actors. Every one is sent by value and
// holds nothing mutable, so none is shared between two owners. The events
// the workers emit are not here: they go to the hub as *Event.

// runJob asks a pool, then one of its workers, to run a job. Submit sends it
// after the job's queued event, so the hub sees queued before started.
type runJob struct {
	job    Job
	queued time.Time // when it began to wait here: its wait ends when it starts
	// From a cluster's work queue: which delivery of the job this is, and
	// done, called once the job has ended (true) or was given up unfinished
	// because the workers are stopping (false: let another node run it).
	// A job without done was submitted here, and counts in its user's jobs
	// in flight on this node until it ends.
	attempt uint64
	done    func(finished bool)
}

// workerIdle tells a pool that its worker pid has no job: it has started,
// or ended the job it was given. Only then does the pool give it another.
type workerIdle struct {
	pid *actor.PID
}

// drain asks a pool to finish: it hands the jobs of a cluster's queue back,
// its workers fail the jobs submitted here that still wait (the job context
// is already canceled) and stop, then the pool answers drained to the
// sender. Stop sends it after the last runJob it let through.
type drain struct{}

// drained answers drain.
type drained struct{}
