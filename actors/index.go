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
	r.admins.deliver(f)
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
				e.deliver(f)
			}
		}
	case ev.AssetID != "":
		r.byAsset[ev.AssetID].deliver(f)
	case ev.ScenarioID != "":
		r.byScenario[ev.ScenarioID].deliver(f)
	}
}

// deliver posts f to the user's streams whose filter accepts it.
func (e *userEntry) deliver(f *frame) {
	for _, s := range e.streams {
		if s.filter.Match(&f.ev) {
			s.mb.PostUserMessage(f)
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

// deliver posts f to every user's streams whose filter accepts it.
func (s *userSet) deliver(f *frame) {
	if s == nil {
		return
	}
	for _, e := range s.list {
		e.deliver(f)
	}
}
