package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// BenchmarkIngest: POST /api/events of one event each, by 1 and by 8
// publishers at once, each on a kept-alive connection, against a hub
// binary with its log in memory, on disk with --sync batch, and on disk
// with --sync always: events a second and the publish latency's p50 and
// p99 (from the request to the 202). b.N is the events of a run (use
// -benchtime 5000x); the data dir is under the test's temporary directory
// (set TMPDIR to measure another disk). EVENTHUB_BENCH_ARGS adds flags to
// every hub: with "--nats-embed 127.0.0.1:-1" the memory case is the
// embedded JetStream log (its file store in a temporary directory).
func BenchmarkIngest(b *testing.B) {
	body := `{"type":"growth","jobId":"j-0123456789abcdef","status":"completed","timestamp":"2026-11-27T10:00:00.000Z",` +
		`"data":{"assetId":"a1","durationMs":1234,"result":{"final":162889.46,"years":10,"rate":0.05,"principal":100000}}}`
	for _, mode := range []struct {
		name string
		args func(b *testing.B) []string
	}{
		{"memory", func(*testing.B) []string { return nil }},
		{"disk-batch", func(b *testing.B) []string { return []string{"--data-dir", b.TempDir(), "--sync", "batch"} }},
		{"disk-always", func(b *testing.B) []string { return []string{"--data-dir", b.TempDir(), "--sync", "always"} }},
	} {
		for _, publishers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/publishers=%d", mode.name, publishers), func(b *testing.B) {
				args := mode.args(b)
				if extra := strings.Fields(os.Getenv("EVENTHUB_BENCH_ARGS")); len(extra) > 0 {
					args = append(args, extra...)
				}
				h := hubtest.StartBinary(b, hubtest.Options{Args: args})
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: publishers, DisableCompression: true}}
				post := func() (time.Duration, error) {
					req, _ := http.NewRequest(http.MethodPost, h.URL("/api/events"), strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+devPublishKey)
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						return 0, err
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						return 0, fmt.Errorf("publish: %d", resp.StatusCode)
					}
					return time.Since(start), nil
				}
				for range 200 { // warm: connections, the first segment
					if _, err := post(); err != nil {
						b.Fatal(err)
					}
				}
				hubtest.TimeParallel(b, publishers, post)
				h.Stop()
			})
		}
	}
}
