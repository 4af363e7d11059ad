package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/finexbot/eventhub/internal/eventlog"
	"github.com/finexbot/eventhub/internal/eventlog/logtest"
	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/internal/natsjs"
	"github.com/finexbot/eventhub/internal/natsjs/natstest"
	"github.com/finexbot/eventhub/jobs"
)

// clusterWait bounds every wait on the cluster: its forming (electing a
// leader takes JetStream a few seconds), a failover. A passing test never
// reaches it.
const clusterWait = 30 * time.Second

// streamInfo is the stream's info as JetStream gives it now, or nil.
func streamInfo(nc *nats.Conn, stream string) *jetstream.StreamInfo {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil
	}
	return s.CachedInfo()
}

// replicated reports whether the stream has a leader and want-1 other
// replicas, every one of them current.
func replicated(info *jetstream.StreamInfo, want int) bool {
	if info == nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != want-1 {
		return false
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return false
		}
	}
	return true
}

// appendRetrying appends evs with key until JetStream acknowledges them,
// as a publisher does on 503 (the same key: stored once), and returns
// their ids.
func appendRetrying(t *testing.T, l *natsjs.Log, key string, evs []jobs.Event) []uint64 {
	t.Helper()
	var ids []uint64
	var last error
	if !hubtest.Poll(clusterWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ids, last = l.Append(ctx, key, evs)
		return last == nil
	}) {
		t.Fatalf("append %s: not acknowledged within %v: %v", key, clusterWait, last)
	}
	return ids
}

// events are n events for jobs prefix0…prefixN-1.
func events(t *testing.T, prefix string, n int) []jobs.Event {
	evs := make([]jobs.Event, n)
	for i := range evs {
		evs[i] = logtest.Event(t, fmt.Sprintf("%s%d", prefix, i))
	}
	return evs
}

