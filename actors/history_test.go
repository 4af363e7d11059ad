package actors

import (
	"slices"
	"testing"
)

// ids lists the ids from..to inclusive; empty when to < from.
func ids(from, to uint64) []uint64 {
	var out []uint64
	for id := from; id <= to && id != 0; id++ {
		out = append(out, id)
	}
	return out
}

func TestHistory(t *testing.T) {
	t.Parallel()
	type query struct {
		after uint64
		want  []uint64
	}
	tests := []struct {
		name       string
		size       int
		pushed     uint64 // frames 1..pushed are pushed, in order
		wantOldest uint64
		queries    []query
	}{
		{
			name: "empty", size: 4, pushed: 0, wantOldest: 0,
			queries: []query{{0, nil}, {1, nil}, {1 << 40, nil}},
		},
		{
			name: "not yet full", size: 4, pushed: 3, wantOldest: 1,
			queries: []query{
				{0, ids(1, 3)}, // from before everything
				{1, ids(2, 3)}, // inside
				{2, ids(3, 3)}, // inside
				{3, nil},       // the newest
				{4, nil},       // above
				{1 << 40, nil}, // far above
			},
		},
		{
			name: "exactly full", size: 4, pushed: 4, wantOldest: 1,
			queries: []query{{0, ids(1, 4)}, {3, ids(4, 4)}, {4, nil}, {5, nil}},
		},
		{
			name: "one past full", size: 4, pushed: 5, wantOldest: 2,
			queries: []query{{0, ids(2, 5)}, {1, ids(2, 5)}, {2, ids(3, 5)}, {5, nil}},
		},
		{
			name: "wrapped several times", size: 4, pushed: 4*3 + 2, wantOldest: 11,
			queries: []query{
				{0, ids(11, 14)},  // below the window: everything kept
				{9, ids(11, 14)},  // below the window
				{10, ids(11, 14)}, // just below: no gap
				{11, ids(12, 14)}, // the oldest
				{12, ids(13, 14)}, // inside
				{13, ids(14, 14)}, // inside
				{14, nil},         // the newest
				{15, nil},         // above
				{1 << 40, nil},    // far above
			},
		},
		{
			name: "size one", size: 1, pushed: 9, wantOldest: 9,
			queries: []query{{0, ids(9, 9)}, {8, ids(9, 9)}, {9, nil}, {10, nil}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory(tt.size, 0, 1)
			pushed := map[uint64]*frame{}
			for id := uint64(1); id <= tt.pushed; id++ {
				f := &frame{id: id}
				pushed[id] = f
				h.push(f)
			}
			if got := h.oldest(); got != tt.wantOldest {
				t.Errorf("oldest() = %d, want %d", got, tt.wantOldest)
			}
			if want := min(int(tt.pushed), tt.size); h.n != want {
				t.Errorf("kept %d frames, want %d", h.n, want)
			}
			for _, q := range tt.queries {
				var got []uint64
				h.after(q.after, func(f *frame) {
					if pushed[f.id] != f {
						t.Errorf("after(%d) gave a frame %d that is not the one pushed", q.after, f.id)
					}
					got = append(got, f.id)
				})
				if !slices.Equal(got, q.want) {
					t.Errorf("after(%d) = %v, want %v", q.after, got, q.want)
				}
			}
		})
	}
}

// TestHistoryDropsOldFrames checks the ring lets go of the frames it no
// longer keeps, so an old event's bytes can be collected.
func TestHistoryDropsOldFrames(t *testing.T) {
	t.Parallel()
	h := newHistory(3, 0, 1)
	for id := uint64(1); id <= 7; id++ {
		h.push(&frame{id: id})
	}
	for _, f := range h.buf {
		if f.id < 5 {
			t.Errorf("ring still holds frame %d; it keeps 5..7", f.id)
		}
	}
}

// TestHistoryBytes: history keeps the newest frames that fit in its byte
// budget, even with room in its count, says how many it let go for which
// budget, and answers only for what it keeps (its floor rises past them).
func TestHistoryBytes(t *testing.T) {
	t.Parallel()
	sized := func(id uint64) *frame { return &frame{id: id, bytes: make([]byte, 1000-frameOverhead)} } // size() 1000
	h := newHistory(100, 3500, 1)
	var byCount, byBytes int
	for id := uint64(1); id <= 10; id++ {
		c, b := h.push(sized(id))
		byCount, byBytes = byCount+c, byBytes+b
	}
	if h.n != 3 || h.bytes != 3000 || h.oldest() != 8 || h.floor != 8 {
		t.Errorf("kept %d frames, %d bytes, oldest %d, floor %d; want 3, 3000, 8, 8", h.n, h.bytes, h.oldest(), h.floor)
	}
	if byCount != 0 || byBytes != 7 {
		t.Errorf("let go %d for the count and %d for the bytes; want 0 and 7", byCount, byBytes)
	}
	// A frame larger than the whole budget goes at once, with the others.
	big := &frame{id: 11, bytes: make([]byte, 5000)}
	if _, b := h.push(big); b != 4 || h.n != 0 || h.floor != 12 {
		t.Errorf("after a frame over the budget: let go %d, kept %d, floor %d; want 4, 0, 12", b, h.n, h.floor)
	}
	h.push(sized(12))
	if h.n != 1 || h.oldest() != 12 {
		t.Errorf("after it: kept %d, oldest %d; want 1, 12", h.n, h.oldest())
	}
}
