package actors

import (
	"container/list"

	"github.com/finexbot/eventhub/jobs"
)

// jobTable is the latest event of each of the most recently updated jobs,
// for GET /api/jobs. It is bounded: the job updated longest ago goes first.
// The hub actor owns it.
type jobTable struct {
	max   int
	byJob map[string]*list.Element // of *JobStatus
	order list.List                // most recently updated first
}

// JobStatus is one job's latest event and that event's id. The Event is
// shared and immutable.
type JobStatus struct {
	ID    uint64
	Event *jobs.Event
}

func newJobTable(max int) *jobTable {
	return &jobTable{max: max, byJob: make(map[string]*list.Element)}
}

func (t *jobTable) update(f *frame) {
	st := &JobStatus{ID: f.id, Event: f.ev}
	if e, ok := t.byJob[f.ev.JobID]; ok {
		e.Value = st
		t.order.MoveToFront(e)
		return
	}
	t.byJob[f.ev.JobID] = t.order.PushFront(st)
	if t.order.Len() > t.max {
		oldest := t.order.Back()
		t.order.Remove(oldest)
		delete(t.byJob, oldest.Value.(*JobStatus).Event.JobID)
	}
}

// newest returns up to limit jobs, most recently updated first, whose latest
// event keep accepts.
func (t *jobTable) newest(limit int, keep func(*jobs.Event) bool) []JobStatus {
	out := []JobStatus{}
	for e := t.order.Front(); e != nil && len(out) < limit; e = e.Next() {
		if st := e.Value.(*JobStatus); keep(st.Event) {
			out = append(out, *st)
		}
	}
	return out
}
