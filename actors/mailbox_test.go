package actors

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/jobs"
)

// recorder is a MessageInvoker that records what the mailbox hands it, in
// order. onUser, when set, runs on each user message (and may panic).
type recorder struct {
	onUser func(msg any)

	mu       sync.Mutex // guards the fields below
	log      []any
	failures []failure
}

type failure struct{ reason, msg any }

var _ actor.MessageInvoker = (*recorder)(nil)

func (r *recorder) InvokeSystemMessage(msg any) {
	r.mu.Lock()
	r.log = append(r.log, msg)
	r.mu.Unlock()
}

func (r *recorder) InvokeUserMessage(msg any) {
	r.mu.Lock()
	r.log = append(r.log, msg)
	r.mu.Unlock()
	if r.onUser != nil {
		r.onUser(msg)
	}
}

func (r *recorder) EscalateFailure(reason, msg any) {
	r.mu.Lock()
	r.failures = append(r.failures, failure{reason, msg})
	r.mu.Unlock()
}

func (r *recorder) got() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.log...)
}

// manualDispatcher runs nothing until the test says so, which makes the
// mailbox's state between posts and runs observable.
type manualDispatcher struct {
	mu  sync.Mutex
	fns []func()
}

func (d *manualDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	d.fns = append(d.fns, fn)
	d.mu.Unlock()
}

func (d *manualDispatcher) Throughput() int { return 300 }

// drain runs every scheduled run, and any they schedule, to completion.
func (d *manualDispatcher) drain() {
	for {
		d.mu.Lock()
		if len(d.fns) == 0 {
			d.mu.Unlock()
			return
		}
		fn := d.fns[0]
		d.fns = d.fns[1:]
		d.mu.Unlock()
		fn()
	}
}

// sysMsg stands for a protoactor system message (Started, Stop, Watch…).
type sysMsg int

// newManualMailbox is a mailbox of the given capacity driven by a manual
// dispatcher; overflow counts refusals.
func newManualMailbox(capacity int) (m *mailbox, d *manualDispatcher, r *recorder, overflow *atomic.Int64) {
	overflow = new(atomic.Int64)
	m = newMailbox(capacity, 1<<30, func(bool) { overflow.Add(1) })
	d, r = &manualDispatcher{}, &recorder{}
	m.RegisterHandlers(r, d)
	m.Start()
	return m, d, r, overflow
}

func seq(from, to int) []any {
	var out []any
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestMailboxHeldUntilStart: a stream can be posted to before its actor is
// spawned; nothing runs (there is no invoker yet) until Start.
func TestMailboxHeldUntilStart(t *testing.T) {
	t.Parallel()
	var overflow atomic.Int64
	m := newMailbox(4, 1<<30, func(bool) { overflow.Add(1) })
	m.PostUserMessage(1)  // before RegisterHandlers: must not schedule
	if !m.postAlways(2) { // nor this
		t.Fatal("postAlways refused on a new mailbox")
	}
	m.PostSystemMessage(sysMsg(0)) // nor this
	d, r := &manualDispatcher{}, &recorder{}
	m.RegisterHandlers(r, d)
	d.drain()
	if got := r.got(); len(got) != 0 {
		t.Fatalf("ran %v before Start", got)
	}
	m.Start()
	d.drain()
	if got, want := r.got(), []any{sysMsg(0), 1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("after Start: delivered %v, want %v", got, want)
	}
	if overflow.Load() != 0 {
		t.Errorf("overflow %d", overflow.Load())
	}
}

func TestMailboxRefusesWhenFull(t *testing.T) {
	t.Parallel()
	m, d, r, overflow := newManualMailbox(3)
	for i := 1; i <= 5; i++ {
		m.PostUserMessage(i)
	}
	if got := overflow.Load(); got != 2 {
		t.Errorf("overflow called %d times, want 2", got)
	}
	if m.pending() != 3 || m.UserMessageCount() != 3 {
		t.Errorf("pending %d, UserMessageCount %d, want 3", m.pending(), m.UserMessageCount())
	}
	d.drain()
	if got, want := r.got(), seq(1, 3); !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if m.pending() != 0 {
		t.Errorf("pending %d after the run, want 0", m.pending())
	}
	// Room again: the next post is accepted.
	m.PostUserMessage(6)
	d.drain()
	if got := r.got(); got[len(got)-1] != 6 || overflow.Load() != 2 {
		t.Errorf("after draining, a post was refused: delivered %v, overflow %d", got, overflow.Load())
	}
}

func TestMailboxSystemMessagesNeverRefused(t *testing.T) {
	t.Parallel()
	m, d, r, overflow := newManualMailbox(2)
	m.PostUserMessage(1)
	m.PostUserMessage(2)
	m.PostUserMessage(3) // refused: full
	const nsys = 50
	for i := range nsys {
		m.PostSystemMessage(sysMsg(i))
	}
	if got := overflow.Load(); got != 1 {
		t.Fatalf("overflow called %d times, want 1 (system messages are never refused)", got)
	}
	d.drain()
	// System messages first, in order, then the user messages.
	var want []any
	for i := range nsys {
		want = append(want, sysMsg(i))
	}
	want = append(want, 1, 2)
	if got := r.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v\nwant %v", got, want)
	}
}

