package jobs

import (
	"sync"
	"sync/atomic"
	"time"
)

// How long a refused client is told to wait when no bucket says better: a
// user's jobs in flight end at the pace of the workers, and a full queue
// drains at it too.
const (
	retryInFlight  = 5 * time.Second
	retryQueueFull = 10 * time.Second
)

// userLimits holds each user's budgets on this node: a token bucket of
// submissions (rate a second, up to burst) and a count of jobs in flight
// (admitted and not yet ended). Its methods are safe for concurrent use;
// mu guards users and lastSweep.
//
// A user is forgotten once they have nothing in flight and their bucket has
// refilled: a forgotten user comes back with a full bucket, exactly what
// they would have had, so forgetting changes nothing but memory. The map
// holds the users with jobs in flight (bounded by the queues) and those who
// submitted within the last burst/rate.
type userLimits struct {
	perUser int     // jobs in flight per user; 0 means no limit
	rate    float64 // tokens a second; 0 means no limit
	burst   float64
	now     func() time.Time

	mu        sync.Mutex
	users     map[string]*userBudget
	lastSweep time.Time
}

type userBudget struct {
	tokens   float64
	at       time.Time // when tokens was last brought up to date
	inFlight int
}

func newUserLimits(perUser int, rate float64, burst int, now func() time.Time) *userLimits {
	return &userLimits{perUser: perUser, rate: rate, burst: float64(max(burst, 1)), now: now, users: map[string]*userBudget{}}
}

// admit takes a token and counts a job in flight for user, or says which
// budget is spent (RefusedUserRate, RefusedUserInFlight) and when trying
// again may succeed. A refusal takes nothing.
func (l *userLimits) admit(user string) (reason string, retry time.Duration) {
	if l.perUser <= 0 && l.rate <= 0 {
		return "", 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.users[user]
	if b == nil {
		b = &userBudget{tokens: l.burst, at: now}
		l.users[user] = b
	}
	if l.rate > 0 {
		b.refill(now, l.rate, l.burst)
		if b.tokens < 1 {
			return RefusedUserRate, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
		}
	}
	if l.perUser > 0 && b.inFlight >= l.perUser {
		return RefusedUserInFlight, retryInFlight
	}
	if l.rate > 0 {
		b.tokens--
	}
	b.inFlight++
	return "", 0
}

// release ends the count of one of user's jobs that admit let in.
func (l *userLimits) release(user string) {
	if l.perUser <= 0 && l.rate <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.users[user]; b != nil && b.inFlight > 0 {
		b.inFlight--
	}
}

// size is how many users l remembers.
func (l *userLimits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}

// sweep forgets the idle users, at most once per refill time: the cost is
// one pass over the map every few seconds, whatever the submission rate.
func (l *userLimits) sweep(now time.Time) {
	refill := time.Second
	if l.rate > 0 {
		refill = time.Duration(l.burst / l.rate * float64(time.Second))
	}
	if now.Sub(l.lastSweep) < refill {
		return
	}
	l.lastSweep = now
	for user, b := range l.users {
		if b.inFlight > 0 {
			continue
		}
		if l.rate > 0 {
			b.refill(now, l.rate, l.burst)
			if b.tokens < l.burst {
				continue
			}
		}
		delete(l.users, user)
	}
}

func (b *userBudget) refill(now time.Time, rate, burst float64) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.at = now
}

// queueSlots bounds the jobs of one kind waiting for a worker on this node.
// Submit reserves a slot before the job's queued event, the pool frees it
// when a worker takes the job; the count is also the queue-depth gauge.
type queueSlots struct {
	limit   int64
	waiting atomic.Int64
}

// reserve takes a slot, or reports false when the queue is full.
func (q *queueSlots) reserve() bool {
	for {
		n := q.waiting.Load()
		if n >= q.limit {
			return false
		}
		if q.waiting.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
