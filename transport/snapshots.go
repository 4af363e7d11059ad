package transport

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// snapshotSlots bounds the GET /api/jobs answers being written at once,
// for the whole server and for one user. The hub bounds each answer's
// bytes (--snapshot-bytes); this bounds how many of them a client that does
// not read (or many such clients) can make the hub hold, so that the answers
// in flight cost at most max × --snapshot-bytes.
//
// A slot is taken before the answer is built and given back once it has
// been written, or its connection failed: fasthttp closes the answer's
// body (heldAnswer) either way.
type snapshotSlots struct {
	max, perUser int
	refused      prometheus.Counter

	mu    sync.Mutex // guards total and users
	total int
	users map[string]int
}

func newSnapshotSlots(max, perUser int, reg prometheus.Registerer) (*snapshotSlots, error) {
	s := &snapshotSlots{max: max, perUser: perUser, users: map[string]int{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventhub_snapshots_refused_total",
			Help: "GET /api/jobs answered 429 because as many job lists as allowed were being written at once, for the user or for the server.",
		})}
	return s, reg.Register(s.refused)
}

// take reserves a slot for user, or reports that none is free.
func (s *snapshotSlots) take(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.max || s.users[user] >= s.perUser {
		s.refused.Inc()
		return false
	}
	s.total++
	s.users[user]++
	return true
}

// give returns user's slot.
func (s *snapshotSlots) give(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.users[user]--; s.users[user] <= 0 {
		delete(s.users, user)
	}
}
