package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/seal"
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
	printStatus(&tail, data, false, "")
	var hist bytes.Buffer
	printHistory(&hist, ops.History{EventID: "e1", Statuses: []status.Record{r}})
	for name, out := range map[string]string{"status tail": tail.String(), "event history": hist.String()} {
		if !strings.Contains(out, "skipped") || !strings.Contains(out, "rule low-risk-log-only: no flow runs: matched rule") {
			t.Errorf("%s shows a skipped record as:\n%s", name, out)
		}
	}
}

// A status record remediator did not write (its MAC does not verify) is marked as such in the
// tail and in an event's history (issue 13): a forged succeeded is not taken for a success.
func TestUnverifiedStatusIsMarked(t *testing.T) {
	t.Parallel()
	keys, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: []byte("cli-test-record-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	r := status.Record{EventID: "e1", Flow: "suspend-okta-account", Outcome: status.Succeeded, ExecutionID: "x", Timestamp: time.Now()}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	subject := status.Succeeded.Subject()
	signed := map[string][]string{seal.Header: {keys.SignRecord(subject, data)}}
	if why := unverified(keys, subject, data, signed); why != "" {
		t.Fatalf("a signed record is marked: %s", why)
	}
	why := unverified(keys, subject, data, nil)
	if why == "" {
		t.Fatal("a forged record is not marked")
	}
	var tail bytes.Buffer
	printStatus(&tail, data, false, why)
	r.Unverified = why
	var hist bytes.Buffer
	printHistory(&hist, ops.History{EventID: "e1", Statuses: []status.Record{r}})
	var js bytes.Buffer
	printStatus(&js, data, true, why)
	for name, out := range map[string]string{"status tail": tail.String(), "event history": hist.String(), "status tail --json": js.String()} {
		if !strings.Contains(strings.ToLower(out), "unverified") {
			t.Errorf("%s does not mark the forged record:\n%s", name, out)
		}
	}
}
