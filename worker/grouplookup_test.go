package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

// A people.groups condition is decided on the user's groups looked up in Okta (issue 10). A
// look-up that fails is not a verdict: the intake naks the event with its backoff and decides
// it once Okta answers, and dead-letters it, saying why, only on the last delivery.

const riskLogEventID = "2b7a4e0c-5d3f-11f0-9c1a-7b2e4d8f0a61" // examples/okta-user-risk-detect.json

// flakyGroups fails its first failures look-ups, then answers groups.
type flakyGroups struct {
	mu       sync.Mutex
	failures int
	calls    int
	groups   []string
}

func (f *flakyGroups) UserGroupIDs(context.Context, string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failures {
		return nil, errors.New("okta: unavailable: HTTP 503")
	}
	return f.groups, nil
}

func (f *flakyGroups) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// withGroupRule excludes break-glass accounts from the HIGH-risk rule and routes through a
// router that looks groups up with g.
func withGroupRule(g policy.GroupLookup, maxDeliver int) options {
	var cfg *config.Config
	return options{
		mutate: func(c *config.Config) {
			c.RiskRules[0].Conditions.Groups.Exclude = []string{"00gBreakGlass"}
			cfg = c
		},
		workerConfig: func(wc *worker.Config) {
			wc.Router = policy.New(cfg, policy.WithGroupLookup(g))
			if maxDeliver > 0 {
				wc.IntakeMaxDeliver = maxDeliver
			}
		},
	}
}

func TestGroupLookupFailureRetriesTheEvent(t *testing.T) {
	t.Parallel()
	g := &flakyGroups{failures: 3, groups: []string{"00gEveryone"}}
	h := start(t, withGroupRule(g, 0))
	h.publish(event.SubjectITP, readFixture(t, "okta-user-risk-detect.json"))
	h.waitStatus(riskLogEventID, status.Succeeded, "clear-sessions")
	if n := g.count(); n < 4 {
		t.Errorf("%d look-ups, want the 3 failures retried and a 4th that answered", n)
	}
	if dls, _ := h.deadLetters(); len(dls) != 0 {
		t.Errorf("dead letters %+v, want none: a failed look-up is retried", dls)
	}
}

func TestGroupLookupExcludedUserRunsNothing(t *testing.T) {
	t.Parallel()
	g := &flakyGroups{groups: []string{"00gBreakGlass"}}
	h := start(t, withGroupRule(g, 0))
	h.publish(event.SubjectITP, readFixture(t, "okta-user-risk-detect.json"))
	r := h.waitStatus(riskLogEventID, status.Skipped, "")
	if !strings.Contains(r.Why, "default rule") {
		t.Errorf("skipped status %+v, want the event to fall through to the default rule", r)
	}
	waitIntakeSettled(t, h)
	if n := len(h.sim.Invocations("clear-sessions")); n != 0 {
		t.Errorf("clear-sessions called %d times for a break-glass user", n)
	}
}

func TestGroupLookupFailingToTheLastDeliveryIsDeadLettered(t *testing.T) {
	t.Parallel()
	g := &flakyGroups{failures: 1 << 30}
	h := start(t, withGroupRule(g, 3))
	h.publish(event.SubjectITP, readFixture(t, "okta-user-risk-detect.json"))
	dl, subject := h.waitDeadLetter("retries_exhausted dead letter", func(d status.DeadLetter) bool { return d.EventID == riskLogEventID })
	if dl.Reason != status.ReasonRetriesExhausted || !strings.Contains(dl.Error, "looking up the groups of user") || !strings.Contains(dl.Error, "503") {
		t.Errorf("dead letter on %s: %s %q; want retries_exhausted naming the failed look-up", subject, dl.Reason, dl.Error)
	}
	if n := g.count(); n != 3 {
		t.Errorf("%d look-ups, want one per delivery (3)", n)
	}
}
