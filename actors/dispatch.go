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
	work chan func()
	quit chan struct{}
	wg   sync.WaitGroup
}

func newWorkerPool(workers, queue int) *workerPool {
	p := &workerPool{work: make(chan func(), queue), quit: make(chan struct{})}
	for range workers {
		p.wg.Go(func() {
			for {
				select {
				case fn := <-p.work:
					fn()
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
func (p *workerPool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		go fn()
	}
}

// Throughput is how many messages a mailbox handles before it yields.
func (p *workerPool) Throughput() int { return 300 }

// stop ends the workers once the queue is empty and waits for them. Nothing
// may be scheduled after.
func (p *workerPool) stop() {
	for len(p.work) > 0 {
		(<-p.work)()
	}
	close(p.quit)
	p.wg.Wait()
}
