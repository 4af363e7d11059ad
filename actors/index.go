package actors

// routes is the hub's routing index: the users with streams, by what their
// permissions in force allow. A user is under byAsset[x] exactly when those
// allow asset x, likewise byScenario, and in admins when they allow
// everything: routing needs no other RBAC check.
type routes struct {
	byAsset    map[string]*userSet
	byScenario map[string]*userSet
	admins     userSet
}

func newRoutes() routes {
	return routes{byAsset: map[string]*userSet{}, byScenario: map[string]*userSet{}}
}

// route posts f to the streams that may see it and asked for it: the
// admins' and those of the users indexed under every scope the event
// carries, each through its filter. No user actor is woken, and the cost
// follows the audience, not the number of users.
func (r *routes) route(f *frame) {
	var b fanout
	b.f = f
	defer b.post()
	r.admins.deliver(&b)
	ev := &f.ev
	switch {
	case ev.AssetID != "" && ev.ScenarioID != "":
		small, big := r.byAsset[ev.AssetID], r.byScenario[ev.ScenarioID]
		if small == nil || big == nil {
			return
		}
		if big.len() < small.len() {
			small, big = big, small
		}
		for _, e := range small.list {
			if big.has(e) {
				e.deliver(&b)
			}
		}
	case ev.AssetID != "":
		r.byAsset[ev.AssetID].deliver(&b)
	case ev.ScenarioID != "":
		r.byScenario[ev.ScenarioID].deliver(&b)
	}
}

// fanoutBatch is how many streams a fan-out finds before it posts to them.
const fanoutBatch = 32

// fanout posts one frame to streams in batches: it first finds a batch's
// streams (the users' and streams' memory, all over the heap for a
// scattered audience), then posts to their mailboxes. Finding does no
// atomic operation, so the processor runs ahead and waits for many cache
// misses at once; posting takes a lock per mailbox, which would make it
// wait for each miss in turn. It lives on the routing goroutine's stack.
type fanout struct {
	f   *frame
	n   int
	mbs [fanoutBatch]*mailbox
}

func (b *fanout) add(mb *mailbox) {
	b.mbs[b.n] = mb
	b.n++
	if b.n == len(b.mbs) {
		b.post()
	}
}

// post posts the frame to the batch's mailboxes and empties it.
func (b *fanout) post() {
	for i, mb := range b.mbs[:b.n] {
		mb.PostUserMessage(b.f)
		b.mbs[i] = nil
	}
	b.n = 0
}

// deliver adds to b the user's streams whose filter accepts its frame.
func (e *userEntry) deliver(b *fanout) {
	for _, s := range e.streams {
		if s.filter.Match(&b.f.ev) {
			b.add(&s.mb)
		}
	}
}

// index adds e under its permissions in force.
func (r *routes) index(e *userEntry) { r.scopes(e, addTo, (*userSet).add) }

// unindex removes e, indexed under its permissions in force.
func (r *routes) unindex(e *userEntry) { r.scopes(e, removeFrom, (*userSet).remove) }

// scopes makes one change (add or remove) to every set e belongs in under
// its permissions in force: admins, or each asset's and scenario's.
func (r *routes) scopes(e *userEntry, keyed func(map[string]*userSet, string, *userEntry), admin func(*userSet, *userEntry)) {
	p := e.perms
	if p == nil {
		return
	}
	if p.Admin {
		admin(&r.admins, e)
		return
	}
	for asset := range p.Assets.All() {
		keyed(r.byAsset, asset, e)
	}
	for scenario := range p.Scenarios.All() {
		keyed(r.byScenario, scenario, e)
	}
}

func addTo(index map[string]*userSet, key string, e *userEntry) {
	set := index[key]
	if set == nil {
		set = &userSet{}
		index[key] = set
	}
	set.add(e)
}

func removeFrom(index map[string]*userSet, key string, e *userEntry) {
	if set := index[key]; set != nil {
		set.remove(e)
		if set.len() == 0 {
			delete(index, key)
		}
	}
}

// userSet is a set of users kept as a list in the order they were added
// (but for removals, which move the last one into the gap). A fan-out walks
// the list: users, streams and mailboxes are then visited mostly in the
// order they were made, which is their order in memory, instead of at
// random as a map's iteration would; on a fan-out to thousands that is the
// difference between reading memory ahead and missing the cache at every
// stream. Small sets have no map: a scan finds a member as fast.
type userSet struct {
	list []*userEntry
	at   map[*userEntry]int // index in list; nil while list is short
}

// userSetScan is the size up to which a userSet has no map.
const userSetScan = 8

func (s *userSet) len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

func (s *userSet) find(e *userEntry) int {
	if s.at != nil {
		if i, ok := s.at[e]; ok {
			return i
		}
		return -1
	}
	for i, x := range s.list {
		if x == e {
			return i
		}
	}
	return -1
}

func (s *userSet) has(e *userEntry) bool { return s.find(e) >= 0 }

func (s *userSet) add(e *userEntry) {
	if s.find(e) >= 0 {
		return
	}
	s.list = append(s.list, e)
	switch {
	case s.at != nil:
		s.at[e] = len(s.list) - 1
	case len(s.list) > userSetScan:
		s.at = make(map[*userEntry]int, len(s.list))
		for i, x := range s.list {
			s.at[x] = i
		}
	}
}

func (s *userSet) remove(e *userEntry) {
	i := s.find(e)
	if i < 0 {
		return
	}
	last := len(s.list) - 1
	moved := s.list[last]
	s.list[i] = moved
	s.list[last] = nil
	s.list = s.list[:last]
	if s.at != nil {
		s.at[moved] = i
		delete(s.at, e)
		if len(s.list) <= userSetScan/2 {
			s.at = nil
		}
	}
	if len(s.list) == 0 {
		s.list = nil
	}
}

// deliver adds to b every user's streams whose filter accepts its frame.
func (s *userSet) deliver(b *fanout) {
	if s == nil {
		return
	}
	for _, e := range s.list {
		e.deliver(b)
	}
}
