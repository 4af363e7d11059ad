package actors

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/jobs"
)

// mailbox is a conn actor's bounded mailbox. Neither of protoactor's stock
// bounded mailboxes will do: actor.Bounded busy-waits the sender
// when full, and actor.BoundedDropping drops the oldest message silently and
// then spins. This one refuses a user message when full, says so to its
// owner (onOverflow, called on the poster's goroutine), and never blocks.
//
// It is bounded in frames (capacity) and in bytes (maxBytes: the sum of
// the queued frames' lengths). Its queue grows on demand up to the
// capacity, so an idle stream costs a few words, not a preallocated ring.
//
// Any goroutine may post; the dispatcher runs one processMessages at a time.
type mailbox struct {
	// The fields a post and a run touch come first, together: a fan-out
	// to a scattered audience pays a cache miss for every line of them.
	mu sync.Mutex // guards the fields below it, up to userCount
	// queue is a ring buffer; len(queue) is its current size. It starts
	// in one, the mailbox's own slot, which most streams never outgrow.
	queue []any
	head  int32
	n     int32
	bytes int32 // of the queued frames
	// marks is 1 while revokeMark waits to be the next message: counted
	// in userCount, so the actor runs, and writes nothing, until it has it.
	marks int32
	// capacity and maxBytes bound the queue.
	capacity int32
	maxBytes int32
	closed   bool // after close, user messages are dropped, not counted
	// conflate is set before the actor starts, for a stream that asked for
	// it: a job's progress frame replaces its older one still queued
	// (conflated counts them until the actor takes the count, without the
	// lock: it looks after every write).
	conflate  bool
	conflated atomic.Int32

	userCount atomic.Int32 // = n + marks, written under mu, read without it
	sysCount  atomic.Int32
	scheduled atomic.Bool
	suspended atomic.Bool
	// congested is set by the conn actor when its socket did not take a
	// write within the pool's short deadline: the mailbox then runs on a
	// goroutine of its own, where the actor may wait out its full write
	// timeout without holding up any other stream, until a write completes.
	congested atomic.Bool

	one        [1]any
	sys        []any            // guarded by mu
	onOverflow func(bytes bool) // called once per refused message, bytes when maxBytes refused it; must not block

	invoker    actor.MessageInvoker
	dispatcher actor.Dispatcher
	pool       *workerPool // the dispatcher, when it is a pool: it runs the mailbox without a closure
	process    func()      // m.processMessages, bound once for another dispatcher: a method value allocates each time it is made
}

var _ actor.Mailbox = (*mailbox)(nil)

// newMailbox returns a mailbox that queues but does not run anything until
// Start: a stream can be posted to (by the heartbeat wheel, say) before its
// actor is spawned.
func newMailbox(capacity, maxBytes int, onOverflow func(bytes bool)) *mailbox {
	m := &mailbox{}
	m.init(capacity, maxBytes, onOverflow)
	return m
}

// init makes m, the zero mailbox in a stream of its own, what newMailbox
// returns.
func (m *mailbox) init(capacity, maxBytes int, onOverflow func(bytes bool)) {
	m.capacity, m.maxBytes = int32(min(capacity, math.MaxInt32)), int32(min(maxBytes, math.MaxInt32))
	m.onOverflow = onOverflow
	m.queue = m.one[:]
	m.scheduled.Store(true) // held until Start, so nothing runs before RegisterHandlers
}

// PostUserMessage queues m, or refuses it if the mailbox is full.
func (m *mailbox) PostUserMessage(msg any) {
	if m.push(msg, false) {
		m.schedule()
	}
}

// postAlways queues msg even when the mailbox is full: for the few control
// messages (a replay, a graceful close) that must not be mistaken for a slow
// client. It reports false only after close.
func (m *mailbox) postAlways(msg any) bool {
	if !m.push(msg, true) {
		return false
	}
	m.schedule()
	return true
}