func TestMailboxSuspendResume(t *testing.T) {
	t.Parallel()
	m, d, r, _ := newManualMailbox(8)
	m.PostSystemMessage(&actor.SuspendMailbox{})
	m.PostUserMessage(1)
	m.PostSystemMessage(sysMsg(7))
	d.drain()
	// Suspend and Resume are the mailbox's own: they never reach the actor.
	// While suspended, system messages still flow; user messages wait.
	if got, want := r.got(), []any{sysMsg(7)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("while suspended: delivered %v, want %v", got, want)
	}
	if m.pending() != 1 {
		t.Fatalf("pending %d while suspended, want 1", m.pending())
	}
	m.PostSystemMessage(&actor.ResumeMailbox{})
	d.drain()
	if got, want := r.got(), []any{sysMsg(7), 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("after resume: delivered %v, want %v", got, want)
	}
}

func TestMailboxPostAlwaysIgnoresBound(t *testing.T) {
	t.Parallel()
	m, d, r, overflow := newManualMailbox(2)
	m.PostUserMessage(1)
	m.PostUserMessage(2)
	for i := 3; i <= 7; i++ {
		if !m.postAlways(i) {
			t.Fatalf("postAlways(%d) refused on an open mailbox", i)
		}
	}
	if overflow.Load() != 0 || m.pending() != 7 {
		t.Fatalf("overflow %d, pending %d; want 0, 7", overflow.Load(), m.pending())
	}
	m.PostUserMessage(8) // the bound still holds for ordinary posts
	if overflow.Load() != 1 {
		t.Fatalf("a post over the bound after postAlways was not refused")
	}
	d.drain()
	if got, want := r.got(), seq(1, 7); !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestMailboxClose(t *testing.T) {
	t.Parallel()
	m, d, r, overflow := newManualMailbox(4)
	m.PostUserMessage(1)
	m.PostUserMessage(2)
	m.close()
	if m.pending() != 0 || m.UserMessageCount() != 0 {
		t.Errorf("pending %d after close, want 0", m.pending())
	}
	m.mu.Lock()
	if m.queue != nil || m.n != 0 {
		t.Errorf("queue still holds %d messages (%d slots) after close", m.n, len(m.queue))
	}
	m.mu.Unlock()
	for i := range 10 {
		m.PostUserMessage(100 + i)
	}
	if m.postAlways(200) {
		t.Errorf("postAlways after close reported true")
	}
	if got := overflow.Load(); got != 0 {
		t.Errorf("overflow called %d times after close: a closing stream is not a slow one", got)
	}
	if m.pending() != 0 {
		t.Errorf("pending %d after posting to a closed mailbox, want 0", m.pending())
	}
	// System messages still arrive: the actor must be able to stop.
	m.PostSystemMessage(sysMsg(1))
	d.drain()
	if got, want := r.got(), []any{sysMsg(1)}; !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v after close, want %v", got, want)
	}
}

// ringLen is the ring's current size, and whether it is the mailbox's own
// slot, read under the mailbox's lock.
func ringLen(m *mailbox) (size int, own bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue), len(m.queue) == 1 && &m.queue[0] == &m.one[0]
}

