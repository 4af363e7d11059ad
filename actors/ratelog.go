package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLog logs a repeating warning at most once per interval per key, with
// the number of times it was held back since: a failing permissions source
// seen by 10,000 users is one line a minute, not 10,000. Safe for concurrent
// use.
type rateLog struct {
	log   *slog.Logger
	every time.Duration

	mu   sync.Mutex // guards seen
	seen map[string]*rateEntry
}

type rateEntry struct {
	last       time.Time
	suppressed int
}

func newRateLog(log *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every, seen: map[string]*rateEntry{}}
}

// Warn logs msg with attrs under key, unless key was logged less than an
// interval ago.
func (r *rateLog) Warn(key, msg string, attrs ...slog.Attr) {
	now := time.Now()
	r.mu.Lock()
	e := r.seen[key]
	if e == nil {
		e = &rateEntry{}
		r.seen[key] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < r.every {
		e.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := e.suppressed
	e.last, e.suppressed = now, 0
	r.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}
