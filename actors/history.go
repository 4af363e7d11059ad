package actors

// history is the bounded ring of the most recent frames, owned by the hub
// actor. Ids in it are contiguous (the hub gives every event the next id),
// so finding where a resume starts is arithmetic, not a search.
type history struct {
	buf   []*frame
	start int // index of the oldest frame
	n     int
	bytes int // sum of the kept frames' size()
}

func newHistory(size int) *history { return &history{buf: make([]*frame, size)} }

func (h *history) push(f *frame) {
	h.bytes += f.size()
	if h.n < len(h.buf) {
		h.buf[(h.start+h.n)%len(h.buf)] = f
		h.n++
		return
	}
	h.bytes -= h.buf[h.start].size()
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
	skip := 0
	if oldest := h.oldest(); id >= oldest {
		if id-oldest >= uint64(h.n) {
			return // at or past the newest
		}
		skip = int(id - oldest + 1)
	}
	for i := skip; i < h.n; i++ {
		fn(h.buf[(h.start+i)%len(h.buf)])
	}
}

// all returns the kept frames, oldest first.
func (h *history) all() []*frame {
	out := make([]*frame, 0, h.n)
	for i := 0; i < h.n; i++ {
		out = append(out, h.buf[(h.start+i)%len(h.buf)])
	}
	return out
}
