package jobs

import (
	"fmt"
	"slices"
	"strings"
)

// Filter is what a stream asked for: AND between keys, OR within one key. The
// zero Filter accepts every event. A Filter is immutable once parsed and may
// be shared between goroutines.
type Filter struct {
	types     uint8 // bit t set: Type t accepted; 0 = any
	statuses  uint8 // bit s set: Status s accepted; 0 = any
	jobs      []string
	assets    []string
	scenarios []string
}

// MaxFilterValues bounds the values of one filter key, so matching stays cheap.
const MaxFilterValues = 64

// FilterKeys are the query parameters ParseFilter reads.
var FilterKeys = [...]string{"types", "statuses", "jobs", "assets", "scenarios"}

// ParseFilter builds a Filter from query parameters. lookup returns a key's
// value and whether the key is present. A present key must hold 1 to
// MaxFilterValues comma-separated values: known types or statuses, or ids of
// CheckID's charset. Errors wrap ErrBadFilter and name the key.
func ParseFilter(lookup func(key string) (string, bool)) (Filter, error) {
	var f Filter
	for _, key := range FilterKeys {
		raw, ok := lookup(key)
		if !ok {
			continue
		}
		values := strings.Split(raw, ",")
		if len(values) > MaxFilterValues {
			return Filter{}, fmt.Errorf("%w: %s: more than %d values", ErrBadFilter, key, MaxFilterValues)
		}
		for _, v := range values {
			if err := f.add(key, v); err != nil {
				return Filter{}, fmt.Errorf("%w: %s: %v", ErrBadFilter, key, err)
			}
		}
	}
	return f, nil
}

func (f *Filter) add(key, v string) error {
	switch key {
	case "types":
		t, ok := ParseType(v)
		if !ok {
			return fmt.Errorf("unknown type %q", clip(v))
		}
		f.types |= 1 << t
	case "statuses":
		s, ok := ParseStatus(v)
		if !ok {
			return fmt.Errorf("unknown status %q", clip(v))
		}
		f.statuses |= 1 << s
	default:
		if err := CheckID(v); err != nil {
			return fmt.Errorf("value %q: %v", clip(v), err)
		}
		switch key {
		case "jobs":
			f.jobs = append(f.jobs, v)
		case "assets":
			f.assets = append(f.assets, v)
		case "scenarios":
			f.scenarios = append(f.scenarios, v)
		}
	}
	return nil
}

// Match reports whether the filter accepts ev. An assets or scenarios filter
// accepts only events that carry that scope. A nil filter accepts every event.
func (f *Filter) Match(ev *Event) bool {
	if f == nil {
		return true
	}
	return (f.types == 0 || f.types&(1<<ev.Type) != 0) &&
		(f.statuses == 0 || f.statuses&(1<<ev.Status) != 0) &&
		(len(f.jobs) == 0 || slices.Contains(f.jobs, ev.JobID)) &&
		(len(f.assets) == 0 || slices.Contains(f.assets, ev.AssetID)) &&
		(len(f.scenarios) == 0 || slices.Contains(f.scenarios, ev.ScenarioID))
}

// IsZero reports whether f accepts every event.
func (f *Filter) IsZero() bool {
	return f.types == 0 && f.statuses == 0 && len(f.jobs) == 0 && len(f.assets) == 0 && len(f.scenarios) == 0
}
