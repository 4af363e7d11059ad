package authz

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/finexbot/eventhub/jobs"
)

func TestAllows(t *testing.T) {
	table, err := ParseTable([]byte(`{"users": {
		"alice": {"assets": ["a1"], "scenarios": ["s1"]},
		"ops": {"admin": true},
		"none": {}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := table.Lookup("alice")
	ops, _ := table.Lookup("ops")
	none, _ := table.Lookup("none")
	ev := func(t jobs.Type, asset, scenario string) *jobs.Event {
		return &jobs.Event{Type: t, AssetID: asset, ScenarioID: scenario}
	}
	for _, tc := range []struct {
		name  string
		perms *Permissions
		ev    *jobs.Event
		want  bool
	}{
		{"matrix both", alice, ev(jobs.Matrix, "a1", "s1"), true},
		{"matrix asset only", alice, ev(jobs.Matrix, "a1", "s2"), false},
		{"matrix scenario only", alice, ev(jobs.Matrix, "a2", "s1"), false},
		{"growth asset", alice, ev(jobs.Growth, "a1", ""), true},
		{"growth other asset", alice, ev(jobs.Growth, "a2", ""), false},
		{"growth with a scenario it lacks", alice, ev(jobs.Growth, "a1", "s2"), false},
		{"probability scenario", alice, ev(jobs.Probability, "", "s1"), true},
		{"probability other scenario", alice, ev(jobs.Probability, "", "s2"), false},
		{"admin sees all", ops, ev(jobs.Matrix, "zz", "zz"), true},
		{"empty permissions see nothing", none, ev(jobs.Growth, "a1", ""), false},
		{"nil permissions deny (fail closed)", nil, ev(jobs.Growth, "a1", ""), false},
		{"nil permissions deny even unscoped", nil, ev(jobs.Growth, "", ""), false},
		{"unscoped is for admins", alice, ev(jobs.Growth, "", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.perms.Allows(tc.ev); got != tc.want {
				t.Fatalf("Allows = %v, want %v", got, tc.want)
			}
		})
	}
	if !none.None() || alice.None() || ops.None() || !(*Permissions)(nil).None() {
		t.Error("None() is wrong")
	}
	if _, ok := table.Lookup("mallory"); ok {
		t.Error("unknown user found")
	}
}

func TestParseTableRejects(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"not json", `{`},
		{"no users", `{}`},
		{"unknown field", `{"users": {"a": {"asets": ["a1"]}}}`},
		{"bad asset id", `{"users": {"a": {"assets": ["a 1"]}}}`},
		{"bad scenario id", `{"users": {"a": {"scenarios": [""]}}}`},
		{"bad user id", `{"users": {"a b": {}}}`},
		{"wrong type", `{"users": {"a": {"admin": "yes"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseTable([]byte(tc.doc)); !errors.Is(err, ErrBadPermissions) {
				t.Fatalf("err = %v, want ErrBadPermissions", err)
			}
		})
	}
}

func TestLoadTableAndDemo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(path, []byte(`{"users": {"bob": {"assets": ["a2"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	table, err := LoadTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := table.Lookup("bob"); !ok || !p.AllowsScope("a2", "") || p.AllowsScope("a1", "") {
		t.Fatalf("bob's permissions wrong: %+v", p)
	}
	if _, err := LoadTable(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
	demo := DemoTable()
	for _, u := range []string{"alice", "bob", "carol", "ops"} {
		if p, ok := demo.Lookup(u); !ok || p.None() {
			t.Errorf("demo user %s has no permissions", u)
		}
	}
}

func TestDevAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		token, user string
		ok          bool
	}{
		{"dev:alice", "alice", true},
		{"dev:user_2abc|x@example.com", "user_2abc|x@example.com", true},
		{"dev:", "", false},
		{"alice", "", false},
		{"Dev:alice", "", false},
		{"dev:al ice", "", false},
		{"dev:al\nice", "", false},
	} {
		id, err := DevAuthenticate(tc.token)
		if tc.ok != (err == nil) || id.User != tc.user {
			t.Errorf("DevAuthenticate(%q) = %+v, %v", tc.token, id, err)
		}
		if err != nil && !errors.Is(err, ErrBadToken) {
			t.Errorf("DevAuthenticate(%q) error %v is not ErrBadToken", tc.token, err)
		}
	}
}