// frameLen is what msg counts against the byte budget: a frame's length.
func frameLen(msg any) int {
	if f, ok := msg.(*frame); ok {
		return len(f.bytes)
	}
	return 0
}

func (m *mailbox) push(msg any, force bool) bool {
	size := frameLen(msg)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	if m.conflate && m.n > 0 {
		if f, ok := msg.(*frame); ok && f.ev.Status == jobs.Started {
			m.replaceProgress(f)
		}
	}
	if !force && (m.n >= m.capacity || int(m.bytes)+size > int(m.maxBytes)) {
		bytes := m.n < m.capacity
		m.mu.Unlock()
		m.onOverflow(bytes)
		return false
	}
	if int(m.n) == len(m.queue) {
		m.grow()
	}
	m.queue[m.slot(m.n)] = msg
	m.n++
	m.bytes += int32(size)
	m.userCount.Store(m.n + m.marks)
	m.mu.Unlock()
	return true
}

// replaceProgress drops the queued progress (started) frame of f's job, if
// there is one and no other status of the job is queued after it: f,
// newer, is then queued at the end, so ids on the wire still only grow and
// the job's statuses keep their order. There is at most one such frame, as
// every push to a conflating mailbox calls this. Caller holds mu.
func (m *mailbox) replaceProgress(f *frame) {
	for i := m.n - 1; i >= 0; i-- {
		old, ok := m.queue[m.slot(i)].(*frame)
		if !ok || old.ev.JobID != f.ev.JobID || old.ev.Type != f.ev.Type {
			continue
		}
		if old.ev.Status != jobs.Started {
			return // a queued, completed or failed comes between: keep both
		}
		for j := i; j < m.n-1; j++ {
			m.queue[m.slot(j)] = m.queue[m.slot(j+1)]
		}
		m.queue[m.slot(m.n-1)] = nil
		m.n--
		m.bytes -= int32(len(old.bytes))
		m.conflated.Add(1)
		m.userCount.Store(m.n + m.marks)
		return
	}
}

// takeConflated returns how many frames were conflated since it was last
// called.
func (m *mailbox) takeConflated() int { return int(m.conflated.Swap(0)) }

// slot is the index in the ring of the i-th queued message. Caller holds mu.
func (m *mailbox) slot(i int32) int { return int(m.head+i) % len(m.queue) }

// grow doubles the ring (from the one slot of its own: most streams never
// hold more than one message at a time), unwrapping it. Caller holds mu.
func (m *mailbox) grow() {
	size := max(2*len(m.queue), 1)
	q := make([]any, size)
	for i := range m.n {
		q[i] = m.queue[m.slot(i)]
	}
	clear(m.one[:])
	m.queue, m.head = q, 0
}

func (m *mailbox) popUser() any {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marks > 0 {
		m.marks = 0
		m.userCount.Store(m.n)
		return revokeMark
	}
	if m.n == 0 {
		return nil
	}
	msg := m.queue[m.head]
	m.queue[m.head] = nil
	m.head = int32(m.slot(1))
	m.n--
	m.bytes -= int32(frameLen(msg))
	m.userCount.Store(m.n)
	if m.n == 0 && len(m.queue) > 16 {
		m.queue, m.head = m.one[:], 0 // a burst is over: give the memory back
	}
	return msg
}

// revoke drops the queued frames that deny rejects, and makes revokeMark
// the actor's next message, ahead of what stays queued: the user's
// permissions narrowed, and what the actor took from the mailbox before
// was checked against the old ones. It reports whether a replay is queued
// (its frames cannot be told apart: the stream must close). Any goroutine
// may call it.
func (m *mailbox) revoke(deny func(*frame) bool) (replayQueued bool) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	kept := int32(0)
	for i := range m.n {
		msg := m.queue[m.slot(i)]
		if f, ok := msg.(*frame); ok && deny(f) {
			m.bytes -= int32(len(f.bytes))
			continue
		}
		if _, ok := msg.(*replay); ok {
			replayQueued = true
		}
		m.queue[m.slot(kept)] = msg // kept <= i: compacts in place
		kept++
	}
	for i := kept; i < m.n; i++ {
		m.queue[m.slot(i)] = nil
	}
	m.n, m.marks = kept, 1
	m.userCount.Store(m.n + m.marks)
	m.mu.Unlock()
	m.schedule()
	return replayQueued
}