func TestMailboxRingGrowsAndShrinks(t *testing.T) {
	t.Parallel()
	m, d, r, overflow := newManualMailbox(64)
	if size, own := ringLen(m); !own {
		t.Fatalf("a new mailbox holds a ring of %d slots; it should hold its own one slot, and grow on demand", size)
	}
	// The ring grows on demand: it holds what is queued, starts small (a
	// few words for an idle stream) and at most doubles when it grows.
	for i := 1; i <= 64; i++ {
		m.PostUserMessage(i)
		size, _ := ringLen(m)
		if size < i || size > max(4, 2*i) {
			t.Fatalf("after %d posts the ring has %d slots, want %d..%d", i, size, i, max(4, 2*i))
		}
	}
	m.PostUserMessage(65) // refused: full, the ring does not grow
	if size, _ := ringLen(m); size != 64 || overflow.Load() != 1 {
		t.Fatalf("over capacity: ring %d slots, overflow %d; want 64, 1", size, overflow.Load())
	}
	d.drain()
	if got := r.got(); !reflect.DeepEqual(got, seq(1, 64)) {
		t.Fatalf("delivered %v", got)
	}
	if size, own := ringLen(m); !own {
		t.Errorf("after a burst of 64 the ring keeps %d slots; it should give them back", size)
	}
	// A small burst keeps its small ring (at most 16 slots): no churn for a
	// stream that gets an event now and then.
	for i := range 3 {
		m.PostUserMessage(i)
	}
	d.drain()
	if size, own := ringLen(m); own || size > 16 {
		t.Errorf("after a burst of 3 the ring has %d slots (its own slot %v), want a small ring kept", size, own)
	}
}

// TestMailboxRingWraps grows the ring while its contents wrap around the
// end, which must unwrap them in order.
func TestMailboxRingWraps(t *testing.T) {
	t.Parallel()
	m := newMailbox(100, 1<<30, func(bool) { t.Error("refused") })
	var got []any
	push := func(from, to int) {
		for i := from; i <= to; i++ {
			if !m.push(i, false) {
				t.Fatalf("push(%d) refused", i)
			}
		}
	}
	pop := func(n int) {
		for range n {
			got = append(got, m.popUser())
		}
	}
	push(1, 3) // ring of 4: [1 2 3 _]
	pop(2)     // head at 2
	push(4, 6) // wraps: [5 6 3 4]
	if size, _ := ringLen(m); size != 4 {
		t.Fatalf("ring has %d slots, want 4 (no growth yet)", size)
	}
	push(7, 20) // grows twice while wrapped
	pop(18)
	if m.popUser() != nil {
		t.Errorf("popUser on an empty ring returned a message")
	}
	if want := seq(1, 20); !reflect.DeepEqual(got, want) {
		t.Errorf("popped %v, want %v", got, want)
	}
}

