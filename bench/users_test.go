package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// TestBroadcastUsersAgainstHub runs a short broadcast against a real hub
// with 300 streams over 50 users of 2 tabs (each user's tabs come round
// three times): each user is allowed only its own asset and the broadcast
// one, yet every stream gets every event, and the hub sees 50 users.
func TestBroadcastUsersAgainstHub(t *testing.T) {
	t.Parallel()
	cmp, dir := runAgainstHub(t, Config{
		Scenario: "broadcast",
		Streams:  300,
		Users:    50,
		Tabs:     2,
		Rate:     10,
		Duration: 2 * time.Second,
		Settle:   200 * time.Millisecond,
		PerAddr:  100,
	})
	r := cmp.Runs[0]
	if r.Target != "eventhub" || r.Users != 50 || r.Tabs != 2 || r.Streams != 300 {
		t.Fatalf("target %s, %d users × %d tabs, %d streams", r.Target, r.Users, r.Tabs, r.Streams)
	}
	checkEveryDelivery(t, r, 300)
	if r.UsersActive != 50 {
		t.Errorf("eventhub_users_active = %d, want 50", r.UsersActive)
	}
	perms, err := os.ReadFile(filepath.Join(dir, "permissions.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(perms), `"`+benchUser); n != 50 {
		t.Errorf("permissions list %d bench users, want 50:\n%s", n, perms)
	}
	if !strings.Contains(string(perms), `"bench-u7": {"assets": ["a7", "a1"]`) {
		t.Errorf("permissions: bench-u7 is not allowed a7 and a1:\n%s", perms)
	}
	var text strings.Builder
	if err := WriteText(&text, &Report{Comparisons: []*Comparison{cmp}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "== broadcast: 300 streams, 50 users × 2 tabs ==") {
		t.Errorf("header missing the users:\n%s", text.String())
	}
}

// TestBroadcastOneAdminAgainstHub: with OneAdmin every stream is the admin
// user bench, with the token of the default stream header.
func TestBroadcastOneAdminAgainstHub(t *testing.T) {
	t.Parallel()
	cmp, dir := runAgainstHub(t, Config{
		Scenario: "broadcast",
		Streams:  100,
		OneAdmin: true,
		Rate:     10,
		Duration: 2 * time.Second,
		Settle:   200 * time.Millisecond,
	})
	r := cmp.Runs[0]
	checkEveryDelivery(t, r, 100)
	if r.Users != 0 || r.UsersActive != 1 {
		t.Errorf("%d users, eventhub_users_active = %d; want 0 (one admin) and 1", r.Users, r.UsersActive)
	}
	if perms, err := os.ReadFile(filepath.Join(dir, "permissions.json")); err != nil || string(perms) != benchPermissions {
		t.Errorf("permissions %q, %v; want only bench as an admin", perms, err)
	}
	var text strings.Builder
	if err := WriteText(&text, &Report{Comparisons: []*Comparison{cmp}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "== broadcast: 100 streams, one admin user ==") {
		t.Errorf("header does not name the one admin user:\n%s", text.String())
	}
}

func TestStreamUser(t *testing.T) {
	for _, c := range []struct{ i, users, tabs, want int }{
		{0, 50, 2, 0}, {1, 50, 2, 0}, {2, 50, 2, 1}, {99, 50, 2, 49}, {100, 50, 2, 0},
		{7, 10, 1, 7}, {17, 10, 1, 7}, {5, 3, 0, 2},
	} {
		if got := streamUser(c.i, c.users, c.tabs); got != c.want {
			t.Errorf("streamUser(%d, %d, %d) = %d, want %d", c.i, c.users, c.tabs, got, c.want)
		}
	}
}

// TestConfigUsers: the zero Config gives each stream a user of its own
// and no Authorization header; OneAdmin puts every stream on bench with
// its token; a header that would override the users' tokens is refused.
func TestConfigUsers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		cfg     Config
		users   int
		streams int
		headers []string
	}{
		{"zero: one user per stream", Config{}, 1000, 1000, []string{}},
		{"one user per 3 tabs", Config{Tabs: 3, Streams: 10}, 4, 10, []string{}},
		{"50 users × 2 tabs", Config{Users: 50, Tabs: 2}, 50, 100, []string{}},
		{"one admin user", Config{OneAdmin: true, Streams: 10}, 0, 10, []string{"Authorization: Bearer dev:bench"}},
		{"one admin user, its own token", Config{OneAdmin: true, SubHeaders: []string{"Authorization: Bearer x"}}, 0, 1000,
			[]string{"Authorization: Bearer x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			if err := cfg.defaults(); err != nil {
				t.Fatal(err)
			}
			if n := cfg.userCount(); n != c.users || cfg.Streams != c.streams {
				t.Errorf("%d users, %d streams; want %d, %d", n, cfg.Streams, c.users, c.streams)
			}
			if !slices.Equal(cfg.SubHeaders, c.headers) {
				t.Errorf("stream headers %q, want %q", cfg.SubHeaders, c.headers)
			}
		})
	}
	for _, cfg := range []Config{
		{Users: -1},
		{Users: 5, OneAdmin: true},
		{SubHeaders: []string{"authorization: Bearer dev:x"}},
	} {
		if err := cfg.defaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", cfg, err)
		}
	}
}

// runAgainstHub runs cfg against the hub binary on a free port, with a
// working folder of its own (returned: the harness writes the permissions
// file there), and fails the test if the run fails.
func runAgainstHub(t *testing.T, cfg Config) (*Comparison, string) {
	t.Helper()
	cfg.SubURL = fmt.Sprintf("http://127.0.0.1:%d/api/events", hubtest.FreePort(t))
	cfg.HubBinary = hubtest.Binary(t)
	cfg.WorkDir = t.TempDir()
	cmp, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cmp, cfg.WorkDir
}
