package actors

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
	"github.com/finexbot/eventhub/jobs"
)

// Run with e.g.
//
//	go test -run='^$' -bench=. -benchtime=2s ./actors/

// fanoutSink counts what every stream of a fan-out benchmark writes, and
// signals once the count reaches target.
type fanoutSink struct {
	frames  atomic.Int64
	bytes   atomic.Int64
	target  atomic.Int64
	reached chan struct{} // capacity 1: the benchmark may not be waiting yet
}

// fanoutConn is a client socket with nothing behind it: Read blocks until
// Close, Write only counts. No buffer is kept, so 100,000 of them are cheap.
// The hub writes one frame per Write call (it writes a single pending frame
// with Write, and several with net.Buffers.WriteTo, which on a net.Conn
// that is not a socket calls Write once per buffer), so counting Write calls
// counts frames.
type fanoutConn struct {
	closed    chan struct{}
	closeOnce sync.Once
	sink      *fanoutSink
}

func (c *fanoutConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *fanoutConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.sink.bytes.Add(int64(len(p)))
	if c.sink.frames.Add(1) == c.sink.target.Load() {
		select {
		case c.sink.reached <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (c *fanoutConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *fanoutConn) LocalAddr() net.Addr              { return testAddr{} }
func (c *fanoutConn) RemoteAddr() net.Addr             { return testAddr{} }
func (c *fanoutConn) SetDeadline(time.Time) error      { return nil }
func (c *fanoutConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fanoutConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkFanout publishes one event to N streams, in process (no
// sockets), and waits until all N have written it: the cost of the hub, the
// user actors and the conn actors per event and per delivery. The streams
// belong to one user each (the standard case: a user's tabs share one
// stream), or all to one user (users=1), each allowed on the event's asset,
// so every stream gets every event. The heartbeat is an hour: no ping
// interferes.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		for _, users := range []int{n, 1} {
			b.Run("subscribers="+strconv.Itoa(n)+"/users="+strconv.Itoa(users), func(b *testing.B) { benchFanout(b, n, users, 1) })
		}
	}
}

// BenchmarkFanoutSelective is BenchmarkFanout with one user per stream,
// user i allowed only on asset a<i mod assets>, and each round publishing
// one event on every asset (in a fixed shuffled order): every stream gets
// one event a round, as in the broadcast, but each event reaches only the
// every assets-th user, scattered over memory as a real audience is. Its
// ns/delivery against BenchmarkFanout's with the same subscribers is what
// selectivity costs the hub's own code.
func BenchmarkFanoutSelective(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		for _, assets := range []int{100, 1000} {
			b.Run("subscribers="+strconv.Itoa(n)+"/assets="+strconv.Itoa(assets), func(b *testing.B) { benchFanout(b, n, n, assets) })
		}
	}
}

func benchFanout(b *testing.B, n, users, assets int) {
	b.ReportAllocs()
	before := heapAndStacks()
	h := newTestHub(b, Config{Heartbeat: time.Hour, History: 1024})
	// Shut the hub down without newTestHub's time bound: closing 100,000
	// streams takes a while. Registered after newTestHub's, so it runs first.
	b.Cleanup(func() {
		if err := h.Shutdown(context.Background()); err != nil {
			b.Errorf("shutdown: %v", err)
		}
	})
	sink := &fanoutSink{reached: make(chan struct{}, 1)}
	perms := make([]*authz.Permissions, assets)
	events := make([]jobs.Event, assets)
	for a := range assets {
		asset := "a" + strconv.Itoa(a)
		perms[a] = permsFor([]string{asset}, nil)
		events[a] = mkEvent(b, jobs.Growth, "j-"+asset, jobs.Completed, asset, "")
	}
	// A fixed order, not the users': each event's audience is scattered.
	rand.New(rand.NewPCG(1, uint64(assets))).Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	for i := range n {
		user := "u" + strconv.Itoa(i%users)
		tk, err := h.Admit(user)
		if err != nil {
			b.Fatal(err)
		}
		c := &fanoutConn{closed: make(chan struct{}), sink: sink}
		if err := h.Open(c, tk, h.authorized(b, perms[(i%users)%assets], StreamRequest{User: user})); err != nil {
			b.Fatal(err)
		}
	}
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	deliver := func() {
		// Every earlier event has been written everywhere: frames is still.
		sink.target.Store(sink.frames.Load() + int64(n))
		if _, err := h.Publish(context.Background(), events); err != nil {
			b.Fatal(err)
		}
		timeout.Reset(time.Minute)
		select {
		case <-sink.reached:
		case <-timeout.C:
			b.Fatalf("%d of %d deliveries after a minute", sink.frames.Load()-sink.target.Load()+int64(n), n)
		}
	}
	// Warm up: every stream attached, every actor has run once.
	deliver()
	after := heapAndStacks()
	for b.Loop() {
		deliver()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*int64(n)), "ns/delivery")
	b.ReportMetric(float64(after-before)/float64(n), "heap+stack-B/stream")
}