// TestMailboxPanicEscalates: a message whose handling panics is escalated to
// the supervisor with the message, and the mailbox goes on with the next.
func TestMailboxPanicEscalates(t *testing.T) {
	t.Parallel()
	m, d, r, _ := newManualMailbox(8)
	r.onUser = func(msg any) {
		if msg == "boom" {
			panic("kaboom")
		}
	}
	m.PostUserMessage("a")
	m.PostUserMessage("boom")
	m.PostUserMessage("c")
	d.drain()
	if got, want := r.got(), []any{"a", "boom", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := []failure{{"kaboom", "boom"}}; !reflect.DeepEqual(r.failures, want) {
		t.Errorf("escalated %v, want %v", r.failures, want)
	}
}

// posted is a user message of the race test: poster p's seq-th message.
type posted struct{ poster, seq int }

// TestMailboxRace posts from several goroutines to a real protoactor actor
// whose mailbox is ours, first while the actor is blocked (every post over
// capacity must return at once, refused and counted), then while it is
// merely slow. Every message is either received or refused, never both,
// never lost; each poster's messages arrive in the order it posted them.
func TestMailboxRace(t *testing.T) {
	t.Parallel()
	const (
		capacity = 8
		posters  = 8
		perPhase = 2000 // messages per poster per phase
	)
	var refused, received, outOfOrder atomic.Int64
	mb := newMailbox(capacity, 1<<30, func(bool) { refused.Add(1) })
	gate := make(chan struct{}) // the actor is blocked until this is closed
	var openGate sync.Once
	release := func() { openGate.Do(func() { close(gate) }) }
	t.Cleanup(release)

	last := make([]int, posters) // owned by the actor: the last seq seen per poster
	system := quietSystem()
	t.Cleanup(system.Shutdown)
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		msg, ok := ctx.Message().(posted)
		if !ok {
			return // Started and friends
		}
		<-gate
		if msg.seq <= last[msg.poster] {
			outOfOrder.Add(1)
		}
		last[msg.poster] = msg.seq
		// Slow-ish: a little work per message, so posters outrun it.
		for i := 0; i < 200; i++ {
			runtime.Gosched()
		}
		received.Add(1)
	}, actor.WithMailbox(func() actor.Mailbox { return mb }))
	pid := system.Root.Spawn(props)
	t.Cleanup(func() { system.Root.Stop(pid) })

	post := func(phase int) {
		var wg sync.WaitGroup
		for p := range posters {
			wg.Go(func() {
				for i := 1; i <= perPhase; i++ {
					system.Root.Send(pid, posted{poster: p, seq: phase*perPhase + i})
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Fatalf("phase %d: posters still blocked after %v", phase, waitTimeout)
		}
	}
	settle := func(sent int64) {
		t.Helper()
		waitFor(t, "every message received or refused", func() bool {
			return received.Load()+refused.Load() >= sent
		})
		if got := received.Load() + refused.Load(); got != sent {
			t.Fatalf("received %d + refused %d = %d, want %d sent", received.Load(), refused.Load(), got, sent)
		}
		if mb.pending() != 0 {
			t.Fatalf("pending %d after everything was handled", mb.pending())
		}
	}

	// Phase 1: the actor is blocked on its first message. The posts that fit
	// are queued; every other one returns at once and is counted.
	post(0)
	sent := int64(posters * perPhase)
	if got, least := refused.Load(), sent-(capacity+1); got < least {
		t.Fatalf("with the actor blocked: refused %d of %d, want at least %d", got, sent, least)
	}
	if received.Load() != 0 {
		t.Fatalf("the blocked actor received %d messages", received.Load())
	}
	release()
	settle(sent)
	if got := received.Load(); got < 1 || got > capacity+1 {
		t.Errorf("phase 1: received %d, want 1..%d (what fit while blocked)", got, capacity+1)
	}

	// Phase 2: the actor is slow but running.
	before := received.Load()
	post(1)
	sent += posters * perPhase
	settle(sent)
	if received.Load() == before {
		t.Errorf("phase 2: nothing received")
	}
	if n := outOfOrder.Load(); n != 0 {
		t.Errorf("%d messages arrived out of their poster's order", n)
	}
	t.Logf("sent %d, received %d, refused %d", sent, received.Load(), refused.Load())
}

// TestMailboxOrder: one poster, a mailbox large enough for all, a real
// goroutine dispatcher: everything arrives, in order.
func TestMailboxOrder(t *testing.T) {
	t.Parallel()
	const n = 5000
	m := newMailbox(n, 1<<30, func(bool) { t.Error("refused") })
	done := make(chan struct{})
	var got []int // written by the mailbox's run, read after done
	r := &recorder{onUser: func(msg any) {
		got = append(got, msg.(int))
		if len(got) == n {
			close(done)
		}
	}}
	m.RegisterHandlers(r, actor.NewDefaultDispatcher(16))
	m.Start()
	for i := range n {
		m.PostUserMessage(i)
	}
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("not everything delivered within %v", waitTimeout)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d is %d: %v", i, v, fmt.Sprint(got[max(0, i-3):min(len(got), i+3)]))
		}
	}
}

// TestMailboxBytes: the mailbox refuses a frame that would take its queued
// frames over its byte budget, even with room in frames, and says so; what
// is popped or dropped at close gives its bytes back.
func TestMailboxBytes(t *testing.T) {
	t.Parallel()
	var frames, bytes atomic.Int64
	m := newMailbox(64, 1000, func(b bool) {
		if b {
			bytes.Add(1)
		} else {
			frames.Add(1)
		}
	})
	d, r := &manualDispatcher{}, &recorder{}
	m.RegisterHandlers(r, d)
	m.Start()
	f := &frame{id: 1, bytes: make([]byte, 400)}
	m.PostUserMessage(f)
	m.PostUserMessage(f)
	m.PostUserMessage(3) // not a frame: counts against frames only
	if bytes.Load() != 0 || frames.Load() != 0 {
		t.Fatalf("refused within the budget: %d by bytes, %d by frames", bytes.Load(), frames.Load())
	}
	m.PostUserMessage(f) // 1200 > 1000
	if bytes.Load() != 1 || frames.Load() != 0 {
		t.Fatalf("over the byte budget: %d refused by bytes, %d by frames; want 1, 0", bytes.Load(), frames.Load())
	}
	if !m.postAlways(f) {
		t.Fatal("postAlways refused over the byte budget")
	}
	d.drain()
	if got := len(r.got()); got != 4 {
		t.Fatalf("delivered %d messages, want 4", got)
	}
	m.mu.Lock()
	left := m.bytes
	m.mu.Unlock()
	if left != 0 {
		t.Errorf("%d bytes counted in an empty mailbox", left)
	}
	m.PostUserMessage(f)
	m.PostUserMessage(f)
	m.close()
	m.mu.Lock()
	left = m.bytes
	m.mu.Unlock()
	if left != 0 {
		t.Errorf("%d bytes counted after close", left)
	}
}