// TestLogReadyFollowsQuorum: a log of three replicas is Ready while a
// quorum of its servers runs. With two of three shut down it is not, and
// an append fails (the hub answers 503); once they are back it is Ready
// again, and what was acknowledged before is all there.
func TestLogReadyFollowsQuorum(t *testing.T) {
	c := natstest.Start(t, 3)
	nc := c.Connect()
	var logged hubtest.LogBuffer
	l, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, Replicas: 3, StartTimeout: clusterWait,
		CheckEvery: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	hubtest.WaitFor(t, "three current replicas", clusterWait, func() bool { return replicated(streamInfo(nc, "EVENTHUB"), 3) })
	before := appendRetrying(t, l, "before", events(t, "q-", 3))
	if !l.Ready() {
		t.Fatal("not ready with every server up")
	}

	c.Stop("n2")
	c.Stop("n3")
	hubtest.WaitFor(t, "not ready without a quorum", clusterWait, func() bool { return !l.Ready() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = l.Append(ctx, "lost-quorum", events(t, "x-", 1))
	cancel()
	if !errors.Is(err, eventlog.ErrUnavailable) {
		t.Errorf("append without a quorum: %v, want ErrUnavailable", err)
	}
	// Not ready may come first from the connection (it was to one of the
	// two): the watcher says so once it has asked the stream.
	hubtest.WaitFor(t, "the log saying it is not ready", clusterWait, func() bool {
		return strings.Contains(logged.String(), "event log not ready")
	})

	c.Start("n2")
	c.Start("n3")
	hubtest.WaitFor(t, "ready again with a quorum", clusterWait, l.Ready)
	after := appendRetrying(t, l, "after", events(t, "r-", 3))
	_, last, err := l.Bounds(context.Background())
	if err != nil || last < after[len(after)-1] || before[len(before)-1] >= after[0] {
		t.Errorf("bounds: last %d, %v; ids before %v, after %v", last, err, before, after)
	}
	var got []uint64
	var readErr error
	if !hubtest.Poll(clusterWait, func() bool { // the servers back may still be settling
		got = got[:0]
		readErr = l.Read(context.Background(), 0, last, func(r eventlog.Record) { got = append(got, r.ID) })
		return readErr == nil
	}) {
		t.Fatalf("read the log back: %v", readErr)
	}
	for _, id := range append(before, after...) {
		if !slices.Contains(got, id) {
			t.Errorf("id %d acknowledged, not in the log (%v)", id, got)
		}
	}
}

// TestReplicatedLog: three embedded servers form a cluster; a log opened
// on it with one replica is raised to three (and says so); events
// published before and after the stream's leader is shut down are all
// acknowledged, read back and tailed, in order, none lost; the job queue
// takes three replicas too; and the cluster, two servers left, refuses
// more replicas than it has once the start timeout has passed, saying why.
func TestReplicatedLog(t *testing.T) {
	c := natstest.Start(t, 3)
	nc := c.Connect()

	// Opened while the cluster forms: it waits for the leader.
	first, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, StartTimeout: clusterWait})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	before := appendRetrying(t, first, "before-replicas", events(t, "r1-", 5))

	var logged hubtest.LogBuffer
	l, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, Replicas: 3, StartTimeout: clusterWait,
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if out := logged.String(); !strings.Contains(out, "stream replicas changed") || !strings.Contains(out, "from=1 to=3") {
		t.Errorf("raising the replicas logged %q, want the change from 1 to 3", out)
	}
	var info *jetstream.StreamInfo
	hubtest.WaitFor(t, "three current replicas of the stream", clusterWait, func() bool {
		info = streamInfo(nc, "EVENTHUB")
		return replicated(info, 3)
	})
	if info.Config.Replicas != 3 {
		t.Fatalf("stream replicas %d, want 3", info.Config.Replicas)
	}

	// The job queue takes three replicas too.
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer system.Shutdown()
	w, err := jobs.StartWorkers(system.Root, jobs.WorkersConfig{Publish: l.Append})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	q, err := natsjs.StartQueue(context.Background(), w, natsjs.QueueConfig{Conn: nc, Replicas: 3, StartTimeout: clusterWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	hubtest.WaitFor(t, "three current replicas of the job queue", clusterWait, func() bool {
		return replicated(streamInfo(nc, "EVENTHUB_JOBS"), 3)
	})

	var mu sync.Mutex
	var tailed []eventlog.Record
	stop, err := l.Tail(0, func(r eventlog.Record) { mu.Lock(); tailed = append(tailed, r); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	withLeader := appendRetrying(t, l, "with-leader", events(t, "a-", 5))

	// The stream's leader goes; the two others hold a majority.
	leader := c.Server(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("stream leader %q is none of the servers", info.Cluster.Leader)
	}
	leader.Shutdown()
	afterLeader := appendRetrying(t, l, "after-leader", events(t, "b-", 5))
	hubtest.WaitFor(t, "a new stream leader", clusterWait, func() bool {
		info = streamInfo(nc, "EVENTHUB")
		return info != nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != leader.Name()
	})

	// Every acknowledged event is in the log under the id it was given,
	// once: a publish retried across the failover (the same key) was not
	// stored twice, and nothing was lost. (The events of a batch whose
	// first try failed half-way may be stored out of their order in the
	// batch: those stored before the failure keep their ids.)
	acked := map[uint64]string{} // id → job
	var last uint64
	for i, ids := range [][]uint64{before, withLeader, afterLeader} {
		for j, id := range ids {
			acked[id] = []string{"r1-", "a-", "b-"}[i] + fmt.Sprint(j)
			last = max(last, id)
		}
	}
	if len(acked) != 15 {
		t.Fatalf("15 events acknowledged with %d ids: %v", len(acked), acked)
	}
	wantAcked := func(records []eventlog.Record) error {
		if len(records) != len(acked) {
			return fmt.Errorf("%d records, want the %d acknowledged", len(records), len(acked))
		}
		for i, r := range records {
			if i > 0 && r.ID <= records[i-1].ID {
				return fmt.Errorf("record %d: id %d after %d", i, r.ID, records[i-1].ID)
			}
			if r.Event == nil || r.Event.JobID != acked[r.ID] {
				return fmt.Errorf("record %d: id %d is event %v, want job %q", i, r.ID, r.Event, acked[r.ID])
			}
		}
		return nil
	}
	var read []eventlog.Record
	if err := l.Read(context.Background(), 0, last, func(r eventlog.Record) { read = append(read, r) }); err != nil {
		t.Fatalf("read after the leader went: %v", err)
	}
	if err := wantAcked(read); err != nil {
		t.Errorf("read after the leader went: %v", err)
	}
	var tailErr error
	if !hubtest.Poll(clusterWait, func() bool {
		mu.Lock()
		defer mu.Unlock()
		tailErr = wantAcked(tailed)
		return tailErr == nil
	}) {
		t.Errorf("tail across the failover: %v", tailErr)
	}

	t.Run("MoreReplicasThanServers", func(t *testing.T) {
		const timeout = time.Second
		start := time.Now()
		var logged hubtest.LogBuffer
		_, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, Stream: "FIVE", Subject: "five.events", Replicas: 5, StartTimeout: timeout,
			Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		var re *natsjs.ReplicasError
		if !errors.As(err, &re) || !re.Clustered || re.Replicas != 5 {
			t.Fatalf("five replicas on two servers: %v, want a *ReplicasError of a cluster", err)
		}
		if waited := time.Since(start); waited < timeout {
			t.Errorf("gave up after %v, before the start timeout %v", waited, timeout)
		}
		if !strings.Contains(err.Error(), "did not place 5 replicas of stream FIVE") {
			t.Errorf("error %q does not say what it could not do", err)
		}
		if !strings.Contains(logged.String(), "waiting for the JetStream cluster") {
			t.Errorf("the log does not say it waited: %q", logged.String())
		}
	})
}

// TestReplicasOnASingleServer: replicas on a server that is not clustered
// fail at once with an error that says so, for the log and the queue.
func TestReplicasOnASingleServer(t *testing.T) {
	nc := startNATS(t)
	start := time.Now()
	_, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, Replicas: 3})
	var re *natsjs.ReplicasError
	if !errors.As(err, &re) || re.Clustered || re.Replicas != 3 {
		t.Fatalf("three replicas on one server: %v, want a *ReplicasError", err)
	}
	if want := "the NATS cluster has only 1 JetStream server"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want one saying %q", err, want)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("it took %v to say so: a single server never grows replicas, nothing to wait for", waited)
	}
	for _, n := range []int{-1, natsjs.MaxReplicas + 1} {
		if _, err := natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, Replicas: n}); err == nil || !strings.Contains(err.Error(), "1 to 5") {
			t.Errorf("%d replicas: %v, want a refusal", n, err)
		}
	}
}

