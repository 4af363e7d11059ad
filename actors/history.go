package actors

import "sort"

// history is the bounded ring of the most recent frames, owned by the hub
// actor: its cache of the event log, encoded, which answers resumes without
// reading the log. It keeps at most len(buf) frames and at most maxBytes of
// them (frame.size), letting the oldest go first. Ids in it only grow; a
// message of the log that is not a valid event leaves a hole, so a resume's
// start is found by binary search.
type history struct {
	buf      []*frame
	start    int // index of the oldest frame
	n        int
	bytes    int // sum of the kept frames' size()
	maxBytes int // 0: no byte budget
	// floor is the lowest id history can answer for: every event from it on
	// is kept. It is the first id of the hub's log, then rises past each
	// frame the ring lets go.
	floor uint64
}

// newHistory returns a ring of size frames and maxBytes bytes (0: only the
// count binds) that answers for ids from floor on.
func newHistory(size, maxBytes int, floor uint64) *history {
	return &history{buf: make([]*frame, size), maxBytes: maxBytes, floor: floor}
}

// push keeps f as the newest frame and lets go of the oldest until both
// budgets hold; it returns how many went for the count and for the bytes.
// A frame larger than the whole byte budget goes at once: the floor rises
// past it and a resume from before it reads the log.
func (h *history) push(f *frame) (byCount, byBytes int) {
	if h.n == len(h.buf) {
		h.drop()
		byCount++
	}
	h.buf[(h.start+h.n)%len(h.buf)] = f
	h.n++
	h.bytes += f.size()
	for h.maxBytes > 0 && h.bytes > h.maxBytes && h.n > 0 {
		h.drop()
		byBytes++
	}
	return byCount, byBytes
}

// drop lets go of the oldest frame.
func (h *history) drop() {
	old := h.buf[h.start]
	h.bytes -= old.size()
	h.floor = old.id + 1
	h.buf[h.start] = nil
	h.start = (h.start + 1) % len(h.buf)
	h.n--
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
