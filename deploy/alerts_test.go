package deploy

// The alert rules: promtool checks them and runs their unit tests, and
// every alert is documented, linked to the runbook and tested both ways.

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestAlertRules: promtool accepts the rules and their unit tests pass.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	runTool(t, pt, "check", "rules", alertsFile)
	runTool(t, pt, "test", "rules", alertsTestFile)
}

// ruleFile is the part of a Prometheus rule file these tests read.
type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert       string
			Record      string
			Expr        string
			For         string
			Labels      map[string]string
			Annotations map[string]string
		}
	}
}

// ruleTestFile is the part of a promtool test file these tests read.
type ruleTestFile struct {
	Tests []struct {
		Name          string
		AlertRuleTest []struct {
			Alertname string
			ExpAlerts []struct {
				ExpLabels map[string]string `yaml:"exp_labels"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The alerts every deployment needs; alerts.yml may have more.
var requiredAlerts = []string{"EventHubMailboxOverflow", "EventHubSlowClosesHigh", "EventHubStreamErrorsHigh",
	"EventHubAuthFailuresSpike", "EventHubDeliveryLatencyHigh", "EventHubNATSDisconnected", "EventHubDown"}

// TestAlertsAreDocumentedAndTested: every alert has a severity, a summary, a
// description and a runbook link to a section of docs/runbook.md that
// exists, and alerts_test.yml shows it both firing and not firing.
func TestAlertsAreDocumentedAndTested(t *testing.T) {
	var rules ruleFile
	readYAML(t, alertsFile, &rules)
	var tests ruleTestFile
	readYAML(t, alertsTestFile, &tests)
	anchors := markdownAnchors(t, runbookFile)

	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	severities := map[string][]string{} // by alert
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			sev := r.Labels["severity"]
			if sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, sev)
			}
			severities[r.Alert] = append(severities[r.Alert], sev)
			for _, k := range []string{"summary", "description", "runbook", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("%s (%s): no %s annotation", r.Alert, sev, k)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookURL)
			if !ok {
				t.Errorf("%s: runbook_url %q does not start with %q", r.Alert, r.Annotations["runbook_url"], runbookURL)
			} else if !anchors[anchor] {
				t.Errorf("%s: runbook_url anchor #%s is no heading of %s", r.Alert, anchor, runbookFile)
			}
		}
	}
	for name := range severities {
		if !fires[name] {
			t.Errorf("%s: no test in %s shows it firing", name, alertsTestFile)
		}
		if !quiet[name] {
			t.Errorf("%s: no test in %s shows it not firing", name, alertsTestFile)
		}
	}
	for _, name := range requiredAlerts {
		if severities[name] == nil {
			t.Errorf("%s: missing from %s", name, alertsFile)
		}
	}
	if s := severities["EventHubMailboxOverflow"]; !slices.Contains(s, "warning") || !slices.Contains(s, "critical") {
		t.Errorf("EventHubMailboxOverflow severities %v, want a warning and a critical rule", s)
	}
}

// markdownAnchors returns the anchors GitHub gives a markdown file's headings.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
	}
	return anchors
}