// TestStartServerRefusesBadClusterConfig: an embedded server's cluster
// fields are checked before anything listens, and no error shows the
// route password.
func TestStartServerRefusesBadClusterConfig(t *testing.T) {
	const secret = "route-secret-31337"
	auth := natsjs.Credentials{User: "route", Password: secret}
	for _, tc := range []struct {
		name string
		cfg  natsjs.ServerConfig
		want string
	}{
		{"routes without a cluster address", natsjs.ServerConfig{Routes: []string{"nats-route://127.0.0.1:6222"}}, "need a cluster address"},
		{"route credentials without a cluster address", natsjs.ServerConfig{ClusterAuth: auth}, "need a cluster address"},
		{"a route with credentials in it", natsjs.ServerConfig{ClusterAddr: "127.0.0.1:-1", Name: "n1", ClusterAuth: auth,
			Routes: []string{"nats-route://route:" + secret + "@127.0.0.1:6222"}}, "not in the URL"},
		{"a route that is no URL", natsjs.ServerConfig{ClusterAddr: "127.0.0.1:-1", Name: "n1", Routes: []string{"127.0.0.1:6222"}}, "want nats-route://host:port"},
		{"a token for routes", natsjs.ServerConfig{ClusterAddr: "127.0.0.1:-1", Name: "n1", ClusterAuth: natsjs.Credentials{Token: secret}}, "a user and a password"},
		{"a route user without a password", natsjs.ServerConfig{ClusterAddr: "127.0.0.1:-1", Name: "n1", ClusterAuth: natsjs.Credentials{User: "route"}}, "a user and a password"},
		{"a random route port and no name", natsjs.ServerConfig{ClusterAddr: "127.0.0.1:-1", Routes: []string{"nats-route://127.0.0.1:6222"}}, "needs a name"},
		{"a cluster without routes", natsjs.ServerConfig{ClusterAddr: "127.0.0.1:-1", Name: "n1"}, "needs the routes of the others"},
		{"a cluster address that is no host:port", natsjs.ServerConfig{ClusterAddr: "6222", Name: "n1"}, "nats cluster address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Addr, tc.cfg.StoreDir = "127.0.0.1:-1", t.TempDir()
			srv, err := natsjs.StartServer(tc.cfg)
			if err == nil {
				srv.Shutdown()
				t.Fatalf("started, want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
				t.Errorf("err %q, want one mentioning %q and not the password", err, tc.want)
			}
		})
	}
}

// TestStartServerNames: a server's name is the one given, or else the
// host's name and the route port (the client port when not clustered):
// the same at every start.
func TestStartServerNames(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	port := hubtest.FreePort(t)
	for _, tc := range []struct {
		name string
		cfg  natsjs.ServerConfig
		want string
	}{
		{"given", natsjs.ServerConfig{Addr: "127.0.0.1:-1", Name: "hub-7"}, "hub-7"},
		{"from the route port", natsjs.ServerConfig{Addr: "127.0.0.1:-1", ClusterAddr: fmt.Sprintf("127.0.0.1:%d", port),
			Routes: []string{fmt.Sprintf("nats-route://127.0.0.1:%d", port)}}, fmt.Sprintf("%s-%d", host, port)},
		{"from the client port", natsjs.ServerConfig{Addr: fmt.Sprintf("127.0.0.1:%d", port)}, fmt.Sprintf("%s-%d", host, port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.StoreDir = t.TempDir()
			srv, err := natsjs.StartServer(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown()
			if srv.Name() != tc.want {
				t.Errorf("name %q, want %q", srv.Name(), tc.want)
			}
		})
	}
}

// TestOpenLogWithoutNATS: with no NATS to answer, OpenLog gives up after
// its start timeout, saying so, or as soon as its context is done.
func TestOpenLogWithoutNATS(t *testing.T) {
	nc, err := natsjs.Connect(fmt.Sprintf("nats://127.0.0.1:%d", hubtest.FreePort(t)), natsjs.Credentials{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, err = natsjs.OpenLog(context.Background(), natsjs.LogConfig{Conn: nc, StartTimeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "JetStream did not take it within 500ms") {
		t.Errorf("no NATS: %v, want the start timeout's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err = natsjs.OpenLog(ctx, natsjs.LogConfig{Conn: nc, StartTimeout: time.Minute})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("canceled: %v after %v, want context.Canceled at once", err, time.Since(start))
	}
}
