package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// publisher publishes one event every interval, each for a new job, until
// stopped, riding out a hub that is down or shutting down: an event the hub
// refused is sent again, so every event is eventually published. An
// attempt whose fate is unknown (the connection broke after the request
// went out) is not sent again: the next attempt is a new job, and the
// unknown one is remembered so the test can allow for it.
type publisher struct {
	prefix string
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	ids     []uint64 // acknowledged, in the order published
	jobs    []string // the job of each id
	unknown []string // jobs whose publication may or may not have happened
	refused int      // attempts that the hub refused or that found it down
}

func startPublisher(t *testing.T, base func() string, prefix string, interval time.Duration) *publisher {
	p := &publisher{prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; ; {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			job := fmt.Sprintf("%s-%d", prefix, n)
			req, _ := http.NewRequest("POST", base()+"/api/events", strings.NewReader(jobEvent("growth", job, "completed", "a1", "")))
			req.Header.Set("Authorization", "Bearer "+devPublishKey)
			resp, err := client.Do(req)
			switch {
			case err != nil && errors.Is(err, syscall.ECONNREFUSED):
				p.mu.Lock()
				p.refused++ // never sent: try this job again
				p.mu.Unlock()
			case err != nil:
				p.mu.Lock()
				p.unknown = append(p.unknown, job)
				p.mu.Unlock()
				n++
			default:
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var ans struct{ IDs []uint64 }
				if resp.StatusCode == http.StatusAccepted && json.Unmarshal(body, &ans) == nil && len(ans.IDs) == 1 {
					p.mu.Lock()
					p.ids = append(p.ids, ans.IDs[0])
					p.jobs = append(p.jobs, job)
					p.mu.Unlock()
					n++
				} else {
					p.mu.Lock()
					p.refused++ // refused, e.g. 503 while shutting down: try again
					p.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

// halt stops the publisher and waits for it; idempotent.
func (p *publisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *publisher) published() (ids []uint64, jobs, unknown []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ids), slices.Clone(p.jobs), slices.Clone(p.unknown)
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ids)
}
