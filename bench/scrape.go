package bench

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serverMetrics are the figures the harness reads from /metrics.
type serverMetrics struct {
	overflow, slowCloses, writeTimeouts, conflated, replaysRefused, streams, users float64
}

// metrics scrapes the server's /metrics (every hub's in a cluster) and
// adds them up; nil if one has none.
func (r *runner) metrics(ctx context.Context) *serverMetrics {
	urls := []string{r.cfg.MetricsURL}
	if r.cluster != nil {
		urls = r.cluster.metricsURLs()
	}
	sum := &serverMetrics{}
	for _, u := range urls {
		m := scrape(ctx, u)
		if m == nil {
			return nil
		}
		sum.overflow += m.overflow
		sum.slowCloses += m.slowCloses
		sum.writeTimeouts += m.writeTimeouts
		sum.conflated += m.conflated
		sum.replaysRefused += m.replaysRefused
		sum.streams += m.streams
		sum.users += m.users
	}
	return sum
}

// scrape reads the figures the harness uses from one /metrics page; nil
// if there is none.
func scrape(ctx context.Context, url string) *serverMetrics {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil
	}
	m := &serverMetrics{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		switch {
		case strings.HasSuffix(name, "_mailbox_overflow_total"):
			m.overflow += v
		case strings.Contains(name, `_streams_closed_total{`) && strings.Contains(name, `reason="slow"`):
			m.slowCloses += v
		case strings.Contains(name, `_streams_closed_total{`) && strings.Contains(name, `reason="write_timeout"`):
			m.writeTimeouts += v
		case name == "eventhub_frames_conflated_total":
			m.conflated += v
		case name == "eventhub_replays_refused_total":
			m.replaysRefused += v
		case name == "eventhub_streams_active":
			m.streams += v
		case name == "eventhub_users_active":
			m.users += v
		}
	}
	return m
}
