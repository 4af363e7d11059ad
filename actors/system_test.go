package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// TestNewSystemRegistry: the dense registry holds what protoactor
// registered while making the system, takes spawned actors, delivers to
// them, and lets them go when they stop.
func TestNewSystemRegistry(t *testing.T) {
	system := quietSystem()
	reg := system.ProcessRegistry
	if n := len(reg.LocalPIDs.LocalPIDs); n != 1 {
		t.Fatalf("%d buckets, want 1", n)
	}
	if _, ok := reg.GetLocal("eventstream"); !ok {
		t.Fatal("protoactor's event stream is not in the registry")
	}
	count := func() int {
		n := 0
		for _, b := range reg.LocalPIDs.LocalPIDs {
			n += b.Count()
		}
		return n
	}
	base := count()
	got := make(chan int, 1000)
	pids := make([]*actor.PID, 1000)
	for i := range pids {
		pids[i] = system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if n, ok := ctx.Message().(int); ok {
				got <- n
			}
		}))
	}
	if n := count(); n != base+len(pids) {
		t.Fatalf("%d processes after %d spawns, want %d", n, len(pids), base+len(pids))
	}
	for i, pid := range pids {
		system.Root.Send(pid, i)
	}
	seen := make([]bool, len(pids))
	for range pids {
		select {
		case n := <-got:
			seen[n] = true
		case <-time.After(waitTimeout):
			t.Fatal("a message did not arrive")
		}
	}
	for _, pid := range pids {
		if err := system.Root.StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != base {
		t.Fatalf("%d processes after every actor stopped, want %d", n, base)
	}
}
