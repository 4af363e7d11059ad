package actors

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
)

// userActor is the one place a user's permissions live: it loads them from
// the source when the user first shows up, caches them for PermissionsTTL,
// refreshes them in the background (the hub and the streams never wait for
// a source), and has the hub re-index the user when they change. It also
// owns the list of the user's open streams: it applies the RBAC rule and
// each stream's filter to every event the hub routes to it, so a conn actor
// is woken only for what it will write.
//
// Permissions have two states here: loaded (the newest answer of the
// source) and applied (what routing uses). A change goes to the hub first,
// which re-indexes and sends it back (setPermissions): both switch at the
// same point of the event sequence, so a grant or a revocation loses or
// leaks no event in between.
type userActor struct {
	hub  *Hub
	user string

	perms      *authz.Permissions // applied; nil is unknown, which denies everything
	requested  *authz.Permissions // last sent to the hub to apply
	loaded     *authz.Permissions // newest from the source; nil when unknown or expired
	knownUntil time.Time          // loaded is trusted until then
	failures   int                // consecutive failed loads, for backoff

	loading       bool
	reloadAgain   bool // an invalidation came during a load: load once more
	cancelLoad    context.CancelFunc
	waiters       []chan authResult // Authorize calls waiting for a load
	invalidations []chan struct{}   // Invalidate calls waiting for the result to apply
	applying      []chan struct{}   // invalidations whose change the hub is applying

	streams  []*stream
	recv     uint64    // hub messages received that keep the actor alive, echoed in userIdle
	lastUsed time.Time // last authorize or stream: the actor stays a TTL after it
	timer    *time.Timer
}

func (u *userActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *frame:
		if !u.perms.Allows(&msg.ev) {
			return
		}
		for _, s := range u.streams {
			if s.filter.Match(&msg.ev) {
				s.mb.PostUserMessage(msg)
			}
		}
	case *authorize:
		u.recv++
		u.lastUsed = time.Now()
		if u.loaded != nil && time.Now().Before(u.knownUntil) {
			u.hub.m.authzCache[authzHit].Inc()
			msg.reply <- authResult{perms: u.loaded}
			u.idleIfNone(ctx)
			return
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
	case *loaded:
		u.loadDone(ctx, msg)
	case *setPermissions:
		if narrows(u.perms, msg.perms) {
			u.revoke(msg.perms)
		}
		u.perms = msg.perms
		switch {
		case msg.perms == nil:
			u.closeStreams(CloseAuthzUnavailable)
		case msg.perms.None():
			u.closeStreams(CloseRevoked)
		}
		for _, done := range u.applying {
			done <- struct{}{}
		}
		u.applying = nil
	case *refreshDue:
		u.refreshDue(ctx)
	case *attach:
		u.recv++
		u.lastUsed = time.Now()
		// A stream that closed before it was attached is dropped here; its
		// detach came first or never comes (see stream.userPID).
		if msg.s.reason.Load() == 0 {
			msg.s.mb.postAlways(&replay{frames: msg.replay}) // empty too: it sends the head
			u.streams = append(u.streams, msg.s)
		}
	case *detach:
		u.lastUsed = time.Now()
		if i := slices.Index(u.streams, msg.s); i >= 0 {
			last := len(u.streams) - 1
			u.streams[i], u.streams[last] = u.streams[last], nil
			u.streams = u.streams[:last]
		}
	case *actor.Stopping:
		if u.timer != nil {
			u.timer.Stop()
		}
		if u.cancelLoad != nil {
			u.cancelLoad()
		}
		for _, w := range u.waiters {
			w <- authResult{err: ErrClosed}
		}
		for _, done := range append(u.invalidations, u.applying...) {
			done <- struct{}{}
		}
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
	now := time.Now()
	var err error
	switch {
	case msg.err == nil:
		u.failures = 0
		u.loaded, u.knownUntil = msg.perms, now.Add(h.cfg.PermissionsTTL)
	case u.loaded != nil && now.Before(u.knownUntil):
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
	if !u.loaded.Equal(u.requested) {
		u.requested = u.loaded
		ctx.Send(ctx.Parent(), &permsChanged{user: u.user, pid: ctx.Self(), perms: u.loaded})
		u.applying = append(u.applying, u.invalidations...)
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
	if msg.err == nil {
		u.idleIfNone(ctx)
	}
	next := h.cfg.PermissionsTTL
	if msg.err != nil {
		// Retry a failed source with capped exponential backoff and full
		// jitter, so users do not all come back to it at once.
		next = min(h.cfg.PermissionsTTL, time.Second<<min(u.failures, 6))
		next = time.Duration(rand.Int64N(int64(next))) + time.Millisecond
	}
	u.schedule(ctx, next)
}

// refreshDue is the timer: reload the permissions of a user with streams,
// or tell the hub a user unused for a TTL is idle.
func (u *userActor) refreshDue(ctx actor.Context) {
	u.timer = nil
	if u.loading {
		return
	}
	if len(u.streams) > 0 {
		u.hub.m.authzCache[authzRefresh].Inc()
		u.load(ctx)
		return
	}
	if idle := time.Since(u.lastUsed); idle < u.hub.cfg.PermissionsTTL {
		u.schedule(ctx, u.hub.cfg.PermissionsTTL-idle)
		return
	}
	ctx.Send(ctx.Parent(), &userIdle{user: u.user, recv: u.recv})
}

func (u *userActor) schedule(ctx actor.Context, d time.Duration) {
	if u.timer != nil {
		u.timer.Stop()
	}
	self, root := ctx.Self(), u.hub.system.Root
	u.timer = time.AfterFunc(d, func() { root.Send(self, &refreshDue{}) })
}

// idleIfNone tells the hub at once that a user whose permissions allow
// nothing, and who has no stream, is idle: an identity without
// permissions keeps no actor alive for a TTL. (The hub stops it unless a
// request came in between.)
func (u *userActor) idleIfNone(ctx actor.Context) {
	if u.loaded.None() && len(u.streams) == 0 && !u.loading {
		ctx.Send(ctx.Parent(), &userIdle{user: u.user, recv: u.recv})
	}
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
	for a := range prev.Assets {
		if _, ok := next.Assets[a]; !ok {
			return true
		}
	}
	for s := range prev.Scenarios {
		if _, ok := next.Scenarios[s]; !ok {
			return true
		}
	}
	return false
}

// revoke makes narrowed permissions p apply at once to what is queued for
// the user's streams: frames p denies are dropped from their mailboxes
// before any is written, and a stream that may have some of them in a
// write in progress (its socket full) or a replay queued is closed
// (forbidden): it resumes, and its replay is checked against p.
func (u *userActor) revoke(p *authz.Permissions) {
	deny := func(f *frame) bool { return !p.Allows(&f.ev) }
	for _, s := range u.streams {
		if s.mb.revoke(deny) || s.mb.congested.Load() {
			s.close(CloseRevoked)
		}
	}
}

func (u *userActor) closeStreams(r CloseReason) {
	for _, s := range u.streams {
		s.closeGracefully(r, u.hub.retryJitter())
	}
}
