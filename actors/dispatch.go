package actors

import (
	"sync"
)

// workerPool runs conn actors' mailboxes on a few long-lived goroutines. The
// default protoactor dispatcher starts a goroutine per wake-up: a fan-out to
// 10,000 streams then starts 10,000 goroutines, each a g the runtime keeps
// for ever after and a stack that grows on its first write. A pool's
// goroutines have grown their stacks once.
//
// A pool goroutine never waits long on a slow client: a conn actor writes
// with a short deadline there, and a stream whose socket is full is marked
// congested and goes on on a goroutine of its own (see mailbox.congested).
// Schedule never blocks: when every worker is busy and the queue is full it
// starts a goroutine, as the default dispatcher would.
//
// The Hub owns the pool; stop ends its goroutines and waits for them.
type workerPool struct {
	work chan task
	quit chan struct{}
	wg   sync.WaitGroup
}

// task is one piece of a pool's work: a conn actor's mailbox to run (m),
// or, for protoactor's mailboxes, a function. A mailbox goes as itself, not
// as a closure: on a fan-out to a scattered audience every closure is one
// more cache miss.
type task struct {
	m  *mailbox
	fn func()
}

func (t task) do() {
	if t.m != nil {
		t.m.processMessages(false)
	} else {
		t.fn()
	}
}

func newWorkerPool(workers, queue int) *workerPool {
	p := &workerPool{work: make(chan task, queue), quit: make(chan struct{})}
	for range workers {
		p.wg.Go(func() {
			for {
				select {
				case t := <-p.work:
					t.do()
				case <-p.quit:
					return
				}
			}
		})
	}
	return p
}

// Schedule runs fn on a worker, or on a goroutine of its own when they are
// all busy and the queue is full.
func (p *workerPool) Schedule(fn func()) { p.post(task{fn: fn}) }

// run runs m's messages on a worker, as Schedule would.
func (p *workerPool) run(m *mailbox) { p.post(task{m: m}) }

func (p *workerPool) post(t task) {
	select {
	case p.work <- t:
	default:
		go t.do()
	}
}

// Throughput is how many messages a mailbox handles before it yields.
func (p *workerPool) Throughput() int { return 300 }

// stop ends the workers once the queue is empty and waits for them. Nothing
// may be scheduled after.
func (p *workerPool) stop() {
	for len(p.work) > 0 {
		(<-p.work).do()
	}
	close(p.quit)
	p.wg.Wait()
}