// heapAndStacks is the memory in use by the heap and goroutine stacks,
// after a collection.
func heapAndStacks() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// BenchmarkEncodeFrame encodes an event's SSE frame into a reused buffer,
// as the hub does once per event.
func BenchmarkEncodeFrame(b *testing.B) {
	typical := jobs.Event{Type: jobs.Matrix, JobID: "j-81", Status: jobs.Completed, Timestamp: testTime,
		Data: json.RawMessage(`{"assetId":"a1","scenarioId":"s3"}`), AssetID: "a1", ScenarioID: "s3"}
	large := typical
	large.Data = json.RawMessage(`{"assetId":"a1","scenarioId":"s3","result":"` + strings.Repeat("x", 4000) + `"}`)
	for _, bc := range []struct {
		name string
		ev   *jobs.Event
	}{{"typical", &typical}, {"data=4KB", &large}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := appendEventFrame(nil, 1042, bc.ev)
			b.SetBytes(int64(len(buf)))
			id := uint64(1_795_000_000_000_000)
			for b.Loop() {
				id++
				buf = appendEventFrame(buf[:0], id, bc.ev)
			}
		})
	}
}

// nopInvoker is an actor that does nothing with its messages but count them.
type nopInvoker struct{ n atomic.Int64 }

func (i *nopInvoker) InvokeSystemMessage(any)  {}
func (i *nopInvoker) InvokeUserMessage(any)    { i.n.Add(1) }
func (i *nopInvoker) EscalateFailure(any, any) {}

// BenchmarkMailboxPost measures posting a frame to a conn actor's mailbox.
func BenchmarkMailboxPost(b *testing.B) {
	f := &frame{id: 1}

	// The consumer drains inline (a synchronized dispatcher runs the
	// mailbox on the poster's goroutine): post, schedule, pop, invoke.
	b.Run("accepted/inline", func(b *testing.B) {
		b.ReportAllocs()
		m := newMailbox(64, 1<<30, func(bool) { b.Fatal("refused") })
		m.RegisterHandlers(&nopInvoker{}, actor.NewSynchronizedDispatcher(300))
		m.Start()
		for b.Loop() {
			m.PostUserMessage(f)
		}
	})

	// One poster (as a user actor is) and the consumer on its own goroutine,
	// as protoactor runs it. The poster waits while the mailbox is full, so
	// this is the accepted path under contention (refused/op should be ~0).
	b.Run("accepted/concurrent", func(b *testing.B) {
		b.ReportAllocs()
		var refused atomic.Int64
		inv := &nopInvoker{}
		m := newMailbox(64, 1<<30, func(bool) { refused.Add(1) })
		m.RegisterHandlers(inv, actor.NewDefaultDispatcher(300))
		m.Start()
		var posted int64
		for b.Loop() {
			for m.pending() >= 64 {
				runtime.Gosched()
			}
			m.PostUserMessage(f)
			posted++
		}
		// Let the consumer finish before the next run.
		deadline := time.Now().Add(waitTimeout)
		for inv.n.Load()+refused.Load() < posted && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		if got := inv.n.Load() + refused.Load(); got != posted {
			b.Fatalf("received %d + refused %d != posted %d", inv.n.Load(), refused.Load(), posted)
		}
		b.ReportMetric(float64(refused.Load())/float64(posted), "refused/op")
	})

	// The mailbox is full and its consumer is stuck: every post is refused
	// and counted, and must stay cheap and never block.
	b.Run("refused", func(b *testing.B) {
		b.ReportAllocs()
		var refused atomic.Int64
		m := newMailbox(64, 1<<30, func(bool) { refused.Add(1) })
		m.RegisterHandlers(&nopInvoker{}, &manualDispatcher{}) // never runs
		m.Start()
		for range 64 {
			m.PostUserMessage(f)
		}
		for b.Loop() {
			m.PostUserMessage(f)
		}
		if got := refused.Load(); got != int64(b.N) {
			b.Fatalf("refused %d of %d", got, b.N)
		}
	})
}
