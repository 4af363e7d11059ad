package transport

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/actors"
)

// TestStreamFilters: each filter key alone and in combination; AND between
// keys, OR within one.
func TestStreamFilters(t *testing.T) {
	ts := newTestServer(t, actors.Config{}, testPermissions)
	events := []struct{ typ, id, status, asset, scenario string }{
		{"matrix", "j1", "queued", "a1", "s1"},
		{"matrix", "j1", "failed", "a1", "s1"},
		{"growth", "j2", "completed", "a2", ""},
		{"growth", "j3", "failed", "a3", ""},
		{"probability", "j4", "started", "", "s2"},
		{"probability", "j5", "completed", "", "s1"},
		{"matrix", "j6", "completed", "a2", "s2"},
	}
	cases := []struct {
		query string
		want  []int // indexes into events
		end   int   // an events index this stream accepts, reused as its end marker
	}{
		{"?types=matrix", []int{0, 1, 6}, 0},
		{"?types=growth,probability", []int{2, 3, 4, 5}, 2},
		{"?statuses=failed", []int{1, 3}, 1},
		{"?statuses=queued,started", []int{0, 4}, 0},
		{"?jobs=j1,j5", []int{0, 1, 5}, 5},
		{"?assets=a2", []int{2, 6}, 2},
		{"?scenarios=s1", []int{0, 1, 5}, 5},
		{"?types=matrix&statuses=completed", []int{6}, 6},
		{"?types=matrix,growth&statuses=failed&assets=a1,a3", []int{1, 3}, 1},
		{"?scenarios=s2&types=probability", []int{4}, 4},
		{"?jobs=j9", nil, -1},
		{"", []int{0, 1, 2, 3, 4, 5, 6}, 6},
	}
	streams := make([]*sseClient, len(cases))
	for i, c := range cases {
		streams[i] = ts.openStream("dev:ops", c.query)
	}
	var body []string
	for _, e := range events {
		body = append(body, event(e.typ, e.id, e.status, e.asset, e.scenario))
	}
	ids := ts.publish("[" + strings.Join(body, ",") + "]")
	lastOriginal := ids[len(ids)-1]
	// Then each stream's end marker: a copy of an event it accepts.
	for _, c := range cases {
		if c.end < 0 {
			continue
		}
		e := events[c.end]
		ts.publish(event(e.typ, e.id, e.status, e.asset, e.scenario))
	}
	for i, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			if c.end < 0 {
				// Nothing may arrive; a job it does match, published last,
				// must be the first event it sees.
				ts.publish(event("growth", "j9", "queued", "a1", ""))
				if id := jobIDOf(t, streams[i].nextEvent(5*time.Second).data); id != "j9" {
					t.Fatalf("first event %s, want j9", id)
				}
				return
			}
			var got []int
			for len(got) < len(c.want) {
				f := streams[i].nextEvent(5 * time.Second)
				got = append(got, indexOf(t, events, jobIDOf(t, f.data), f.data))
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got events %v, want %v", got, c.want)
			}
			// The next one is an end marker, published after the events:
			// nothing else of theirs slipped in.
			f := streams[i].nextEvent(5 * time.Second)
			if id, _ := strconv.ParseUint(f.id, 10, 64); id <= lastOriginal {
				t.Fatalf("after the events: id %s %s, want an end marker (id > %d)", f.id, f.data, lastOriginal)
			}
		})
	}
}

func indexOf(t *testing.T, events []struct{ typ, id, status, asset, scenario string }, id, data string) int {
	t.Helper()
	for i, e := range events {
		if e.id == id && strings.Contains(data, `"status":"`+e.status+`"`) {
			return i
		}
	}
	t.Fatalf("unexpected event %s", data)
	return -1
}
