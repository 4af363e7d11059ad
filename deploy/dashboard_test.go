package deploy

// The Grafana dashboard: importable into any Prometheus, and every query
// valid PromQL.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	Title         string
	UID           string
	SchemaVersion int
	Templating    struct {
		List []struct {
			Name, Type string
			Query      any
		}
	}
	Panels []panel
}

type panel struct {
	ID         int
	Type       string
	Title      string
	Datasource *struct{ Type, UID string }
	Targets    []struct {
		Expr       string
		Datasource *struct{ Type, UID string }
	}
	Panels []panel // a collapsed row's
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

func (d dashboard) allPanels() []panel {
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	return all
}

// TestDashboard: the dashboard is one Grafana can import into any
// Prometheus (the data source is a variable), and every query in it is
// valid PromQL (promtool parses each as a recording rule).
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want at least 36", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error(`no templating variable "datasource" of type datasource for prometheus`)
	}
	const dsUID = "${datasource}"
	ids := map[int]string{}
	var exprs []string
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != dsUID {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, dsUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, q := range p.Targets {
			if q.Datasource != nil && q.Datasource.UID != dsUID {
				t.Errorf("panel %q: query datasource %+v, want uid %s", p.Title, q.Datasource, dsUID)
			}
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q: a query without expr", p.Title)
			}
			exprs = append(exprs, q.Expr)
		}
	}
	// What every operator needs the dashboard to show.
	used := strings.Join(exprs, "\n")
	for _, m := range []string{"eventhub_streams_active", "eventhub_streams_opened_total", "eventhub_streams_closed_total",
		"eventhub_events_delivered_total", "eventhub_delivery_latency_seconds_bucket", "eventhub_mailbox_overflow_total",
		"eventhub_auth_failures_total", "eventhub_jobs_total", "eventhub_job_duration_seconds_bucket",
		"eventhub_nats_connected", "eventhub_nats_consumer_lag", "eventhub_users_active", "eventhub_authz_cache_total"} {
		if !strings.Contains(used, m) {
			t.Errorf("no panel queries %s", m)
		}
	}

	// Grafana's variables, as a query sees them, then promtool parses each.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$job", ".*", "$instance", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		quoted, _ := json.Marshal(vars.Replace(e)) // JSON strings are YAML strings
		fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", i, quoted)
	}
	path := filepath.Join(t.TempDir(), "dashboard_queries.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, promtool(t), "check", "rules", path)
}
