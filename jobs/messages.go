package jobs

// Messages between Workers and its actors. Every one is sent by value and
// holds nothing mutable, so none is shared between two owners. The events
// the workers emit are not here: they go to the hub as *Event.

// runJob asks a pool, then one of its workers, to run a job. Submit sends it
// after the job's queued event, so the hub sees queued before started.
type runJob struct {
	job Job
	// From a cluster's work queue: which delivery of the job this is, and
	// done, called once the job has ended (true) or was given up unfinished
	// because the workers are stopping (false: let another node run it).
	attempt uint64
	done    func(finished bool)
}

// drain asks a pool to finish: its workers fail what they still hold (the
// job context is already canceled) and stop, then the pool answers drained to
// the sender. Stop sends it after the last runJob it let through.
type drain struct{}

// drained answers drain.
type drained struct{}
