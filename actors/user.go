package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/finexbot/eventhub/authz"
)

// userActor owns one user's permissions and the list of that user's open
// streams. It is the RBAC check on the path of every event, and the place a
// stream's filter is applied, so a conn actor is woken only for what it will
// write.
type userActor struct {
	hub      *Hub
	user     string
	perms    *authz.Permissions // nil denies everything (fail closed)
	streams  []*stream
	attaches uint64 // streams attached so far, echoed in userIdle
}

func (u *userActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *frame:
		if !u.perms.Allows(msg.ev) {
			return
		}
		for _, s := range u.streams {
			if s.filter.Match(msg.ev) {
				s.mb.PostUserMessage(msg)
			}
		}
	case *attach:
		u.attaches++
		// A stream that closed before it was attached is dropped here; its
		// detach came first or never comes (see stream.userPID).
		if msg.s.reason.Load() == 0 {
			if len(msg.replay) > 0 {
				msg.s.mb.postAlways(&replay{frames: msg.replay})
			}
			u.streams = append(u.streams, msg.s)
		}
		u.idleCheck(ctx)
	case *detach:
		if i := slices.Index(u.streams, msg.s); i >= 0 {
			last := len(u.streams) - 1
			u.streams[i], u.streams[last] = u.streams[last], nil
			u.streams = u.streams[:last]
			u.idleCheck(ctx)
		}
	case *setPermissions:
		u.perms = msg.perms
	}
}

// idleCheck tells the hub when the user has no stream left.
func (u *userActor) idleCheck(ctx actor.Context) {
	if len(u.streams) == 0 {
		ctx.Send(ctx.Parent(), &userIdle{user: u.user, attaches: u.attaches})
	}
}
