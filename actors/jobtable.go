package actors

import (
	"container/list"

	"github.com/finexbot/eventhub/jobs"
)

// jobTable is the latest event of each of the most recently updated jobs,
// for GET /api/jobs. It is bounded by a count and by bytes (each job costs
// its latest frame's size and jobEntryOverhead): the job updated longest
// ago goes first. It keeps frames, which hold the event's data once, in
// their bytes; a frame may be in history too. The hub actor owns it.
type jobTable struct {
	max      int
	maxBytes int // 0: only the count binds
	bytes    int
	byJob    map[string]*list.Element // of *frame
	order    list.List                // most recently updated first
}

// jobEntryOverhead is what one job costs besides its frame: its list
// element and its map entry.
const jobEntryOverhead = 120

// JobStatus is one job's latest event and that event's id.
type JobStatus struct {
	ID uint64
	// Event is the event's JSON, exactly as the stream's data line carries
	// it. It is shared and read-only.
	Event []byte
}

func newJobTable(max, maxBytes int) *jobTable {
	return &jobTable{max: max, maxBytes: maxBytes, byJob: make(map[string]*list.Element)}
}

// ended reports whether the latest event of job id, if the table still
// holds it, is its end (completed or failed).
func (t *jobTable) ended(id string) bool {
	e, ok := t.byJob[id]
	return ok && e.Value.(*frame).ev.Status >= jobs.Completed
}

// unfinished returns the latest event (without its data) of each job whose
// latest event is queued or started, oldest update first.
func (t *jobTable) unfinished() []jobs.Event {
	var out []jobs.Event
	for e := t.order.Back(); e != nil; e = e.Prev() {
		if f := e.Value.(*frame); f.ev.Status < jobs.Completed {
			out = append(out, f.ev)
		}
	}
	return out
}

// jobCost is what a job whose latest frame is f costs against the budget.
func (f *frame) jobCost() int { return f.size() + len(f.ev.JobID) + jobEntryOverhead }

// update makes f its job's latest event and lets go of the jobs updated
// longest ago until both budgets hold; it returns how many went for the
// count and for the bytes.
func (t *jobTable) update(f *frame) (byCount, byBytes int) {
	if e, ok := t.byJob[f.ev.JobID]; ok {
		t.bytes += f.jobCost() - e.Value.(*frame).jobCost()
		e.Value = f
		t.order.MoveToFront(e)
	} else {
		t.byJob[f.ev.JobID] = t.order.PushFront(f)
		t.bytes += f.jobCost()
		if t.order.Len() > t.max {
			t.evict()
			byCount++
		}
	}
	for t.maxBytes > 0 && t.bytes > t.maxBytes && t.order.Len() > 0 {
		t.evict()
		byBytes++
	}
	return byCount, byBytes
}

func (t *jobTable) evict() {
	oldest := t.order.Back()
	f := t.order.Remove(oldest).(*frame)
	t.bytes -= f.jobCost()
	delete(t.byJob, f.ev.JobID)
}

// newest returns up to limit jobs, most recently updated first, whose latest
// event keep accepts, as long as the JSON answer stays within maxBytes (0:
// no bound); truncated says a job that keep accepts was left out for it.
func (t *jobTable) newest(limit, maxBytes int, keep func(*jobs.Event) bool) (out []JobStatus, truncated bool) {
	out = []JobStatus{}
	size := 0
	for e := t.order.Front(); e != nil && len(out) < limit; e = e.Next() {
		f := e.Value.(*frame)
		if !keep(&f.ev) {
			continue
		}
		js := f.json()
		n := snapshotEntrySize(f.id, js)
		if maxBytes > 0 && size+n > maxBytes {
			return out, true
		}
		size += n
		out = append(out, JobStatus{ID: f.id, Event: js})
	}
	return out, false
}

// snapshotEntrySize is the length of one job in GET /api/jobs' answer:
// {"eventId":N,"event":…}, and its comma.
func snapshotEntrySize(id uint64, event []byte) int {
	return len(`{"eventId":,"event":},`) + digits(id) + len(event)
}
