package actors

import "sort"

// history is the bounded ring of the most recent frames, owned by the hub
// actor: its cache of the event log, encoded, which answers resumes without
// reading the log. Ids in it only grow; a message of the log that is not a
// valid event leaves a hole, so a resume's start is found by binary search.
type history struct {
	buf   []*frame
	start int // index of the oldest frame
	n     int
	bytes int // sum of the kept frames' size()
	// floor is the lowest id history can answer for: every event from it on
	// is kept. It is the first id of the hub's log, then rises past each
	// frame the ring lets go.
	floor uint64
}

// newHistory returns a ring of size frames that answers for ids from floor on.
func newHistory(size int, floor uint64) *history {
	return &history{buf: make([]*frame, size), floor: floor}
}

func (h *history) push(f *frame) {
	h.bytes += f.size()
	if h.n < len(h.buf) {
		h.buf[(h.start+h.n)%len(h.buf)] = f
		h.n++
		return
	}
	h.bytes -= h.buf[h.start].size()
	h.floor = h.buf[h.start].id + 1
	h.buf[h.start] = f
	h.start = (h.start + 1) % len(h.buf)
}

// oldest returns the id of the oldest frame kept, or 0 when empty.
func (h *history) oldest() uint64 {
	if h.n == 0 {
		return 0
	}
	return h.buf[h.start].id
}

// after calls fn, in id order, for every kept frame with an id above id.
func (h *history) after(id uint64, fn func(*frame)) {
	if h.n == 0 {
		return
	}
	at := func(i int) *frame { return h.buf[(h.start+i)%len(h.buf)] }
	skip := sort.Search(h.n, func(i int) bool { return at(i).id > id })
	for i := skip; i < h.n; i++ {
		fn(h.buf[(h.start+i)%len(h.buf)])
	}
}
