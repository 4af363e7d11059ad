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

	// jobs, when set, makes the events progress of that many jobs
	// (progressOf): event seq is about job (seq-1) mod jobs, in rounds of
	// one event a job, {progress} growing round by round; after finishJobs,
	// done is the body, one event a job, and then nothing more is sent.
	jobs     int
	rounds   int       // the rounds maxSeq allows: {progress} stays within 1
	done     *Template // the jobs' last event
	doneFrom int64     // seq of the first done event; 0 before finishJobs
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

// progressOf makes the events progress of jobs jobs (jobs > 0): rounds of
// one event a job, job (seq-1) mod jobs, whose {progress} is
// (round+1) / (rounds+1) with the rounds maxSeq allows, so that it grows
// from near 0 to at most 1. done is the body finishJobs switches to (nil
// for a publisher that never finishes).
func (pb *publisher) progressOf(jobs int, done *Template) {
	pb.jobs, pb.done = jobs, done
	pb.rounds = max(1, (len(pb.sent)-1)/jobs)
}

// finishJobs makes the next events each job's done event, job 0 first,
// and the publisher send nothing after the last.
func (pb *publisher) finishJobs() { pb.doneFrom = pb.seq + 1 }

// fill is the template and the values of event seq sent at ts on asset.
func (pb *publisher) fill(seq, ts int64, asset string) (*Template, Values) {
	v := Values{TS: ts, Seq: uint64(seq), Asset: asset, Job: int(seq)}
	switch {
	case pb.jobs == 0:
		return pb.tmpl, v
	case pb.doneFrom > 0:
		v.Job = int(seq - pb.doneFrom)
		return pb.done, v
	}
	n := int(seq - 1)
	v.Job = n % pb.jobs
	v.Progress = min(1, float64(n/pb.jobs+1)/float64(pb.rounds+1))
	return pb.tmpl, v
}

// publishOne sends the next event and returns its seq.
func (pb *publisher) publishOne(ctx context.Context) int64 {
	if int(pb.seq+1) >= len(pb.sent) {
		pb.errors++
		pb.lastErr = "more events than planned"
		return pb.seq
	}
	if pb.doneFrom > 0 && pb.seq+1-pb.doneFrom >= int64(pb.jobs) {
		return pb.seq // every job is done: there is nothing more to say
	}
	pb.seq++
	ts := time.Now().UnixNano()
	pb.sent[pb.seq] = ts
	a := 0
	if pb.asset != nil {
		a = pb.rng.IntN(len(pb.assets))
		pb.asset[pb.seq] = int32(a)
	}
	tmpl, v := pb.fill(pb.seq, ts, pb.assets[a])
	pb.body = tmpl.Append(pb.body[:0], v)
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
		if ctx.Err() == nil { // else the run was stopped, not the publish refused
			pb.fail(err)
		}
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
