package actors

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
)

// userState is what is known of one user's permissions: kept by their user
// actor while it runs, and by the hub (userEntry) while it is passivated.
// Times are on the hub's clock (Hub.clock).
type userState struct {
	loaded     *authz.Permissions // newest from the source; nil when unknown or expired
	knownUntil time.Duration      // loaded is trusted until then
	due        time.Duration      // the next refresh, for a user with streams
	failures   int                // consecutive failed loads, for backoff
}

// fresh reports whether loaded may answer an authorization at now.
func (st *userState) fresh(now time.Duration) bool {
	return st.loaded != nil && now < st.knownUntil
}

// userActor is the one place a user's permissions are loaded: from the
// source when the user first shows up or their cache expired, in the
// background every PermissionsTTL while they have streams (the hub and the
// streams never wait for a source), and at once on an invalidation. When a
// load changes them it has the hub apply the change (permsChanged): the
// hub re-indexes the user and applies it to their streams at one point of
// the event sequence, so a grant or a revocation loses or leaks no event.
//
// A user actor runs only while it has work: a load, callers waiting for
// one, invalidations not yet in force. Then it hands its state back to the
// hub (passivate) and stops; the hub answers from that state while it is
// fresh, and wakes the actor (a new one, with the state) for the next load.
// So tens of thousands of users, with streams or not, cost the hub a small
// entry each, not an actor; and an event on its way to the streams wakes no
// user actor at all: the hub routes it straight to the streams.
type userActor struct {
	hub  *Hub
	user string
	userState
	applied *authz.Permissions // what the hub routes with: last sent in permsChanged

	loading       bool
	reloadAgain   bool // an invalidation came during a load: load once more
	cancelLoad    context.CancelFunc
	waiters       []chan authResult // Authorize calls waiting for a load
	invalidations []chan struct{}   // Invalidate calls waiting for the result to apply
	recv          uint64            // hub messages received, echoed in passivate
}

func (u *userActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *authorize:
		u.recv++
		if u.fresh(u.hub.clock()) {
			u.hub.m.authzCache[authzHit].Inc()
			msg.reply <- authResult{perms: u.loaded}
			break
		}
		u.hub.m.authzCache[authzMiss].Inc()
		u.waiters = append(u.waiters, msg.reply)
		u.load(ctx)
	case *invalidate:
		u.recv++
		if msg.reply != nil {
			u.invalidations = append(u.invalidations, msg.reply)
		}
		if u.loading {
			u.reloadAgain = true
		} else {
			u.load(ctx)
		}
	case *refreshDue:
		u.recv++
		if !u.loading {
			u.hub.m.authzCache[authzRefresh].Inc()
			u.load(ctx)
		}
	case *loaded:
		u.loadDone(ctx, msg)
	case *actor.Stopping:
		if u.cancelLoad != nil {
			u.cancelLoad()
		}
		for _, w := range u.waiters {
			w <- authResult{err: ErrClosed}
		}
		for _, done := range u.invalidations {
			done <- struct{}{}
		}
		return
	default:
		return
	}
	if !u.loading && len(u.waiters) == 0 && len(u.invalidations) == 0 {
		ctx.Send(ctx.Parent(), &passivate{user: u.user, pid: ctx.Self(), recv: u.recv, state: u.userState})
	}
}

// load asks the source for the user's permissions in the background; the
// answer comes back as a *loaded message. One load at a time.
func (u *userActor) load(ctx actor.Context) {
	if u.loading {
		return
	}
	u.loading = true
	h := u.hub
	lctx, cancel := context.WithTimeout(context.Background(), h.cfg.AuthTimeout)
	u.cancelLoad = cancel
	self, root, user, src := ctx.Self(), h.system.Root, u.user, h.cfg.Permissions
	h.loads.Go(func() {
		defer cancel()
		p, err := src.Permissions(lctx, user)
		root.Send(self, &loaded{perms: p, err: err})
	})
}

func (u *userActor) loadDone(ctx actor.Context, msg *loaded) {
	h := u.hub
	u.loading, u.cancelLoad = false, nil
	now := h.clock()
	var err error
	switch {
	case msg.err == nil:
		u.failures = 0
		u.loaded, u.knownUntil = msg.perms, now+h.cfg.PermissionsTTL
	case u.fresh(now):
		// The source failed, but what we know is still within its TTL.
		h.m.authzCache[authzError].Inc()
		u.failures++
	default:
		// Failed, and nothing trustworthy left: deny (fail closed).
		h.m.authzCache[authzError].Inc()
		h.warn.Warn("permissions unavailable", "permissions unavailable: denying until the source answers",
			slog.String("user", u.user), slog.String("err", msg.err.Error()))
		u.failures++
		u.loaded = nil
		err = ErrPermissionsUnavailable
	}
	if !u.loaded.Equal(u.applied) {
		// The hub answers the invalidations once the change is in force.
		u.applied = u.loaded
		ctx.Send(ctx.Parent(), &permsChanged{user: u.user, pid: ctx.Self(), perms: u.loaded, done: u.invalidations})
	} else {
		for _, done := range u.invalidations {
			done <- struct{}{}
		}
	}
	u.invalidations = nil
	for _, w := range u.waiters {
		w <- authResult{perms: u.loaded, err: err}
	}
	u.waiters = nil
	if u.reloadAgain {
		u.reloadAgain = false
		u.load(ctx)
		return
	}
	next := h.cfg.PermissionsTTL
	if msg.err != nil {
		// Retry a failed source with capped exponential backoff and full
		// jitter, so users do not all come back to it at once.
		next = min(h.cfg.PermissionsTTL, time.Second<<min(u.failures, 6))
		next = time.Duration(rand.Int64N(int64(next))) + time.Millisecond
	}
	u.due = now + next
}

// narrows reports whether next denies an event that prev allows.
func narrows(prev, next *authz.Permissions) bool {
	switch {
	case prev == nil: // unknown: nothing was allowed
		return false
	case next == nil:
		return true
	case next.Admin:
		return false
	case prev.Admin:
		return true
	}
	for a := range prev.Assets.All() {
		if !next.Assets.Has(a) {
			return true
		}
	}
	for s := range prev.Scenarios.All() {
		if !next.Scenarios.Has(s) {
			return true
		}
	}
	return false
}
