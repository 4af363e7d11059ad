package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/finexbot/eventhub/internal/hubtest"
	"github.com/finexbot/eventhub/internal/natsjs"
)

// TestCrashEmbeddedJetStream is the kill -9 test of the disk log run on a
// single hub with an embedded JetStream (--nats-embed, its file store in
// --nats-store), the alternative to --data-dir for one node: after each
// kill and restart, once the hub's tail has caught up with the stream,
// every acknowledged event is in the log with its id. (JetStream's file
// store writes a one-replica stream's messages to the file before it
// acknowledges them, and fsyncs every 2 minutes: a crash of the process
// loses nothing; a crash of the machine may lose up to 2 minutes.)
func TestCrashEmbeddedJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and starts a hub process")
	}
	t.Parallel()
	const rounds, publishers = 5, 4
	perms := chaosPermissions(t, 1)
	ports := hubtest.FreePorts(t, 2)
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	hub := &chaosHub{t: t, opts: hubtest.Options{Listen: addr, Args: []string{"--permissions", perms,
		"--nats-embed", "127.0.0.1:" + strconv.Itoa(ports[1]), "--nats-store", t.TempDir(), "--drain", "1s",
		"--mailbox-bytes", "64MiB", "--backfill-bytes", "64MiB"}}}
	rec := &durableRecord{sent: map[string]bool{}, acked: map[string]uint64{}}
	pubs := make([]*durablePublisher, publishers)
	for i := range pubs {
		pubs[i] = &durablePublisher{name: "p" + strconv.Itoa(i), rng: rand.New(rand.NewPCG(uint64(i), rand.Uint64())),
			client: &http.Client{Timeout: 5 * time.Second}}
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for round := 0; round <= rounds; round++ {
		hub.restart()
		if round > 0 {
			// The hub is ready before its tail has read the whole stream:
			// wait until it has routed up to the stream's last message.
			end := streamEnd(t, "nats://127.0.0.1:"+strconv.Itoa(ports[1]))
			var last uint64
			hubtest.WaitFor(t, "the tail to catch up with the stream", 30*time.Second, func() bool {
				last, _ = snapshotOf(t, addr, "dev:"+durableUser, 1)
				return last >= end
			})
			rec.check(t, readLog(t, addr, 0, last))
		}
		if round == rounds {
			break
		}
		var acks atomic.Int64
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, pb := range pubs {
			wg.Go(func() { pb.run(ctx, addr, rec, &acks) })
		}
		hubtest.WaitFor(t, "the round's first acknowledgements", 20*time.Second, func() bool { return acks.Load() >= publishers })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // the random moment
		hub.kill()
		stop()
		wg.Wait()
	}
	for _, f := range rec.faults {
		t.Errorf("publisher: %s", f)
	}
	rec.mu.Lock()
	t.Logf("%d kills: %d events acknowledged, none lost", rounds, len(rec.acked))
	rec.mu.Unlock()
}

// streamEnd is the sequence of the last message in the event log's stream
// on the NATS server at url.
func streamEnd(t *testing.T, url string) uint64 {
	t.Helper()
	nc, err := natsjs.Connect(url, natsjs.Credentials{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "EVENTHUB")
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}
