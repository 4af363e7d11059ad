package actors

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestUserSet: a userSet holds what was added and not removed, once each,
// across the size where it takes and drops its map, under random adds and
// removes checked against a map.
func TestUserSet(t *testing.T) {
	users := make([]*userEntry, 40)
	for i := range users {
		users[i] = &userEntry{}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var s userSet
	model := map[*userEntry]bool{}
	for step := range 20000 {
		e := users[rng.IntN(len(users))]
		if rng.IntN(3) == 0 || len(model) > 30 {
			s.remove(e)
			delete(model, e)
		} else {
			s.add(e)
			model[e] = true
		}
		if s.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, s.len(), len(model))
		}
		for _, u := range users {
			if s.has(u) != model[u] {
				t.Fatalf("step %d: has = %v, want %v", step, s.has(u), model[u])
			}
		}
		seen := map[*userEntry]bool{}
		for i, u := range s.list {
			if seen[u] {
				t.Fatalf("step %d: a user twice in the list", step)
			}
			seen[u] = true
			if s.at != nil && s.at[u] != i {
				t.Fatalf("step %d: at says %d, the list %d", step, s.at[u], i)
			}
		}
		if s.at != nil && len(s.at) != len(s.list) {
			t.Fatalf("step %d: map of %d for a list of %d", step, len(s.at), len(s.list))
		}
	}
}

// TestUserSetKeepsOrder: a set walked by a fan-out keeps the order users
// were added in, but for the last one moved into a removed one's place.
func TestUserSetKeepsOrder(t *testing.T) {
	users := make([]*userEntry, 20)
	var s userSet
	for i := range users {
		users[i] = &userEntry{}
		s.add(users[i])
	}
	if !slices.Equal(s.list, users) {
		t.Fatal("the list is not in the order of adding")
	}
	s.remove(users[3])
	want := slices.Clone(users)
	want[3] = want[19]
	want = want[:19]
	if !slices.Equal(s.list, want) {
		t.Fatal("a removal moved more than the last user")
	}
}
