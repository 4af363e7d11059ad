package actors

import (
	"github.com/asynkron/protoactor-go/actor"
	cmap "github.com/orcaman/concurrent-map"
)

// NewSystem returns a protoactor actor system for a hub, with a denser
// process registry than protoactor's own.
//
// protoactor spreads its registry of actors over 1,024 buckets of 32 maps
// each: 32,768 maps made at start (4 MiB), and with one actor per stream
// most of them hold one or two actors, each map a group of slots of its
// own, so an actor costs the registry some 300 bytes. One bucket of 32 maps
// (each with its own lock, as before) holds the same actors in a few dense
// tables, at some 50 bytes an actor. Senders do not look actors up there
// (a PID keeps the process it found), only Spawn and Stop use it.
//
// The registry is replaced before anyone else holds the system, with the
// processes protoactor registered while making it.
func NewSystem(options ...actor.ConfigOption) *actor.ActorSystem {
	system := actor.NewActorSystem(options...)
	reg := system.ProcessRegistry
	dense := &actor.SliceMap{LocalPIDs: []cmap.ConcurrentMap{cmap.New()}}
	for _, bucket := range reg.LocalPIDs.LocalPIDs {
		bucket.IterCb(func(id string, p any) { dense.GetBucket(id).Set(id, p) })
	}
	reg.LocalPIDs = dense
	return system
}
