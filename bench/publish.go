package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// publisher sends events to the target at a steady rate, one request at a
// time on a kept-alive connection. It is used by one goroutine.
type publisher struct {
	url     string
	headers [][2]string
	tmpl    *Template
	client  *http.Client

	seq     int64   // last seq sent
	sent    []int64 // ts (unix ns) of each seq sent, by seq
	errors  int64
	lastErr string
	lagMax  time.Duration // how far behind its schedule it fell
	post    *Histogram    // request durations
	body    []byte

	// assets are what {asset} may be: each event is on one at random.
	// asset is the index in assets of each seq's, by seq; nil with one.
	assets []string
	asset  []int32
	rng    *rand.Rand
}

// newPublisher prepares a publisher of up to maxSeq events, each on one of
// assets assets a0, a1, … (Config.Assets) or, with zero, on BroadcastAsset.
func newPublisher(url string, headers []string, tmpl *Template, maxSeq, assets int) (*publisher, error) {
	pb := &publisher{
		url:  url,
		tmpl: tmpl,
		client: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true},
		},
		sent:   make([]int64, maxSeq+1),
		post:   NewHistogram(),
		assets: []string{BroadcastAsset},
	}
	if assets > 0 {
		pb.assets = make([]string, assets)
		for i := range pb.assets {
			pb.assets[i] = assetName(i)
		}
		pb.asset = make([]int32, maxSeq+1)
		// A fixed seed: every run publishes the same sequence of assets.
		pb.rng = rand.New(rand.NewPCG(1, uint64(assets)))
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("%w: publish header %q: want \"Name: value\"", ErrConfig, h)
		}
		pb.headers = append(pb.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return pb, nil
}

func (pb *publisher) close() { pb.client.CloseIdleConnections() }

// publishOne sends the next event and returns its seq.
func (pb *publisher) publishOne(ctx context.Context) int64 {
	if int(pb.seq+1) >= len(pb.sent) {
		pb.errors++
		pb.lastErr = "more events than planned"
		return pb.seq
	}
	pb.seq++
	ts := time.Now().UnixNano()
	pb.sent[pb.seq] = ts
	a := 0
	if pb.asset != nil {
		a = pb.rng.IntN(len(pb.assets))
		pb.asset[pb.seq] = int32(a)
	}
	pb.body = pb.tmpl.Append(pb.body[:0], ts, uint64(pb.seq), pb.assets[a])
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pb.url, bytes.NewReader(pb.body))
	if err != nil {
		pb.fail(err)
		return pb.seq
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range pb.headers {
		req.Header.Set(h[0], h[1])
	}
	resp, err := pb.client.Do(req)
	if err != nil {
		pb.fail(err)
		return pb.seq
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	pb.post.Record(time.Duration(time.Now().UnixNano() - ts))
	if resp.StatusCode/100 != 2 {
		pb.fail(fmt.Errorf("publish: status %s", resp.Status))
	}
	return pb.seq
}

// audience is how many streams event seq is for, given the streams that
// count on each asset (poolStats.Audience); zero when it was not sent.
func (pb *publisher) audience(byAsset []int64, seq int64) int64 {
	if seq < 1 || seq > pb.seq || pb.asset == nil {
		return 0
	}
	if a := pb.asset[seq]; int(a) < len(byAsset) {
		return byAsset[a]
	}
	return 0
}

func (pb *publisher) fail(err error) {
	pb.errors++
	pb.lastErr = err.Error()
}

// run publishes at rate events per second for d, calling tick at least every
// 200 ms with the time elapsed. It returns the first and last seq it sent
// (first > last if none).
func (pb *publisher) run(ctx context.Context, rate float64, d time.Duration, tick func(time.Duration)) (first, last int64) {
	first = pb.seq + 1
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	next := start
	for n := 0; ; n++ {
		next = start.Add(time.Duration(n) * interval)
		if next.Sub(start) >= d {
			break
		}
		for {
			now := time.Now()
			if tick != nil {
				tick(now.Sub(start))
			}
			wait := next.Sub(now)
			if wait <= 0 {
				if -wait > pb.lagMax {
					pb.lagMax = -wait
				}
				break
			}
			select {
			case <-time.After(min(wait, 200*time.Millisecond)):
			case <-ctx.Done():
				return first, pb.seq
			}
		}
		pb.publishOne(ctx)
	}
	// Let the last interval pass, so that a run lasts d.
	for rest := time.Until(start.Add(d)); rest > 0; rest = time.Until(start.Add(d)) {
		if tick != nil {
			tick(time.Since(start))
		}
		select {
		case <-time.After(min(rest, 200*time.Millisecond)):
		case <-ctx.Done():
			return first, pb.seq
		}
	}
	return first, pb.seq
}
