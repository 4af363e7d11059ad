package jobs

import (
	"maps"
	"slices"
	"sort"

	"github.com/asynkron/protoactor-go/actor"
)

// pool is the supervisor of the workers of one job type, and the fair
// scheduler that hands them jobs. It keeps the waiting jobs itself, by user
// (first in, first out for each), and gives a job to a worker only when that
// worker says it is idle: the oldest job of the user with jobs waiting who
// was served least recently (round robin, where a user who comes back goes
// before those served since). So one user's backlog delays another user's
// next job by at most one job per other user with jobs waiting, whatever
// the backlog's length, and a worker's mailbox never holds more than the one
// job it is given.
//
// It owns its fields; only its actor touches them. The count of waiting
// jobs (slots.waiting) is shared with Submit, which reserves a slot before
// it sends a job; the pool frees it when a worker takes the job.
type pool struct {
	env   *workerEnv
	typ   Type
	size  int
	slots *queueSlots

	workers []*actor.PID
	idle    []*actor.PID // workers with no job, a stack
	// queues holds each user's waiting jobs, and for users with none when
	// they were last served (up to maxIdleRecords of them: those not in ring).
	queues map[string]*userQueue
	ring   []*userQueue // the queues with jobs, least recently served first
	tick   uint64       // counts the jobs handed out: the clock of served

	drainer  *actor.PID // who asked to drain; nil until then
	draining bool       // Stop has begun: no job comes in any more
	poisoned bool       // the workers were told to stop
	stopping bool       // no more replacement workers
}

// maxIdleRecords bounds the users a pool remembers with no job waiting.
// Past it they are all forgotten: each then comes back as a newcomer, at
// worst one job early.
const maxIdleRecords = 1024

// userQueue is one user's waiting jobs, oldest first, and when the user was
// last served.
type userQueue struct {
	jobs   []runJob
	head   int
	served uint64 // the pool's tick when its last job was handed out; 0 for never
}

func (q *userQueue) push(m runJob) { q.jobs = append(q.jobs, m) }

func (q *userQueue) pop() runJob {
	m := q.jobs[q.head]
	q.jobs[q.head] = runJob{} // drop the params it holds
	q.head++
	if q.head == len(q.jobs) {
		q.jobs, q.head = nil, 0 // an empty queue holds no memory
	} else if q.head > 64 && q.head > len(q.jobs)/2 {
		q.jobs = append(q.jobs[:0], q.jobs[q.head:]...)
		clear(q.jobs[len(q.jobs):cap(q.jobs)])
		q.head = 0
	}
	return m
}

func (q *userQueue) len() int { return len(q.jobs) - q.head }

// Receive implements actor.Actor.
func (p *pool) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		p.queues = map[string]*userQueue{}
		for range p.size {
			p.spawn(c)
		}
	case runJob:
		if p.draining {
			// Submit and Run send nothing after Stop has sent drain; a job
			// here is a programming error, but it must still end.
			p.slots.waiting.Add(-1)
			p.env.giveUp(m)
			return
		}
		p.enqueue(m)
		p.dispatch(c)
	case workerIdle:
		if slices.ContainsFunc(p.workers, m.pid.Equal) && !slices.ContainsFunc(p.idle, m.pid.Equal) {
			p.idle = append(p.idle, m.pid)
		}
		p.dispatch(c)
		p.maybeDrained(c)
	case drain:
		p.draining = true
		p.drainer = c.Sender()
		p.returnClusterJobs()
		p.dispatch(c)
		p.maybeDrained(c)
	case *actor.Terminated:
		p.workers = slices.DeleteFunc(p.workers, m.Who.Equal)
		p.idle = slices.DeleteFunc(p.idle, m.Who.Equal)
		if !p.stopping {
			// The supervisor gave up on a worker (too many restarts): keep
			// the pool at its size, with a fresh worker.
			p.env.log.Error("jobs: worker stopped after repeated failures; replacing it", "type", p.typ.String())
			p.spawn(c)
		}
		p.maybeDrained(c)
	case *actor.Stopping, *actor.Restarting:
		// Our children are being stopped with us: do not replace them.
		p.stopping = true
	}
}

func (p *pool) enqueue(m runJob) {
	q := p.queues[m.job.User]
	if q == nil {
		q = &userQueue{}
		p.queues[m.job.User] = q
	}
	if q.len() == 0 {
		// Into the ring by when it was last served: a newcomer goes after
		// the other newcomers and before every user served since, so a
		// user with a backlog does not go first when someone else arrives.
		i := sort.Search(len(p.ring), func(i int) bool { return p.ring[i].served > q.served })
		p.ring = slices.Insert(p.ring, i, q)
	}
	q.push(m)
}

// dispatch gives idle workers the next jobs, round robin over the users.
func (p *pool) dispatch(c actor.Context) {
	for len(p.idle) > 0 && len(p.ring) > 0 {
		q := p.ring[0]
		p.ring = slices.Delete(p.ring, 0, 1)
		m := q.pop()
		p.tick++
		q.served = p.tick
		if q.len() > 0 {
			p.ring = append(p.ring, q) // served last: at the end
		} else {
			p.forgetIdle()
		}
		p.slots.waiting.Add(-1)
		wk := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		c.Send(wk, m)
	}
}

// forgetIdle forgets the users with no job waiting (the queues not in the
// ring) when there are too many of them.
func (p *pool) forgetIdle() {
	if len(p.queues)-len(p.ring) > maxIdleRecords {
		maps.DeleteFunc(p.queues, func(_ string, q *userQueue) bool { return q.len() == 0 })
	}
}

// returnClusterJobs hands the waiting jobs of a cluster's work queue back
// to it at once, unstarted: another node runs them. The jobs submitted here
// stay; the workers take them in turn and, their context canceled, fail
// them at once.
func (p *pool) returnClusterJobs() {
	kept := p.ring[:0]
	for _, q := range p.ring {
		var jobs []runJob
		for _, m := range q.jobs[q.head:] {
			if m.done != nil {
				p.slots.waiting.Add(-1)
				m.done(false)
				continue
			}
			jobs = append(jobs, m)
		}
		q.jobs, q.head = jobs, 0
		if q.len() > 0 {
			kept = append(kept, q)
		}
	}
	clear(p.ring[len(kept):])
	p.ring = kept
	p.forgetIdle()
}

func (p *pool) spawn(c actor.Context) {
	env := p.env
	props := actor.PropsFromProducer(func() actor.Actor { return &worker{env: env} })
	// Not idle yet: the worker says so once it has started.
	p.workers = append(p.workers, c.Spawn(props))
}

// maybeDrained stops the workers once draining has no job left to give, and
// answers the drainer once they are gone.
func (p *pool) maybeDrained(c actor.Context) {
	if !p.draining {
		return
	}
	if !p.poisoned && len(p.ring) == 0 && len(p.idle) == len(p.workers) {
		p.poisoned = true
		p.stopping = true
		for _, pid := range p.workers {
			c.Poison(pid)
		}
	}
	if p.drainer != nil && p.poisoned && len(p.workers) == 0 {
		c.Send(p.drainer, drained{})
		p.drainer = nil
	}
}

// worker runs one job at a time, in its Receive, and tells its pool when it
// is idle: once started (or restarted), and after each job. It holds no
// state of its own, so a restart loses nothing but the job it failed on.
type worker struct {
	env *workerEnv
}

// Receive implements actor.Actor.
func (wk *worker) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		c.Send(c.Parent(), workerIdle{pid: c.Self()})
	case runJob:
		wk.env.handle(m)
		c.Send(c.Parent(), workerIdle{pid: c.Self()})
	}
}
