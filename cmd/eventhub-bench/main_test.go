package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/bench"
)

// TestUsersFlag: by default each stream has a user of its own; --users 0
// puts every stream on the one admin user; --users N spreads them over N.
func TestUsersFlag(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		args     []string
		users    int
		oneAdmin bool
		streams  int
	}{
		{"default: one user per stream", []string{"--streams", "300"}, 0, false, 300},
		{"-1: one user per --tabs streams", []string{"--users", "-1", "--tabs", "3"}, 0, false, 1000},
		{"0: one admin user", []string{"--users", "0", "--streams", "300"}, 0, true, 300},
		{"N users, N × tabs streams", []string{"--users", "50", "--tabs", "2"}, 50, false, 100},
		{"N users over the streams given", []string{"--users", "50", "--streams", "300"}, 50, false, 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseFlags("broadcast", c.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.cfg.Users != c.users || o.cfg.OneAdmin != c.oneAdmin || o.cfg.Streams != c.streams {
				t.Errorf("Users %d, OneAdmin %v, Streams %d; want %d, %v, %d",
					o.cfg.Users, o.cfg.OneAdmin, o.cfg.Streams, c.users, c.oneAdmin, c.streams)
			}
		})
	}
	if _, err := parseFlags("broadcast", []string{"--users", "-2"}, io.Discard); err == nil {
		t.Error("--users -2 accepted")
	}
}

// TestAssetsFlag: --assets makes the events selective; the suite runs the
// selective scenario too.
func TestAssetsFlag(t *testing.T) {
	t.Parallel()
	o, err := parseFlags("broadcast", nil, io.Discard)
	if err != nil || o.cfg.Assets != 0 {
		t.Fatalf("default: %+v, %v; want 0 assets", o, err)
	}
	if o, err = parseFlags("broadcast", []string{"--assets", "20"}, io.Discard); err != nil || o.cfg.Assets != 20 {
		t.Fatalf("--assets 20: %+v, %v", o, err)
	}
	if o, err = parseFlags("suite", nil, io.Discard); err != nil || !slices.Contains(o.scenarios, "selective") {
		t.Fatalf("suite: %+v, %v; want selective among its scenarios", o, err)
	}
}

// TestFloorAssetsFlag: the floor refuses a negative --assets before it
// listens: nothing is announced.
func TestFloorAssetsFlag(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	err := run(context.Background(), []string{"floor", "--listen", "127.0.0.1:0", "--assets", "-1"}, &out, io.Discard)
	if !errors.Is(err, bench.ErrConfig) || out.Len() != 0 {
		t.Errorf("err %v, output %q; want ErrConfig and nothing announced", err, out.String())
	}
}

// TestNATSReplicasFlag: one NATS node by default; --nats-replicas N asks
// for N; more than --hubs, or more than JetStream keeps, is refused
// before any hub starts (the hub binary named does not exist).
func TestNATSReplicasFlag(t *testing.T) {
	t.Parallel()
	o, err := parseFlags("broadcast", []string{"--hubs", "7"}, io.Discard)
	if err != nil || o.cfg.NATSReplicas != 1 {
		t.Fatalf("default: %+v, %v; want 1 replica", o, err)
	}
	if o, err = parseFlags("broadcast", []string{"--hubs", "7", "--nats-replicas", "3"}, io.Discard); err != nil || o.cfg.NATSReplicas != 3 {
		t.Fatalf("--nats-replicas 3: %+v, %v", o, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--hubs", "2", "--nats-replicas", "3"}, "3 NATS replicas need at least as many hubs (--hubs 2)"},
		{[]string{"--nats-replicas", "3"}, "3 NATS replicas need at least as many hubs (--hubs 1)"},
		{[]string{"--hubs", "7", "--nats-replicas", "6"}, "6 NATS replicas: JetStream keeps 1 to 5"},
		{[]string{"--hubs", "7", "--nats-replicas", "0"}, "--nats-replicas 0: JetStream keeps 1 to 5"},
		{[]string{"--hubs", "7", "--nats-replicas", "3"}, ""},
	} {
		args := append([]string{"broadcast", "--quiet", "--hub-binary", "/nonexistent/eventhub", "--streams", "10",
			"--sub-url", "http://127.0.0.1:1/api/events"}, c.args...)
		err := run(context.Background(), args, io.Discard, io.Discard)
		if c.want == "" {
			// Accepted: it gets as far as starting the hubs, which do not
			// exist.
			if err == nil || errors.Is(err, bench.ErrConfig) {
				t.Errorf("%q: err %v, want the missing hub binary", c.args, err)
			}
			continue
		}
		if !errors.Is(err, bench.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want ErrConfig saying %q", c.args, err, c.want)
		}
	}
}

// TestSlowFlags: --slow-readers, --stall, --conflate and --progress-jobs
// reach the Config; bodies not given are left to the scenario (the
// progress ones with --progress-jobs); the suite leaves conflate out
// unless asked.
func TestSlowFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags("conflate", []string{"--slow-readers", "100", "--stall", "8s", "--progress-jobs", "50", "--conflate"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.SlowReaders != 100 || c.Stall != 8*time.Second || c.ProgressJobs != 50 || !c.Conflate {
		t.Errorf("slow readers %d, stall %v, progress jobs %d, conflate %v", c.SlowReaders, c.Stall, c.ProgressJobs, c.Conflate)
	}
	if c.PubBody != "" || c.FillerBody != "" || c.DoneBody != bench.DefaultDoneBody {
		t.Errorf("bodies %q, %q, %q: want the scenario's", c.PubBody, c.FillerBody, c.DoneBody)
	}
	o, err = parseFlags("slow", []string{"--pub-body", `{"ts":{ts},"job":{job}}`, "--filler-body", "{pad}"}, io.Discard)
	if err != nil || o.cfg.PubBody != `{"ts":{ts},"job":{job}}` || o.cfg.FillerBody != "{pad}" || o.cfg.Conflate || o.cfg.SlowReaders != 0 {
		t.Errorf("bodies given: %+v, %v", o, err)
	}
	if o, err = parseFlags("suite", nil, io.Discard); err != nil || slices.Contains(o.scenarios, "conflate") {
		t.Errorf("suite: %+v, %v; want conflate left out", o, err)
	}
	if o, err = parseFlags("suite", []string{"--scenarios", "slow,conflate"}, io.Discard); err != nil || !slices.Equal(o.scenarios, []string{"slow", "conflate"}) {
		t.Errorf("suite --scenarios slow,conflate: %+v, %v", o, err)
	}
}
