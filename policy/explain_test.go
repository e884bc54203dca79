package policy_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
)

// routerFor builds a router from a configuration with routes, rules and every flow they name,
// defaults filled and validated, as the service does.
func routerFor(t *testing.T, routes []config.Route, rules []config.RiskRule) *policy.Router {
	t.Helper()
	cfg := &config.Config{Routes: routes, RiskRules: rules}
	seen := map[string]bool{}
	for _, f := range slices.Concat(flowsOf(routes), ruleFlows(rules)) {
		if !seen[f] {
			seen[f] = true
			cfg.Flows = append(cfg.Flows, config.Flow{Name: f, URL: "https://acme.workflows.okta.com/api/flo/" + f + "/invoke", ClientToken: config.Secret{Env: "T"}})
		}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test configuration is invalid: %v", err)
	}
	return policy.New(cfg)
}

func flowsOf(routes []config.Route) []string {
	var out []string
	for _, r := range routes {
		out = append(out, r.Flows...)
	}
	return out
}

func ruleFlows(rules []config.RiskRule) []string {
	var out []string
	for _, r := range rules {
		if r.Flow != "" {
			out = append(out, r.Flow)
		}
	}
	return out
}

func issueEv(is event.Issue) *event.Event {
	return &event.Event{ID: "evt-1", Kind: event.KindISPMIssue, Issue: &is}
}

func riskEv(rt event.RiskTrigger) *event.Event {
	return &event.Event{ID: "evt-2", Kind: event.KindEntityRisk, Risk: &rt}
}

// seedIssue is the issue of Okta's "ISPM JSON schema example".
var seedIssue = event.Issue{
	ID: "Alert_V32uL3CHijlQYHq-uqTkqWOXSJ8~", Category: "Least Privilege", Severity: "High",
	Title: "Unused Admin Account", EntityType: "Account", EntitySourceProductName: "Okta",
}

// explainRules are deliberately out of priority order, with an inactive rule in between.
var explainRules = []config.RiskRule{
	{Name: "any-risk-notify", Priority: 40, Conditions: config.RiskConditions{Level: "ANY"}, Flow: "notify"},
	{Name: "high-brute-force", Priority: 10, Conditions: config.RiskConditions{Level: "HIGH",
		DetectionTypes: config.IncludeExclude{Include: []string{"BRUTE_FORCE_ATTACK", "OKTA_THREAT_INTELLIGENCE"}}}, Flow: "suspend"},
	{Name: "inactive-first", Priority: 1, Status: "INACTIVE", Conditions: config.RiskConditions{Level: "ANY"}, Flow: "suspend"},
	{Name: "medium-admins", Priority: 20, Conditions: config.RiskConditions{Level: "MEDIUM",
		DetectionTypes: config.IncludeExclude{Exclude: []string{"SUSPICIOUS_APP_ACCESS"}},
		Users:          config.IncludeExclude{Exclude: []string{"00uBreakGlass"}},
		Groups:         config.IncludeExclude{Include: []string{"00gAdmins"}, Exclude: []string{"00gContractors"}}}, Flow: "clear"},
	{Name: "low-only", Priority: 30, Conditions: config.RiskConditions{Level: "LOW"}, Flow: "notify"},
}

func TestExplainRiskRules(t *testing.T) {
	t.Parallel()
	r := routerFor(t, nil, explainRules)
	trig := func(level, detection, user string, groups ...string) *event.Event {
		return riskEv(event.RiskTrigger{UserID: user, RiskLevel: level, DetectionType: detection, Groups: groups})
	}
	// want lists, per rule in priority order (inactive-first, high-brute-force, medium-admins,
	// low-only, any-risk-notify, then the default rule), "MATCH", "skip" or a no-match reason.
	tests := []struct {
		name string
		ev   *event.Event
		want []string
	}{
		{"high brute force: first active rule wins", trig("HIGH", "BRUTE_FORCE_ATTACK", "00uJane"),
			[]string{"skip", "MATCH", "skip", "skip", "skip", "skip"}},
		{"high, detection not included", trig("HIGH", "SUSPICIOUS_APP_ACCESS", "00uJane"),
			[]string{"skip", "detection SUSPICIOUS_APP_ACCESS is not among [BRUTE_FORCE_ATTACK OKTA_THREAT_INTELLIGENCE]",
				"risk level HIGH is not MEDIUM", "risk level HIGH is not LOW", "MATCH", "skip"}},
		{"medium admin", trig("MEDIUM", "SESSION_INFLUENCED_USER_RISK", "00uJane", "00gAdmins"),
			[]string{"skip", "risk level MEDIUM is not HIGH", "MATCH", "skip", "skip", "skip"}},
		{"medium, excluded detection", trig("MEDIUM", "SUSPICIOUS_APP_ACCESS", "00uJane", "00gAdmins"),
			[]string{"skip", "risk level MEDIUM is not HIGH", "detection SUSPICIOUS_APP_ACCESS is excluded", "risk level MEDIUM is not LOW", "MATCH", "skip"}},
		{"medium, excluded user", trig("MEDIUM", "BRUTE_FORCE_ATTACK", "00uBreakGlass", "00gAdmins"),
			[]string{"skip", "risk level MEDIUM is not HIGH", "user 00uBreakGlass is excluded", "risk level MEDIUM is not LOW", "MATCH", "skip"}},
		{"medium, excluded group wins over included group", trig("MEDIUM", "BRUTE_FORCE_ATTACK", "00uJane", "00gAdmins", "00gContractors"),
			[]string{"skip", "risk level MEDIUM is not HIGH", "user is in an excluded group", "risk level MEDIUM is not LOW", "MATCH", "skip"}},
		{"medium, not in an included group", trig("MEDIUM", "BRUTE_FORCE_ATTACK", "00uJane", "00gEveryone"),
			[]string{"skip", "risk level MEDIUM is not HIGH", "user 00uJane is neither an included user nor in an included group", "risk level MEDIUM is not LOW", "MATCH", "skip"}},
		{"low", trig("LOW", "ADMIN_REPORTED_USER_RISK", "00uJane"),
			[]string{"skip", "risk level LOW is not HIGH", "risk level LOW is not MEDIUM", "MATCH", "skip", "skip"}},
	}
	order := []string{"inactive-first", "high-brute-force", "medium-admins", "low-only", "any-risk-notify", policy.DefaultRuleName}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			steps := r.Explain(tt.ev)
			if len(steps) != len(order) {
				t.Fatalf("Explain gave %d steps, want %d: %+v", len(steps), len(order), steps)
			}
			var matched string
			for i, s := range steps {
				if s.Name != order[i] {
					t.Errorf("step %d is %q, want %q (priority order)", i, s.Name, order[i])
				}
				switch w := tt.want[i]; w {
				case "MATCH":
					if !s.Match || !s.Evaluated {
						t.Errorf("step %s: %+v, want a match", s.Name, s)
					}
					matched = s.Name
				case "skip":
					if s.Evaluated || s.Match || !strings.HasPrefix(s.Reason, "not ") {
						t.Errorf("step %s: %+v, want not evaluated", s.Name, s)
					}
				default:
					if !s.Evaluated || s.Match || s.Reason != w {
						t.Errorf("step %s: evaluated %v, match %v, reason %q; want no match because %q", s.Name, s.Evaluated, s.Match, s.Reason, w)
					}
				}
			}
			// Explain and Route agree.
			dec, err := r.Route(tt.ev)
			if err != nil || len(dec) != 1 || dec[0].Rule != matched {
				t.Errorf("Route = %v, %v; Explain matched %q", dec, err, matched)
			}
		})
	}
}