// TestMailboxRevoke: revoke drops the queued frames it is told to deny,
// keeps the rest in order, and hands the actor revokeMark before any of
// them; a queued replay is reported.
func TestMailboxRevoke(t *testing.T) {
	t.Parallel()
	m, d, r, _ := newManualMailbox(64)
	fs := make([]*frame, 6)
	for i := range fs {
		fs[i] = &frame{id: uint64(i + 1), bytes: make([]byte, 10)}
		m.PostUserMessage(fs[i])
	}
	if m.revoke(func(f *frame) bool { return f.id%2 == 0 }) {
		t.Error("revoke reported a replay; none is queued")
	}
	if got := m.pending(); got != 4 {
		t.Errorf("pending() = %d after revoke, want 3 frames and the mark", got)
	}
	d.drain()
	want := []any{revokeMark, fs[0], fs[2], fs[4]}
	if got := r.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v, want the mark, then frames 1, 3, 5", got)
	}
	m.mu.Lock()
	left := m.bytes
	m.mu.Unlock()
	if left != 0 {
		t.Errorf("%d bytes counted in an empty mailbox", left)
	}
	m.postAlways(&replay{})
	if !m.revoke(func(*frame) bool { return true }) {
		t.Error("revoke did not report the queued replay")
	}
}

// TestMailboxConflateRandom: a conflating mailbox, under a random
// interleaving of posts (jobs' statuses, most of them progress) and takes,
// gives exactly what a plain list model of the rule gives: a job's progress
// frame still queued, with nothing else of the job after it, is dropped when
// a newer one comes, which goes to the end. Ids taken only grow, each job's
// statuses keep their order, a job's latest progress is never dropped, and
// the mailbox refuses only when full of frames that cannot be conflated.
func TestMailboxConflateRandom(t *testing.T) {
	t.Parallel()
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		capacity := 1 + rng.IntN(12)
		var refused int
		m := newMailbox(capacity, 1<<30, func(bool) { refused++ })
		m.conflate = true
		var model []*frame
		modelRefused, conflated := 0, 0
		var id uint64
		var taken []*frame
		for range 2000 {
			if rng.IntN(3) > 0 {
				id++
				st := jobs.Started
				switch rng.IntN(8) {
				case 0:
					st = jobs.Queued
				case 1:
					st = jobs.Completed
				}
				f := &frame{id: id, bytes: make([]byte, 1+rng.IntN(50)), ev: jobs.Event{Type: jobs.Growth, JobID: "j" + strconv.Itoa(rng.IntN(5)), Status: st}}
				m.PostUserMessage(f)
				// The model: drop the job's queued progress unless another
				// status of the job comes after it; then queue, unless full.
				if st == jobs.Started {
					for i := len(model) - 1; i >= 0; i-- {
						if model[i].ev.JobID != f.ev.JobID {
							continue
						}
						if model[i].ev.Status == jobs.Started {
							model = slices.Delete(model, i, i+1)
							conflated++
						}
						break
					}
				}
				if len(model) >= capacity {
					modelRefused++
				} else {
					model = append(model, f)
				}
			} else if msg := m.popUser(); msg != nil {
				f := msg.(*frame)
				if len(model) == 0 || model[0] != f {
					t.Fatalf("seed %d: took frame %d, the model's next is %v", seed, f.id, model)
				}
				model = model[1:]
				taken = append(taken, f)
			}
			bytes := 0
			for _, f := range model {
				bytes += len(f.bytes)
			}
			if int(m.bytes) != bytes || m.pending() != len(model) {
				t.Fatalf("seed %d: mailbox holds %d frames, %d bytes; the model %d, %d", seed, m.pending(), m.bytes, len(model), bytes)
			}
		}
		if refused != modelRefused || m.takeConflated() != conflated {
			t.Fatalf("seed %d: refused %d; the model refused %d and conflated %d", seed, refused, modelRefused, conflated)
		}
		for i := 1; i < len(taken); i++ {
			if taken[i].id <= taken[i-1].id {
				t.Fatalf("seed %d: id %d taken after %d", seed, taken[i].id, taken[i-1].id)
			}
		}
	}
}
