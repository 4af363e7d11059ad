// Package deploy holds what runs eventhub in production beside the binary —
// Prometheus alert rules and their unit tests (prometheus/), a Grafana
// dashboard (grafana/), an nginx configuration (nginx/), Kubernetes
// manifests and the values for the NATS chart (kubernetes/) — and the tests
// that keep them true to the code:
//
//   - promtool checks the rules and runs their unit tests, and parses every
//     query of the dashboard;
//   - every metric name the rules, the dashboard, docs/runbook.md and
//     docs/deployment.md use is exposed by a real hub's /metrics;
//   - every alert has a summary, a description and a runbook link to a
//     section of docs/runbook.md;
//   - events streamed through a real nginx with this configuration, over
//     HTTP/2 and TLS, arrive at once (nginx does not buffer them);
//   - the Kubernetes manifests keep streams healthy and survive the loss of
//     a machine (probes, grace period, disruption budgets, rollouts,
//     anti-affinity, a replicated log, non-root, secrets from Secrets, only
//     flags the hub has), and the Dockerfile builds a static binary run as
//     a non-root user; each rule is also broken on purpose in a copy, to
//     see it caught.
//
// Each suite has its file (alerts_test.go, metrics_test.go,
// dashboard_test.go, nginx_test.go, kubernetes_test.go,
// dockerfile_test.go); this one holds what they share: the paths under
// test, the hub (hubtest's binary) and the external tools.
//
// The package has no Go code of its own: only these tests. promtool and
// nginx come from Debian's packages through .ci/install-deps (`make deps`);
// a test that needs one skips without it (hubtest.Tool says how to get
// it), except when CI is set (CI=true), where it fails.
package deploy

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/finexbot/eventhub/internal/hubtest"
)

// The files under test, relative to this package's directory (go test's
// working directory).
const (
	alertsFile     = "prometheus/alerts.yml"
	alertsTestFile = "prometheus/alerts_test.yml"
	dashboardFile  = "grafana/eventhub.json"
	nginxFile      = "nginx/eventhub.conf"
	runbookFile    = "../docs/runbook.md"
	runbookURL     = "https://github.com/finexbot/eventhub/blob/main/docs/runbook.md#"
)

func TestMain(m *testing.M) { hubtest.Main(m) }

// startHub runs the hub binary with `serve --listen 127.0.0.1:0 --drain 2s`
// and args, and returns the address it listens on. The hub is stopped when
// the test ends; its log is shown if the test failed.
func startHub(t *testing.T, args ...string) string {
	t.Helper()
	return hubtest.StartBinary(t, hubtest.Options{Args: append([]string{"--drain", "2s"}, args...)}).Addr
}

func promtool(t *testing.T) string {
	t.Helper()
	return hubtest.Tool(t, "promtool")
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}
