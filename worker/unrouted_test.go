package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

// Events that run no flow (issue 9, review item 4): an ISPM issue no route takes and an
// entity-risk event at Okta's log-only catch-all are a normal part of a real feed. They end
// with one terminal skipped status naming why, are acked, and stay off the dead-letter stream
// unless the configuration asks for dead letters.

const (
	unroutedIssueID = "c0ffee00-1111-4222-8333-444455556666"
	lowRiskID       = "2b1d7c55-0e8e-4a5f-bb11-7a3c0e9d4f21" // examples/itp-low-risk.json
)

// unroutedIssue is an ISPM issue whose title no shipped route takes.
func unroutedIssue(t *testing.T) []byte {
	t.Helper()
	return replaceJSON(t, withID(t, readFixture(t, "ispm-unused-admin.json"), unroutedIssueID), "issueTitle", "Dormant Service Account")
}

func TestUnroutedEventsAreSkippedNotDeadLettered(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	h.publish(event.SubjectISPM, unroutedIssue(t))
	h.publish(event.SubjectITP, readFixture(t, "itp-low-risk.json"))

	issue := h.waitStatus(unroutedIssueID, status.Skipped, "")
	if issue.EventKind != string(event.KindISPMIssue) || !strings.Contains(issue.Why, "no route matches") || !strings.Contains(issue.Why, "Dormant Service Account") {
		t.Errorf("skipped status of the unrouted issue = %+v; want why naming the issue", issue)
	}
	risk := h.waitStatus(lowRiskID, status.Skipped, "")
	if risk.EventKind != string(event.KindEntityRisk) || !strings.Contains(risk.Why, "matched no custom rule") || !strings.Contains(risk.Why, "default rule") {
		t.Errorf("skipped status of the LOW-risk event = %+v; want why naming the default rule", risk)
	}
	for _, r := range []status.Record{issue, risk} {
		if r.Flow != "" || r.Reason != "" || r.DLQSequence != 0 || r.Timestamp.IsZero() {
			t.Errorf("skipped status %+v: want no flow, no dead-letter reason or sequence, a timestamp", r)
		}
	}
	waitIntakeSettled(t, h)
	assertOnlySkipped(t, h, unroutedIssueID, lowRiskID)
	if n := len(h.sim.Invocations("clear-sessions")) + len(h.sim.Invocations("notify-slack")); n != 0 {
		t.Errorf("%d flow calls for events that run no flow", n)
	}
}

// A rule with no flow is log-only, as Okta allows: it stops evaluation (a later rule that would
// match does not run) and the event is skipped, naming the rule.
func TestLogOnlyRuleSkipsNamingTheRule(t *testing.T) {
	t.Parallel()
	h := start(t, options{mutate: func(c *config.Config) {
		c.RiskRules = append(c.RiskRules,
			config.RiskRule{Name: "low-risk-log-only", Priority: 3, Status: "ACTIVE", Conditions: config.RiskConditions{Level: "LOW"}},
			config.RiskRule{Name: "low-risk-notify", Priority: 4, Status: "ACTIVE", Conditions: config.RiskConditions{Level: "LOW"}, Flow: "notify-slack"})
	}})
	h.publish(event.SubjectITP, readFixture(t, "itp-low-risk.json"))
	r := h.waitStatus(lowRiskID, status.Skipped, "")
	if r.Rule != "low-risk-log-only" || !strings.Contains(r.Why, "log-only") {
		t.Errorf("skipped status = %+v; want rule low-risk-log-only and why saying it is log-only", r)
	}
	waitIntakeSettled(t, h)
	assertOnlySkipped(t, h, lowRiskID)
	if n := len(h.sim.Invocations("notify-slack")); n != 0 {
		t.Errorf("notify-slack called %d times; the log-only rule must stop evaluation", n)
	}
}

func TestUnroutedEventsAreDeadLetteredWhenConfigured(t *testing.T) {
	t.Parallel()
	h := start(t, options{workerConfig: func(c *worker.Config) { c.Unrouted = worker.UnroutedDeadLetter }})
	h.publish(event.SubjectISPM, unroutedIssue(t))
	h.publish(event.SubjectITP, readFixture(t, "itp-low-risk.json"))
	for _, id := range []string{unroutedIssueID, lowRiskID} {
		rec := h.waitStatus(id, status.Rejected, "")
		if rec.Reason != status.ReasonNoRoute || rec.DLQSequence == 0 {
			t.Errorf("rejected status of %s = %+v; want no_route with a dead-letter sequence", id, rec)
		}
		dl, subject := h.waitDeadLetter("no_route dead letter of "+id, func(d status.DeadLetter) bool { return d.EventID == id })
		if subject != "remediation.dlq.no_route" || !strings.Contains(dl.Error, "unrouted") {
			t.Errorf("dead letter of %s on %s = %+v; want no_route", id, subject, dl)
		}
	}
	waitIntakeSettled(t, h)
	for _, r := range h.statuses() {
		if r.Outcome == status.Skipped {
			t.Errorf("skipped status %+v with unrouted: deadLetter", r)
		}
	}
}

// A group-exclusion rule cannot be evaluated without the user's groups: the event is refused
// as unauthorized (fail closed), neither skipped nor no_route, whatever unrouted says.
func TestGroupExclusionWithoutMembershipIsUnauthorized(t *testing.T) {
	t.Parallel()
	h := start(t, options{mutate: func(c *config.Config) {
		c.RiskRules = append(c.RiskRules, config.RiskRule{Name: "all-but-break-glass", Priority: 3, Status: "ACTIVE",
			Conditions: config.RiskConditions{Level: "ANY", Groups: config.IncludeExclude{Exclude: []string{"00gbreakglass00000x7"}}}, Flow: "notify-slack"})
	}})
	var doc map[string]any
	if err := json.Unmarshal(readFixture(t, "itp-low-risk.json"), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "groups")
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	h.publish(event.SubjectITP, b)
	rec := h.waitStatus(lowRiskID, status.Rejected, "")
	dl, subject := h.waitDeadLetter("unauthorized dead letter", func(d status.DeadLetter) bool { return d.EventID == lowRiskID })
	if rec.Reason != status.ReasonUnauthorized || subject != "remediation.dlq.unauthorized" || !strings.Contains(dl.Error, "group membership") {
		t.Errorf("status %+v, dead letter on %s %+v; want unauthorized naming the missing group membership", rec, subject, dl)
	}
}

// waitIntakeSettled waits until the intake consumer has nothing pending or unacknowledged.
func waitIntakeSettled(t *testing.T, h *harness) {
	t.Helper()
	testwait.Until(t, "intake consumer settled", func() bool {
		infos, err := h.b.ConsumerInfos(context.Background(), broker.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range infos {
			if ci.Name == worker.IntakeConsumer {
				return ci.NumPending == 0 && ci.NumAckPending == 0
			}
		}
		return false
	})
}

// assertOnlySkipped checks that each event has exactly one status record, skipped, and that
// the dead-letter stream is empty.
func assertOnlySkipped(t *testing.T, h *harness, ids ...string) {
	t.Helper()
	if dls, subjects := h.deadLetters(); len(dls) != 0 {
		t.Errorf("%d dead letters (%v), want none", len(dls), subjects)
	}
	got := map[string][]status.Outcome{}
	for _, r := range h.statuses() {
		got[r.EventID] = append(got[r.EventID], r.Outcome)
	}
	for _, id := range ids {
		if o := got[id]; len(o) != 1 || o[0] != status.Skipped {
			t.Errorf("event %s has statuses %v, want exactly one skipped", id, o)
		}
	}
}
