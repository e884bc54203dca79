package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
)

// The fixes of the Okta review (issue 9), one test each.

// (1) oktaUserId and (2) the additionalData* format are fixed where they arise, in package
// event (event.Inputs, event.Decode), with their tests there.

// (4) An ISPM issue no route takes, and an entity-risk event that matches no custom rule, are
// unrouted (ErrUnrouted, naming why), not failures. A log-only rule stops evaluation.
func TestUnrouted(t *testing.T) {
	t.Parallel()
	r := newRouter(t,
		[]config.Route{{Name: "old-password", Match: config.IssueMatch{Titles: []string{"Old Password"}}, Flows: []string{"reset"}}},
		[]config.RiskRule{
			{Name: "medium-log-only", Priority: 1, Conditions: config.RiskConditions{Level: "MEDIUM"}},
			{Name: "medium-or-high", Priority: 2, Conditions: config.RiskConditions{Level: "ANY",
				DetectionTypes: config.IncludeExclude{Exclude: []string{"ADMIN_REPORTED_USER_RISK"}}}, Flow: "clear"},
		})
	tests := []struct {
		name     string
		ev       *event.Event
		wantRule string
		wantWhy  []string
	}{
		{"ISPM issue no route takes", issueEvent(unusedAdmin), "", []string{"no route matches ISPM issue", "Unused Admin Account"}},
		{"entity risk matching no custom rule", riskEvent(event.RiskTrigger{UserID: "00uJane", RiskLevel: "LOW", DetectionType: "ADMIN_REPORTED_USER_RISK"}),
			"", []string{"matched no custom rule", "00uJane", "default rule"}},
		{"log-only rule", riskEvent(event.RiskTrigger{UserID: "00uJane", RiskLevel: "MEDIUM", DetectionType: "BRUTE_FORCE_ATTACK"}),
			"medium-log-only", []string{`rule "medium-log-only"`, "log-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dec, err := r.Route(tt.ev)
			var ue *policy.UnroutedError
			if !errors.Is(err, policy.ErrUnrouted) || !errors.As(err, &ue) || dec != nil {
				t.Fatalf("Route = %v, %v; want an UnroutedError", dec, err)
			}
			if !errors.Is(err, policy.ErrNoRoute) {
				t.Errorf("an unrouted error must still match ErrNoRoute for existing callers")
			}
			if ue.Rule != tt.wantRule {
				t.Errorf("Rule = %q, want %q", ue.Rule, tt.wantRule)
			}
			for _, w := range tt.wantWhy {
				if !strings.Contains(ue.Reason, w) {
					t.Errorf("reason %q does not say %q", ue.Reason, w)
				}
			}
		})
	}
	// The log-only rule is explained as the match that stops evaluation, running nothing.
	steps := r.Explain(tests[2].ev)
	if s := steps[0]; !s.Match || len(s.Flows) != 0 || !strings.Contains(s.Reason, "log-only") {
		t.Errorf("log-only step = %+v", s)
	}
	if s := steps[1]; s.Evaluated {
		t.Errorf("rule after the log-only match was evaluated: %+v", s)
	}
	// Its principal is still the rule (the event is skipped before authorization anyway).
	if p, err := r.Principal(tests[2].ev, nil, event.SubjectITP); err != nil || p.ID != "rule:medium-log-only" {
		t.Errorf("Principal = %+v, %v", p, err)
	}
	// Not unrouted: an event with neither an issue nor a risk trigger.
	if _, err := r.Route(&event.Event{ID: "x"}); !errors.Is(err, policy.ErrNoRoute) || errors.Is(err, policy.ErrUnrouted) {
		t.Errorf("empty event: %v, want ErrNoRoute but not ErrUnrouted", err)
	}
}

// A detection name Okta adds later maps to UNKNOWN: it matches rules with no detection
// condition or an exclude condition, never an include.
func TestDetectionUnknown(t *testing.T) {
	t.Parallel()
	rt := event.RiskTrigger{UserID: "00uJane", RiskLevel: "HIGH", DetectionType: "UNKNOWN", Groups: []string{}}
	for _, tt := range []struct {
		name string
		dt   config.IncludeExclude
		want bool
	}{
		{"no detection condition", config.IncludeExclude{}, true},
		{"exclude condition", config.IncludeExclude{Exclude: []string{"BRUTE_FORCE_ATTACK"}}, true},
		{"include condition", config.IncludeExclude{Include: []string{"BRUTE_FORCE_ATTACK"}}, false},
		{"include of every type", config.IncludeExclude{Include: event.DetectionTypes}, false},
	} {
		rule := config.RiskRule{Name: "r", Priority: 1, Status: "ACTIVE", Conditions: config.RiskConditions{Level: "ANY", DetectionTypes: tt.dt}, Flow: "f"}
		if got, why := policy.RiskRuleMatches(rule, &rt); got != tt.want {
			t.Errorf("%s: match = %v (%s), want %v", tt.name, got, why, tt.want)
		}
	}
}