// PostSystemMessage queues a protoactor system message (Started, Stop,
// Watch, Terminated, …). These are never refused.
func (m *mailbox) PostSystemMessage(msg any) {
	m.mu.Lock()
	m.sys = append(m.sys, msg)
	m.mu.Unlock()
	m.sysCount.Add(1)
	m.schedule()
}

func (m *mailbox) popSys() any {
	if m.sysCount.Load() == 0 {
		return nil // posted ones are counted after they are queued
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sys) == 0 {
		return nil
	}
	msg := m.sys[0]
	m.sys[0] = nil
	m.sys = m.sys[1:]
	if len(m.sys) == 0 {
		m.sys = nil
	}
	return msg
}

// close makes every later user message a silent drop: the stream is closing
// and the client will resume from its Last-Event-ID. Queued messages are
// dropped too, so their memory goes at once.
func (m *mailbox) close() {
	m.mu.Lock()
	m.closed = true
	clear(m.one[:])
	m.queue, m.head, m.n, m.bytes, m.marks = nil, 0, 0, 0, 0
	m.userCount.Store(0)
	m.mu.Unlock()
}

// pending is the number of user messages queued behind the one being handled.
func (m *mailbox) pending() int { return int(m.userCount.Load()) }

func (m *mailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker, m.dispatcher = invoker, dispatcher
	if p, ok := dispatcher.(*workerPool); ok {
		m.pool = p
	} else {
		m.process = func() { m.processMessages(false) }
	}
}

// Start is called by protoactor once the handlers are registered: from here
// on, posts run the actor.
func (m *mailbox) Start() {
	m.scheduled.Store(false)
	m.schedule()
}

func (m *mailbox) UserMessageCount() int { return m.pending() }

func (m *mailbox) schedule() {
	if m.scheduled.CompareAndSwap(false, true) {
		if m.congested.Load() {
			go m.processMessages(true)
			return
		}
		if m.pool != nil {
			m.pool.run(m)
		} else {
			m.dispatcher.Schedule(m.process)
		}
	}
}

// processMessages is protoactor's default mailbox loop: system messages
// first, then user messages unless suspended, yielding every throughput
// messages; it re-checks after going idle so no message is stranded.
//
// On the dispatcher (own false), a mailbox that becomes congested stops and
// goes on on a goroutine of its own (own true), keeping scheduled set.
func (m *mailbox) processMessages(own bool) {
	for {
		m.run(own)
		if !own && m.congested.Load() && (m.sysCount.Load() > 0 || m.userCount.Load() > 0) {
			go m.processMessages(true)
			return
		}
		m.scheduled.Store(false)
		if m.sysCount.Load() == 0 && (m.suspended.Load() || m.userCount.Load() == 0) {
			return
		}
		if !m.scheduled.CompareAndSwap(false, true) {
			return // another poster scheduled a run
		}
	}
}

func (m *mailbox) run(own bool) {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	throughput := m.dispatcher.Throughput()
	for i := 0; ; i++ {
		if i > throughput {
			i = 0
			runtime.Gosched()
		}
		if msg = m.popSys(); msg != nil {
			m.sysCount.Add(-1)
			switch msg.(type) {
			case *actor.SuspendMailbox:
				m.suspended.Store(true)
			case *actor.ResumeMailbox:
				m.suspended.Store(false)
			default:
				m.invoker.InvokeSystemMessage(msg)
			}
			continue
		}
		if m.suspended.Load() {
			return
		}
		if msg = m.popUser(); msg == nil {
			return
		}
		m.invoker.InvokeUserMessage(msg)
		if !own && m.congested.Load() {
			return // the rest runs on a goroutine of its own
		}
	}
}
