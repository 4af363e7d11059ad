package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSelectiveAgainstHub runs a selective broadcast against a real hub,
// then the floor: 150 streams of 75 users (2 tabs each) over 4 assets, so
// that the assets hold 38, 38, 38 and 36 streams. Each event must reach
// exactly the streams of its asset, from either server, and the run must
// count it so: nothing lost, every event's fan-out complete, the
// deliveries those of the events' audiences.
func TestSelectiveAgainstHub(t *testing.T) {
	t.Parallel()
	cmp, dir := runAgainstHub(t, Config{
		Scenario:     "broadcast",
		CompareFloor: true,
		Streams:      150,
		Tabs:         2,
		Assets:       4,
		Rate:         20,
		Duration:     2 * time.Second,
		Settle:       200 * time.Millisecond,
	})
	if len(cmp.Runs) != 2 || len(cmp.Ratios) == 0 {
		t.Fatalf("%d runs, %d ratios: want eventhub and the floor", len(cmp.Runs), len(cmp.Ratios))
	}
	for i, target := range []string{"eventhub", "floor"} {
		r := cmp.Runs[i]
		if r.Target != target {
			t.Errorf("run %d against %s, want %s", i, r.Target, target)
		}
		if target == "eventhub" && (r.Users != 75 || r.Assets != 4 || r.UsersActive != 75) {
			t.Errorf("%d users (%d active), %d assets; want 75, 4", r.Users, r.UsersActive, r.Assets)
		}
		if r.Connected != 150 || r.Published < 15 || r.PublishErrors != 0 {
			t.Fatalf("%s: connected %d, published %d, %d errors (%s)", target, r.Connected, r.Published, r.PublishErrors, r.PublishError)
		}
		if r.Lost != 0 || r.Duplicates != 0 || r.FanOutIncomplete != 0 || r.FanOut == nil || r.FanOut.Count != uint64(r.Published) {
			t.Errorf("%s: lost %d, duplicates %d, fan-out %+v with %d incomplete; want every event complete",
				target, r.Lost, r.Duplicates, r.FanOut, r.FanOutIncomplete)
		}
		// Every event went to 36 or 38 streams, and the deliveries are theirs.
		if r.Audience < 36 || r.Audience > 38 {
			t.Errorf("%s: %.2f streams per event, want 36 to 38", target, r.Audience)
		}
		if want := int64(r.Audience*float64(r.Published) + 0.5); r.Delivered != want {
			t.Errorf("%s: delivered %d, want the events' audiences, %d", target, r.Delivered, want)
		}
		if r.Server == nil || r.Server.CPUPerDelivery <= 0 {
			t.Errorf("%s: server usage %+v, want CPU per delivery", target, r.Server)
		}
	}
	perms, err := os.ReadFile(filepath.Join(dir, "permissions.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bench-u5": {"assets": ["a1"]`, `"bench-u74": {"assets": ["a2"]`} {
		if !strings.Contains(string(perms), want) {
			t.Errorf("permissions lack %s:\n%s", want, perms)
		}
	}
	var text strings.Builder
	if err := WriteText(&text, &Report{Comparisons: []*Comparison{cmp}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== broadcast: 150 streams, 75 users × 2 tabs, 4 assets ==", "streams per event (mean)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestSelectiveScenarioAgainstHub runs the selective scenario against a
// real hub, then the floor: a broadcast of 5 events/s to 100 streams of a
// user each, then 10 assets at 50 events/s, each event for the 10 streams
// of its asset. Each counts every delivery, and the CPU per delivery is
// compared, selective against broadcast and against the floor's.
func TestSelectiveScenarioAgainstHub(t *testing.T) {
	t.Parallel()
	cmp, _ := runAgainstHub(t, Config{
		Scenario:     "selective",
		CompareFloor: true,
		Streams:      100,
		Assets:       10,
		Rate:         5,
		Duration:     2 * time.Second,
		Settle:       200 * time.Millisecond,
	})
	if len(cmp.Runs) != 4 || len(cmp.Ratios) != 0 || cmp.Selective == nil {
		t.Fatalf("%d runs, %d ratios, selective %+v: want broadcast and selective, against eventhub and the floor", len(cmp.Runs), len(cmp.Ratios), cmp.Selective)
	}
	for i, c := range []struct {
		scenario, target string
		assets           int
		rate             float64
		audience         float64
	}{{"broadcast", "eventhub", 0, 5, 100}, {"selective", "eventhub", 10, 50, 10}, {"broadcast", "floor", 0, 5, 100}, {"selective", "floor", 10, 50, 10}} {
		r := cmp.Runs[i]
		if r.Scenario != c.scenario || r.Assets != c.assets || r.Target != c.target || len(r.Phases) != 1 || r.Phases[0].Rate != c.rate {
			t.Errorf("run %d: %s against %s, %d assets, phases %+v; want %s against %s, %d assets at %.0f events/s",
				i, r.Scenario, r.Target, r.Assets, r.Phases, c.scenario, c.target, c.assets, c.rate)
		}
		if r.Connected != 100 || r.Published < 8*int64(c.rate/5) || r.Lost != 0 || r.FanOutIncomplete != 0 ||
			r.Audience != c.audience || r.Delivered != int64(c.audience)*r.Published {
			t.Errorf("%s against %s: connected %d, published %d, delivered %d, lost %d, %d incomplete, %.1f streams per event; want every event to its %.0f streams",
				r.Scenario, r.Target, r.Connected, r.Published, r.Delivered, r.Lost, r.FanOutIncomplete, r.Audience, c.audience)
		}
		if r.Server == nil || r.Server.CPUPerDelivery <= 0 {
			t.Fatalf("%s against %s: server usage %+v, want CPU per delivery", r.Scenario, r.Target, r.Server)
		}
	}
	s := cmp.Selective
	cpu := func(i int) float64 { return cmp.Runs[i].Server.CPUPerDelivery }
	if s.Assets != 10 || s.BroadcastCPUPerDelivery != cpu(0) || s.SelectiveCPUPerDelivery != cpu(1) ||
		s.FloorBroadcastCPUPerDelivery != cpu(2) || s.FloorSelectiveCPUPerDelivery != cpu(3) ||
		s.CPURatio != cpu(1)/cpu(0) || s.FloorCPURatio != cpu(3)/cpu(2) || s.VsFloor != cpu(1)/cpu(3) ||
		s.Target != SelectiveCPUTarget {
		t.Errorf("selective %+v; CPU per delivery %.2f %.2f %.2f %.2f", s, cpu(0), cpu(1), cpu(2), cpu(3))
	}
	var text strings.Builder
	if err := WriteText(&text, &Report{Comparisons: []*Comparison{cmp}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"== selective: 100 streams, 100 users × 1 tabs, 10 assets ==",
		"eventhub broadcast", "eventhub selective", "floor broadcast", "floor selective",
		"selective: selective / broadcast, same hub binary and floor",
		fmt.Sprintf("%.2f× (target ≤ 1.15×)", s.VsFloor),
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var page strings.Builder
	if err := WriteHTML(&page, &Report{Comparisons: []*Comparison{cmp}}); err != nil || !strings.Contains(page.String(), "selective / broadcast") {
		t.Errorf("html report: %v", err)
	}
}

func TestUserPermissionsAssets(t *testing.T) {
	t.Parallel()
	var broadcast, selective struct {
		Users map[string]struct{ Assets []string }
	}
	if err := json.Unmarshal(userPermissions(30, 0), &broadcast); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(userPermissions(30, 4), &selective); err != nil {
		t.Fatal(err)
	}
	if len(broadcast.Users) != 31 || len(selective.Users) != 31 {
		t.Fatalf("%d and %d users, want 30 and bench", len(broadcast.Users), len(selective.Users))
	}
	for _, c := range []struct {
		user, broadcast, selective string
	}{
		{"bench-u0", "a0 a1", "a0"},
		{"bench-u1", "a1", "a1"},
		{"bench-u7", "a7 a1", "a3"},
		{"bench-u29", "a29 a1", "a1"},
	} {
		if got := strings.Join(broadcast.Users[c.user].Assets, " "); got != c.broadcast {
			t.Errorf("%s, broadcast: assets %q, want %q", c.user, got, c.broadcast)
		}
		if got := strings.Join(selective.Users[c.user].Assets, " "); got != c.selective {
			t.Errorf("%s, 4 assets: assets %q, want %q", c.user, got, c.selective)
		}
	}
}

// TestPublisherAssets: each event is on one of the assets, at random, and
// the publisher remembers which: an event's audience is its asset's.
func TestPublisherAssets(t *testing.T) {
	t.Parallel()
	srv := newBodyRecorder(t)
	tmpl, err := ParseTemplate(`{{asset}/{seq}}`, 0)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := newPublisher(srv.URL, nil, tmpl, 100, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.close()
	for range 100 {
		pb.publishOne(context.Background())
	}
	bodies := srv.got()
	if pb.errors != 0 || len(bodies) != 100 {
		t.Fatalf("%d errors (%s), %d bodies", pb.errors, pb.lastErr, len(bodies))
	}
	seen := map[int32]int{}
	byAsset := []int64{10, 20, 30, 40}
	want := int64(0)
	for seq := int64(1); seq <= 100; seq++ {
		a := pb.asset[seq]
		seen[a]++
		if body := fmt.Sprintf("{a%d/%d}", a, seq); bodies[seq-1] != body {
			t.Fatalf("event %d: body %s, want %s", seq, bodies[seq-1], body)
		}
		if got := pb.audience(byAsset, seq); got != byAsset[a] {
			t.Errorf("event %d on a%d: audience %d, want %d", seq, a, got, byAsset[a])
		}
		want += byAsset[a]
	}
	if len(seen) != 4 {
		t.Errorf("assets used %v, want all 4", seen)
	}
	if got := pb.audience(byAsset, 101); got != 0 {
		t.Errorf("audience of an event not sent: %d", got)
	}
	r := &runner{cfg: Config{Assets: 4}, pub: pb}
	if got := r.expected(poolStats{Audience: byAsset}, 1, 100); got != want {
		t.Errorf("expected deliveries %d, want %d", got, want)
	}
	if got := r.expected(poolStats{Audience: byAsset}, 5, 4); got != 0 {
		t.Errorf("expected deliveries of no event: %d", got)
	}
}

func TestPoolStatsAudience(t *testing.T) {
	t.Parallel()
	var st poolStats
	st.add(poolStats{Audience: []int64{1, 2}})
	st.add(poolStats{Audience: []int64{10, 20, 30}})
	st.add(poolStats{})
	if fmt.Sprint(st.Audience) != "[11 22 30]" {
		t.Errorf("audience %v, want [11 22 30]", st.Audience)
	}
}

func TestConfigAssets(t *testing.T) {
	t.Parallel()
	ok := Config{Streams: 100, Assets: 100}
	if err := ok.defaults(); err != nil {
		t.Errorf("100 assets for 100 users: %v", err)
	}
	floor := Config{Floor: true, Streams: 100, Assets: 4}
	if err := floor.defaults(); err != nil {
		t.Errorf("the floor, 4 assets: %v", err)
	}
	for _, c := range []struct{ streams, tabs, assets int }{{1000, 1, SelectiveAssets}, {100, 1, 100}, {100, 4, 25}} {
		cfg := Config{Scenario: "selective", Streams: c.streams, Tabs: c.tabs}
		if err := cfg.defaults(); err != nil || cfg.Assets != c.assets {
			t.Errorf("selective, %d streams × %d tabs: %d assets, %v; want %d", c.streams, c.tabs, cfg.Assets, err, c.assets)
		}
	}
	for name, cfg := range map[string]Config{
		"negative":                  {Assets: -1},
		"one admin user":            {OneAdmin: true, Assets: 2},
		"more assets":               {Streams: 100, Tabs: 2, Assets: 51},
		"selective, one admin user": {Scenario: "selective", OneAdmin: true},
		"a body with no {asset}":    {Assets: 2, PubBody: `{"ts":{ts},"seq":{seq}}`},
	} {
		if err := cfg.defaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
}

// TestFloorAssets: the floor puts a stream on its user's asset and an event
// on the asset its body names, and on none when either is not the
// harness's.
func TestFloorAssets(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		user string
		want int
	}{{"bench-u0", 0}, {"bench-u7", 3}, {"bench-u12", 0}, {"bench", -1}, {"bench-u", -1}, {"bench-u-3", -1}, {"alice", -1}} {
		if got := userAsset(c.user, 4); got != c.want {
			t.Errorf("userAsset(%q, 4) = %d, want %d", c.user, got, c.want)
		}
	}
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"data":{"assetId":"a3","ts":1}}`, 3},
		{`{"data":{"assetId":"a0"}}`, 0},
		{`{"data":{"assetId":"a4"}}`, -1},
		{`{"data":{"assetId":"a-1"}}`, -1},
		{`{"data":{"assetId":"b1"}}`, -1},
		{`{"data":{"assetId":"a1`, -1},
		{`{"data":{}}`, -1},
	} {
		if got := eventAsset([]byte(c.body), 4); got != c.want {
			t.Errorf("eventAsset(%s, 4) = %d, want %d", c.body, got, c.want)
		}
	}
}
