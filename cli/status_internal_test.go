package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/status"
)

// A skipped record (an event that runs no flow) shows the rule and why, in the tail and in an
// event's history, where the other outcomes show theirs.
func TestSkippedStatusShowsRuleAndWhy(t *testing.T) {
	t.Parallel()
	r := status.Record{EventID: "e1", EventKind: "entity_risk", Outcome: status.Skipped, Rule: "low-risk-log-only",
		Why: "matched rule \"low-risk-log-only\" (priority 3), which is log-only", Timestamp: time.Now()}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var tail bytes.Buffer
	printStatus(&tail, data, false)
	var hist bytes.Buffer
	printHistory(&hist, ops.History{EventID: "e1", Statuses: []status.Record{r}})
	for name, out := range map[string]string{"status tail": tail.String(), "event history": hist.String()} {
		if !strings.Contains(out, "skipped") || !strings.Contains(out, "rule low-risk-log-only: no flow runs: matched rule") {
			t.Errorf("%s shows a skipped record as:\n%s", name, out)
		}
	}
}
