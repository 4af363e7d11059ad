package disklog

import "container/list"

// jobEntryOverhead is what one job costs the index besides its record:
// its entry, list element and map slot.
const jobEntryOverhead = 120

// jobLoc is where the latest record of one job is.
type jobLoc struct {
	job  string
	id   uint64
	seg  uint64 // the base of its segment; 0: the job-state file
	off  int64
	n    int // the record's bytes on disk
	cost int
}

// jobIndex is the latest record of each of the most recently updated
// jobs, by where it is on disk: what the job-state file keeps when a
// segment goes, and what the hub's job table is rebuilt from at start. It
// is bounded like the hub's job table, by a count and by bytes (each job
// its record and jobEntryOverhead): the job updated longest ago goes
// first. Records reach it in id order, so its list is in id order too.
// The Log guards it with jobsMu.
type jobIndex struct {
	max, maxBytes int
	bytes         int
	byJob         map[string]*list.Element // of *jobLoc
	order         list.List                // oldest update first
}

func newJobIndex(max, maxBytes int) *jobIndex {
	return &jobIndex{max: max, maxBytes: maxBytes, byJob: map[string]*list.Element{}}
}

// update makes loc its job's latest record, and lets go of the jobs
// updated longest ago until both budgets hold.
func (x *jobIndex) update(loc jobLoc) {
	loc.cost = loc.n + len(loc.job) + jobEntryOverhead
	if e, ok := x.byJob[loc.job]; ok {
		old := e.Value.(*jobLoc)
		x.bytes += loc.cost - old.cost
		*old = loc
		x.order.MoveToBack(e)
	} else {
		x.byJob[loc.job] = x.order.PushBack(&loc)
		x.bytes += loc.cost
	}
	for x.order.Len() > x.max || (x.bytes > x.maxBytes && x.order.Len() > 0) {
		front := x.order.Front()
		old := x.order.Remove(front).(*jobLoc)
		x.bytes -= old.cost
		delete(x.byJob, old.job)
	}
}

// each calls fn for every job's location, oldest update first, until it
// returns false.
func (x *jobIndex) each(fn func(*jobLoc) bool) {
	for e := x.order.Front(); e != nil; e = e.Next() {
		if !fn(e.Value.(*jobLoc)) {
			return
		}
	}
}