func TestExplainDefaultRule(t *testing.T) {
	t.Parallel()
	r := routerFor(t, nil, []config.RiskRule{
		{Name: "high", Priority: 5, Conditions: config.RiskConditions{Level: "HIGH"}, Flow: "clear"},
		{Name: "off", Priority: 1, Status: "INACTIVE", Conditions: config.RiskConditions{Level: "ANY"}, Flow: "clear"},
	})
	ev := riskEv(event.RiskTrigger{UserID: "00uJane", RiskLevel: "LOW", DetectionType: "ADMIN_REPORTED_USER_RISK"})
	steps := r.Explain(ev)
	got := make([]string, len(steps))
	for i, s := range steps {
		got[i] = fmt.Sprintf("%s/%d/%s/%v", s.Kind, s.Priority, s.Name, s.Match)
	}
	want := []string{"rule/1/off/false", "rule/5/high/false", "default-rule/99/Default Policy Rule/true"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("steps = %v, want %v", got, want)
	}
	if last := steps[len(steps)-1]; len(last.Flows) != 0 || !strings.Contains(last.Reason, "no_route") {
		t.Errorf("default rule step = %+v; it runs no flow and the event is dead-lettered as no_route", last)
	}
	if steps[0].Reason != "not evaluated: the rule is INACTIVE" {
		t.Errorf("inactive rule reason = %q", steps[0].Reason)
	}
	if _, err := r.Route(ev); !errors.Is(err, policy.ErrNoRoute) {
		t.Errorf("Route = %v, want ErrNoRoute", err)
	}
}

func TestExplainRoutes(t *testing.T) {
	t.Parallel()
	r := routerFor(t, []config.Route{
		{Name: "unused-admin", Match: config.IssueMatch{Titles: []string{"unused admin account"}}, Flows: []string{"suspend"}},
		{Name: "okta-high", Match: config.IssueMatch{Severities: []string{"High", "Critical"}, SourceProducts: []string{"Okta"}}, Flows: []string{"notify", "suspend"}},
		{Name: "entra", Match: config.IssueMatch{SourceProducts: []string{"AAD"}}, Flows: []string{"disable-entra"}},
		{Name: "catch-all", Flows: []string{"log"}},
	}, nil)
	steps := r.Explain(issueEv(seedIssue))
	want := []struct {
		match  bool
		reason string
	}{
		{true, `title "Unused Admin Account" matches`},
		{true, `severity "High", source product "Okta" match`},
		{false, `source product "Okta" is not "AAD"`},
		{true, "no conditions: matches every issue"},
	}
	if len(steps) != len(want) {
		t.Fatalf("steps = %+v", steps)
	}
	for i, s := range steps {
		if s.Kind != policy.StepRoute || !s.Evaluated || s.Match != want[i].match || s.Reason != want[i].reason {
			t.Errorf("step %d (%s) = match %v, %q; want %v, %q", i, s.Name, s.Match, s.Reason, want[i].match, want[i].reason)
		}
	}
	why, ok := policy.IssueMatchReason(config.IssueMatch{Titles: []string{"Old Password", "No MFA - Admin Account"}}, &seedIssue)
	if ok || why != `title "Unused Admin Account" is not any of "Old Password", "No MFA - Admin Account"` {
		t.Errorf("IssueMatchReason = %q, %v", why, ok)
	}
}
