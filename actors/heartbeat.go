package actors

import (
	"math/rand/v2"

	"github.com/prometheus/client_golang/prometheus"
	"sync"
	"time"
)

// wheelSlots is how many slots the heartbeat wheel has: a stream's pings
// fall at one of this many phases of the interval.
const wheelSlots = 64

// wheel holds every open stream, each in one slot picked at random, and
// visits one slot per tick: a stream that wrote nothing since its last visit
// gets a heartbeat. This costs one goroutine per hub instead of a timer per
// stream, and a stream with traffic is never woken for a ping. It is also
// the hub's list of open streams, for Shutdown.
//
// Open and the conn actors add and remove streams; the wheel goroutine,
// owned by the Hub and stopped by Shutdown, reads them.
type wheel struct {
	mu    sync.Mutex // guards slots and n
	slots [wheelSlots]map[*stream]struct{}
	n     int
}

func (w *wheel) add(s *stream) {
	slot := rand.IntN(wheelSlots)
	w.mu.Lock()
	if w.slots[slot] == nil {
		w.slots[slot] = map[*stream]struct{}{}
	}
	w.slots[slot][s] = struct{}{}
	s.slot = slot
	w.n++
	w.mu.Unlock()
}

func (w *wheel) remove(s *stream) {
	w.mu.Lock()
	if _, ok := w.slots[s.slot][s]; ok {
		delete(w.slots[s.slot], s)
		w.n--
	}
	w.mu.Unlock()
}

// all returns every stream in the wheel.
func (w *wheel) all() []*stream {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*stream, 0, w.n)
	for _, slot := range w.slots {
		for s := range slot {
			out = append(out, s)
		}
	}
	return out
}

// run ticks through the slots every interval/wheelSlots until stop closes.
func (w *wheel) run(interval time.Duration, ping *heartbeat, depth prometheus.Observer, stop <-chan struct{}) {
	t := time.NewTicker(interval / wheelSlots)
	defer t.Stop()
	for slot := 0; ; slot = (slot + 1) % wheelSlots {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		for s := range w.slots[slot] {
			depth.Observe(float64(s.mb.pending()))
			if !s.wrote.Swap(false) {
				s.mb.PostUserMessage(ping)
			}
		}
		w.mu.Unlock()
	}
}
