package deploy

// The metric names: every name the alert rules, the dashboard, the runbook
// and the deployment guide use is on a running hub's /metrics, and every
// eventhub metric there has help text and a panel.

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// metricName is a metric named in a rule, a query or the runbook.
var metricName = regexp.MustCompile(`\b(?:eventhub|go|process)_[a-z_]+[a-z]`)

// usedMetrics returns the metric names each file uses, by name.
func usedMetrics(t *testing.T, files ...string) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricName.FindAllString(string(b), -1) {
			if !slices.Contains(used[name], f) {
				used[name] = append(used[name], f)
			}
		}
	}
	return used
}

// exposition is what a /metrics page says: each family's type, and every
// name (families and samples) it shows.
type exposition struct {
	types map[string]string // family → counter, gauge, histogram, …
	help  map[string]bool   // families with help text
	names map[string]bool   // families and sample names
}

func parseExposition(text string) exposition {
	e := exposition{types: map[string]string{}, help: map[string]bool{}, names: map[string]bool{}}
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "#" && f[1] == "TYPE":
			e.types[f[2]] = f[3]
			e.names[f[2]] = true
		case len(f) >= 4 && f[0] == "#" && f[1] == "HELP":
			e.help[f[2]] = true
			e.names[f[2]] = true
		case len(f) >= 2 && f[0] != "#":
			name, _, _ := strings.Cut(f[0], "{")
			e.names[name] = true
		}
	}
	return e
}

// has reports whether name is exposed: as a family or sample, or as the
// _bucket, _sum or _count series of a histogram or summary.
func (e exposition) has(name string) bool {
	if e.names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if typ := e.types[base]; typ == "histogram" || (typ == "summary" && suffix != "_bucket") {
				return true
			}
		}
	}
	return false
}

// TestMetricNamesExist ties the rules, the dashboard, the runbook and the
// deployment guide to the code: every metric name they use is on a running
// hub's /metrics. Each hub runs with --demo, with a stream open and a
// refused request, so that the metrics of jobs, deliveries and auth
// failures have samples.
//
// The NATS metrics (eventhub_nats_*, and eventhub_events_rejected_total,
// which counts bad messages read from the NATS log) exist only when the hub
// runs with NATS, and the disk log's (eventhub_log_*) only with --data-dir:
// the single-node hub is checked for every other name, a hub with an
// embedded NATS (--nats-embed) for all but the disk log's, and a hub with
// --data-dir for all but the NATS ones. On the last two, every eventhub
// metric has help text and a panel.
func TestMetricNamesExist(t *testing.T) {
	used := usedMetrics(t, alertsFile, dashboardFile, runbookFile, deploymentDoc)
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in the rules, dashboard, runbook and deployment guide: is the pattern wrong?", len(used))
	}
	natsOnly := func(name string) bool {
		return strings.HasPrefix(name, "eventhub_nats_") || name == "eventhub_events_rejected_total"
	}
	diskOnly := func(name string) bool { return strings.HasPrefix(name, "eventhub_log_") }
	t.Run("single node", func(t *testing.T) {
		exp := scrapeUntil(t, startHub(t, "--demo"), func(exp exposition) []string {
			var missing []string
			for name := range used {
				if !natsOnly(name) && !diskOnly(name) && !exp.has(name) {
					missing = append(missing, name)
				}
			}
			return missing
		}, used)
		for name := range exp.types {
			if natsOnly(name) || diskOnly(name) {
				t.Errorf("%s is on a single node's /metrics: update natsOnly or diskOnly", name)
			}
		}
	})
	t.Run("nats", func(t *testing.T) {
		hub := startHub(t, "--demo", "--nats-embed", "127.0.0.1:-1", "--nats-store", t.TempDir())
		exp := scrapeUntil(t, hub, func(exp exposition) []string {
			var missing []string
			for name := range used {
				if !diskOnly(name) && !exp.has(name) {
					missing = append(missing, name)
				}
			}
			return missing
		}, used)
		helpAndPanel(t, exp)
	})
	t.Run("data dir", func(t *testing.T) {
		hub := startHub(t, "--demo", "--data-dir", t.TempDir())
		exp := scrapeUntil(t, hub, func(exp exposition) []string {
			var missing []string
			for name := range used {
				if !natsOnly(name) && !exp.has(name) {
					missing = append(missing, name)
				}
			}
			return missing
		}, used)
		helpAndPanel(t, exp)
	})
}

// helpAndPanel checks the other way round, on a hub: each eventhub metric
// it has has help text and a place on the dashboard.
func helpAndPanel(t *testing.T, exp exposition) {
	t.Helper()
	onDashboard := usedMetrics(t, dashboardFile)
	var families []string
	for name := range exp.types {
		if strings.HasPrefix(name, "eventhub_") {
			families = append(families, name)
		}
	}
	sort.Strings(families)
	for _, name := range families {
		if !exp.help[name] {
			t.Errorf("%s has no help text", name)
		}
		shown := onDashboard[name] != nil
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			shown = shown || onDashboard[name+s] != nil
		}
		if !shown {
			t.Errorf("%s is on /metrics but on no panel of %s", name, dashboardFile)
		}
	}
}

// scrapeUntil opens an admin's stream and makes a request without a token
// on the hub at addr, then scrapes its /metrics until missing finds nothing
// missing, or for 15 seconds (demo jobs take a few seconds to finish), and
// reports what is still missing, with the files that use it.
func scrapeUntil(t *testing.T, addr string, missing func(exposition) []string, used map[string][]string) exposition {
	t.Helper()
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer dev:ops")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	go io.Copy(io.Discard, resp.Body)
	if r, err := http.Get(base + "/api/events"); err == nil {
		r.Body.Close()
	}

	var exp exposition
	var gone []string
	hubtest.Poll(15*time.Second, func() bool {
		exp = parseExposition(hubtest.Scrape(t, base+"/metrics"))
		gone = missing(exp)
		return len(gone) == 0
	})
	sort.Strings(gone)
	for _, name := range gone {
		t.Errorf("%s: used in %s, not on a running hub's /metrics", name, strings.Join(used[name], ", "))
	}
	return exp
}
