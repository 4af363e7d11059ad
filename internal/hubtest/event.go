package hubtest

import (
	"fmt"
	"strings"
	"time"
)

// JobEvent is a JobEvent as the JSON a publisher posts to /api/events: a
// job of type typ (growth, probability, matrix) with its status, at the
// time at (in UTC, to the millisecond), and data naming the asset and the
// scenario, each left out when empty: {"assetId":"a1","scenarioId":"s1"}.
func JobEvent(typ, jobID, status, asset, scenario string, at time.Time) string {
	var data []string
	if asset != "" {
		data = append(data, fmt.Sprintf("%q:%q", "assetId", asset))
	}
	if scenario != "" {
		data = append(data, fmt.Sprintf("%q:%q", "scenarioId", scenario))
	}
	return fmt.Sprintf(`{"type":%q,"jobId":%q,"status":%q,"timestamp":%q,"data":{%s}}`,
		typ, jobID, status, at.UTC().Format("2006-01-02T15:04:05.000Z07:00"), strings.Join(data, ","))
}
