package authz

import (
	"fmt"
	"slices"
	"testing"
)

// TestSet: a Set holds each id once, in order, answers Has the same below
// and above the size where it stops scanning, and keeps its own copy.
func TestSet(t *testing.T) {
	var zero Set
	if zero.Len() != 0 || zero.Has("") || zero.Has("a") || !zero.Equal(NewSet()) {
		t.Fatal("the zero Set is not empty")
	}
	in := []string{"b", "a", "c", "a", "b"}
	s := NewSet(in...)
	if got := slices.Collect(s.All()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("All = %q", got)
	}
	if !slices.Equal(in, []string{"b", "a", "c", "a", "b"}) {
		t.Fatalf("NewSet changed its argument: %q", in)
	}
	if !s.Equal(NewSet("c", "b", "a")) || s.Equal(NewSet("a", "b")) {
		t.Fatal("Equal is wrong")
	}
	for _, n := range []int{1, setScan, setScan + 1, 100} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("id-%03d", (i*37)%n) // a permutation
		}
		s := NewSet(ids...)
		if s.Len() != n {
			t.Fatalf("%d ids: Len %d", n, s.Len())
		}
		for i := range n {
			if !s.Has(fmt.Sprintf("id-%03d", i)) {
				t.Fatalf("%d ids: id-%03d missing", n, i)
			}
		}
		for _, miss := range []string{"", "id-", "id-999", "zz", "id-0000"} {
			if s.Has(miss) {
				t.Fatalf("%d ids: has %q", n, miss)
			}
		}
	}
}

// TestParseTableShares: users granted the same share one Permissions, and
// sharing never mixes up what differs.
func TestParseTableShares(t *testing.T) {
	tab, err := ParseTable([]byte(`{"users": {
		"alice": {"assets": ["a1", "a2"], "scenarios": ["s1"]},
		"bob":   {"assets": ["a2", "a1", "a1"], "scenarios": ["s1"]},
		"carol": {"assets": ["a1"], "scenarios": ["s1", "a2"]},
		"dave":  {"assets": ["a1", "a2"], "scenarios": ["s1"], "admin": true},
		"erin":  {"assets": ["a1a2"], "scenarios": ["s1"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) *Permissions {
		p, ok := tab.Lookup(u)
		if !ok {
			t.Fatalf("%s missing", u)
		}
		return p
	}
	if get("alice") != get("bob") {
		t.Error("alice and bob are granted the same but do not share it")
	}
	for _, u := range []string{"carol", "dave", "erin"} {
		if get(u) == get("alice") {
			t.Errorf("%s shares alice's permissions", u)
		}
	}
	if !get("carol").Scenarios.Has("a2") || get("carol").Assets.Has("a2") {
		t.Error("carol's permissions are mixed up")
	}
	if !get("dave").Admin || get("alice").Admin {
		t.Error("admin is mixed up")
	}
	if !get("erin").Assets.Has("a1a2") || get("erin").Assets.Has("a1") {
		t.Error("erin's permissions are mixed up")
	}
}
