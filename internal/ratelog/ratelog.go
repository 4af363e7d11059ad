// Package ratelog keeps a repeating log line to one per interval per key,
// with the number of times it was held back since: a failing permissions
// source seen by 10,000 users, or a flood of malformed requests, is one line
// a minute, not 10,000.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the keys remembered: keys are meant to be a few constant
// kinds; past this many, the oldest history is forgotten (a line may then
// come early, never late).
const maxKeys = 256

// Limiter decides, per key, whether a line may be logged now. Its methods
// are safe for concurrent use.
type Limiter struct {
	log   *slog.Logger
	every time.Duration

	mu   sync.Mutex // guards seen
	seen map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed int
}

// New returns a Limiter that logs to log at most once per every for each key.
func New(log *slog.Logger, every time.Duration) *Limiter {
	return &Limiter{log: log, every: every, seen: map[string]*entry{}}
}

// Allow reports whether a line under key may be logged now, and if so how
// many were held back since the last one.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.seen[key]
	if e == nil {
		if len(l.seen) >= maxKeys {
			clear(l.seen)
		}
		e = &entry{}
		l.seen[key] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	suppressed = e.suppressed
	e.last, e.suppressed = now, 0
	return true, suppressed
}

// Warn logs msg with attrs under key, unless key was logged less than an
// interval ago; a line that follows held-back ones says how many with
// "suppressed".
func (l *Limiter) Warn(key, msg string, attrs ...slog.Attr) {
	ok, suppressed := l.Allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// Logger is the Limiter's logger, for a caller that builds its own line
// after Allow.
func (l *Limiter) Logger() *slog.Logger { return l.log }
