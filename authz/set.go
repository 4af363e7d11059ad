package authz

import (
	"iter"
	"slices"
)

// Set is an immutable set of ids (assets or scenarios), kept as a sorted
// slice: a user usually holds a few ids, and a slice of them costs a few
// words where a map costs a few hundred bytes. That counts when the hub
// caches the permissions of tens of thousands of users. The zero Set is
// empty.
type Set struct {
	ids []string // sorted, no duplicates
}

// NewSet returns the set of ids; it keeps its own copy.
func NewSet(ids ...string) Set {
	if len(ids) == 0 {
		return Set{}
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return Set{ids: slices.Clip(slices.Compact(ids))}
}

// setScan is the size up to which Has scans rather than searches.
const setScan = 8

// Has reports whether id is in s.
func (s Set) Has(id string) bool {
	if len(s.ids) <= setScan {
		for _, x := range s.ids {
			if x == id {
				return true
			}
		}
		return false
	}
	_, ok := slices.BinarySearch(s.ids, id)
	return ok
}

// Len is the number of ids in s.
func (s Set) Len() int { return len(s.ids) }

// All yields the ids of s in order.
func (s Set) All() iter.Seq[string] { return slices.Values(s.ids) }

// Equal reports whether s and t hold the same ids.
func (s Set) Equal(t Set) bool { return slices.Equal(s.ids, t.ids) }
