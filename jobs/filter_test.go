package jobs

import (
	"errors"
	"strings"
	"testing"
)

// query returns a lookup over a fixed set of query parameters.
func query(kv map[string]string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		v, ok := kv[key]
		return v, ok
	}
}

func TestParseFilterMatch(t *testing.T) {
	t.Parallel()
	matrix := &Event{Type: Matrix, JobID: "j-1", Status: Completed, AssetID: "a1", ScenarioID: "s1"}
	growth := &Event{Type: Growth, JobID: "j-2", Status: Failed, AssetID: "a2"}
	prob := &Event{Type: Probability, JobID: "j-3", Status: Queued, ScenarioID: "s2"}
	all := []*Event{matrix, growth, prob}

	tests := []struct {
		name  string
		query map[string]string
		want  []*Event // the events the filter accepts
	}{
		{name: "no keys", query: nil, want: all},
		{name: "unrelated keys", query: map[string]string{"lastEventId": "7"}, want: all},
		{name: "one type", query: map[string]string{"types": "growth"}, want: []*Event{growth}},
		{name: "two types", query: map[string]string{"types": "matrix,probability"}, want: []*Event{matrix, prob}},
		{name: "one status", query: map[string]string{"statuses": "failed"}, want: []*Event{growth}},
		{name: "two statuses", query: map[string]string{"statuses": "queued,completed"}, want: []*Event{matrix, prob}},
		{name: "jobs", query: map[string]string{"jobs": "j-3,j-9"}, want: []*Event{prob}},
		{name: "assets", query: map[string]string{"assets": "a1,a2"}, want: []*Event{matrix, growth}},
		{name: "assets excludes events without one", query: map[string]string{"assets": "a1"}, want: []*Event{matrix}},
		{name: "scenarios", query: map[string]string{"scenarios": "s2"}, want: []*Event{prob}},
		{name: "AND between keys", query: map[string]string{"types": "matrix,growth", "statuses": "failed"}, want: []*Event{growth}},
		{name: "AND with nothing in common", query: map[string]string{"types": "matrix", "statuses": "failed"}, want: nil},
		{name: "every key", query: map[string]string{
			"types": "matrix", "statuses": "completed", "jobs": "j-1", "assets": "a1", "scenarios": "s1",
		}, want: []*Event{matrix}},
		{name: "repeated value", query: map[string]string{"types": "growth,growth"}, want: []*Event{growth}},
		{name: "max values", query: map[string]string{"jobs": "j-1" + strings.Repeat(",x", MaxFilterValues-1)}, want: []*Event{matrix}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(query(tt.query))
			if err != nil {
				t.Fatalf("ParseFilter: %v", err)
			}
			var got []*Event
			for _, ev := range all {
				if f.Match(ev) {
					got = append(got, ev)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("matched %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("match %d = %s, want %s", i, got[i].JobID, tt.want[i].JobID)
				}
			}
			if zero := len(tt.query) == 0 || tt.name == "unrelated keys"; f.IsZero() != zero {
				t.Errorf("IsZero = %v, want %v", f.IsZero(), zero)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		query map[string]string
		key   string // named in the message
	}{
		{name: "unknown type", query: map[string]string{"types": "matrix,cube"}, key: "types"},
		{name: "type in another case", query: map[string]string{"types": "Matrix"}, key: "types"},
		{name: "unknown status", query: map[string]string{"statuses": "done"}, key: "statuses"},
		{name: "empty value", query: map[string]string{"jobs": ""}, key: "jobs"},
		{name: "empty item", query: map[string]string{"assets": "a1,,a2"}, key: "assets"},
		{name: "trailing comma", query: map[string]string{"scenarios": "s1,"}, key: "scenarios"},
		{name: "bad id charset", query: map[string]string{"assets": "a 1"}, key: "assets"},
		{name: "id with a newline", query: map[string]string{"jobs": "j\n1"}, key: "jobs"},
		{name: "id too long", query: map[string]string{"jobs": strings.Repeat("j", MaxIDLen+1)}, key: "jobs"},
		{name: "too many values", query: map[string]string{"jobs": "x" + strings.Repeat(",x", MaxFilterValues)}, key: "jobs"},
		{name: "too many types", query: map[string]string{"types": "matrix" + strings.Repeat(",matrix", MaxFilterValues)}, key: "types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFilter(query(tt.query))
			if !errors.Is(err, ErrBadFilter) {
				t.Fatalf("ParseFilter = %+v, %v; want ErrBadFilter", f, err)
			}
			if !strings.Contains(err.Error(), tt.key+":") {
				t.Errorf("error %q does not name %s", err, tt.key)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error %q holds a raw line break", err)
			}
			if !f.IsZero() {
				t.Errorf("a failed ParseFilter returned a non-zero Filter")
			}
		})
	}
}
