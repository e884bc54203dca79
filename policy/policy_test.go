package policy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
)

// newRouter builds a router the way the service does: from a configuration that has had its
// defaults filled and passed validation. Every flow the routes and rules name is defined.
func newRouter(t *testing.T, routes []config.Route, rules []config.RiskRule) *policy.Router {
	t.Helper()
	cfg := &config.Config{Routes: routes, RiskRules: rules}
	seen := map[string]bool{}
	addFlow := func(name string) {
		if !seen[name] {
			seen[name] = true
			cfg.Flows = append(cfg.Flows, config.Flow{Name: name, URL: "https://acme.workflows.okta.com/api/flo/" + name + "/invoke", ClientToken: config.Secret{Env: "TOKEN"}})
		}
	}
	for _, r := range routes {
		for _, f := range r.Flows {
			addFlow(f)
		}
	}
	for _, r := range rules {
		if r.Flow != "" { // a log-only rule
			addFlow(r.Flow)
		}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test configuration is invalid: %v", err)
	}
	return policy.New(cfg)
}

func issueEvent(is event.Issue) *event.Event {
	return &event.Event{ID: "evt-1", Kind: event.KindISPMIssue, Issue: &is}
}

func riskEvent(rt event.RiskTrigger) *event.Event {
	return &event.Event{ID: "evt-2", Kind: event.KindEntityRisk, Risk: &rt}
}

// unusedAdmin is the issue of Okta's "ISPM JSON schema example".
var unusedAdmin = event.Issue{
	ID:                      "Alert_V32uL3CHijlQYHq-uqTkqWOXSJ8~",
	Category:                "Least Privilege",
	Severity:                "High",
	Title:                   "Unused Admin Account",
	EntityType:              "Account",
	EntitySourceProductName: "Okta",
}

func with(is event.Issue, f func(*event.Issue)) event.Issue {
	f(&is)
	return is
}

func TestRouteIssue(t *testing.T) {
	t.Parallel()
	routes := []config.Route{
		{Name: "unused-admin", Match: config.IssueMatch{Titles: []string{"Unused Admin Account"}}, Flows: []string{"suspend"}},
		{Name: "okta-least-privilege", Match: config.IssueMatch{
			Categories: []string{"Least Privilege"}, SourceProducts: []string{"Okta"},
		}, Flows: []string{"notify", "suspend"}},
		{Name: "critical", Match: config.IssueMatch{Severities: []string{"Critical", "High"}, EntityTypes: []string{"Account", "User"}}, Flows: []string{"page"}},
		{Name: "github", Match: config.IssueMatch{SourceProducts: []string{"GitHub"}}, Flows: []string{"github"}},
		{Name: "everything-about-apps", Match: config.IssueMatch{EntityTypes: []string{"App"}}, Flows: []string{"audit"}},
	}
	r := newRouter(t, routes, nil)

	tests := []struct {
		name  string
		issue event.Issue
		want  []policy.Decision
	}{
		{
			name:  "every matching route adds flows, each flow once with the first route's name",
			issue: unusedAdmin,
			want: []policy.Decision{
				{Rule: "unused-admin", Flow: "suspend"},
				{Rule: "okta-least-privilege", Flow: "notify"},
				{Rule: "critical", Flow: "page"},
			},
		},
		{
			name: "case-insensitive title, category, severity, entity type and source product",
			issue: event.Issue{
				Title: "UNUSED admin ACCOUNT", Category: "least privilege", Severity: "HIGH",
				EntityType: "account", EntitySourceProductName: "OKTA",
			},
			want: []policy.Decision{
				{Rule: "unused-admin", Flow: "suspend"},
				{Rule: "okta-least-privilege", Flow: "notify"},
				{Rule: "critical", Flow: "page"},
			},
		},
		{
			name:  "surrounding spaces ignored",
			issue: event.Issue{Title: "  Unused Admin Account\t"},
			want:  []policy.Decision{{Rule: "unused-admin", Flow: "suspend"}},
		},
		{
			name: "all non-empty conditions must match (category without source product)",
			issue: with(unusedAdmin, func(is *event.Issue) {
				is.Title = "Other"
				is.EntitySourceProductName = "Salesforce"
				is.Severity = "Low"
			}),
			want: nil,
		},
		{
			name:  "severity list: any value matches",
			issue: event.Issue{Title: "x", Severity: "critical", EntityType: "User"},
			want:  []policy.Decision{{Rule: "critical", Flow: "page"}},
		},
		{
			name:  "entity type condition fails the route",
			issue: event.Issue{Title: "x", Severity: "Critical", EntityType: "Service Account"},
			want:  nil,
		},
		{
			name:  "empty lists match any value, including empty",
			issue: event.Issue{Title: "", EntityType: "App"},
			want:  []policy.Decision{{Rule: "everything-about-apps", Flow: "audit"}},
		},
		{
			name:  "source product only",
			issue: event.Issue{Title: "Stale Token", EntitySourceProductName: "github"},
			want:  []policy.Decision{{Rule: "github", Flow: "github"}},
		},
		{
			name:  "a title is not matched by prefix",
			issue: event.Issue{Title: "Unused Admin Account (2)"},
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Route(issueEvent(tt.issue))
			if tt.want == nil {
				if !errors.Is(err, policy.ErrNoRoute) {
					t.Fatalf("Route = %v, %v; want an error wrapping ErrNoRoute", got, err)
				}
				if got != nil {
					t.Errorf("Route returned decisions %v with its error", got)
				}
				if !strings.Contains(err.Error(), "title "+quote(tt.issue.Title)) {
					t.Errorf("error %q does not name the title %q", err, tt.issue.Title)
				}
				return
			}
			if err != nil {
				t.Fatalf("Route: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Route = %v, want %v", got, tt.want)
			}
		})
	}
}

func quote(s string) string { return `"` + s + `"` }

func TestRouteIssueNoRoutes(t *testing.T) {
	t.Parallel()
	r := newRouter(t, nil, nil)
	_, err := r.Route(issueEvent(unusedAdmin))
	if !errors.Is(err, policy.ErrNoRoute) {
		t.Fatalf("Route with no routes: %v, want ErrNoRoute", err)
	}
	for _, want := range []string{`"Unused Admin Account"`, unusedAdmin.ID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %s", err, want)
		}
	}
}

func TestIssueMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		match config.IssueMatch
		want  bool
	}{
		{"empty match", config.IssueMatch{}, true},
		{"title", config.IssueMatch{Titles: []string{"No MFA - Admin Account", "unused admin account"}}, true},
		{"wrong title", config.IssueMatch{Titles: []string{"No MFA - Admin Account"}}, false},
		{"category", config.IssueMatch{Categories: []string{"LEAST PRIVILEGE"}}, true},
		{"wrong category", config.IssueMatch{Categories: []string{"Authentication"}}, false},
		{"severity", config.IssueMatch{Severities: []string{"high"}}, true},
		{"wrong severity", config.IssueMatch{Severities: []string{"Medium"}}, false},
		{"entity type", config.IssueMatch{EntityTypes: []string{"ACCOUNT"}}, true},
		{"wrong entity type", config.IssueMatch{EntityTypes: []string{"Group"}}, false},
		{"source product", config.IssueMatch{SourceProducts: []string{"okta"}}, true},
		{"wrong source product", config.IssueMatch{SourceProducts: []string{"Okta Workflows"}}, false},
		{"all five", config.IssueMatch{
			Titles: []string{"Unused Admin Account"}, Categories: []string{"Least Privilege"}, Severities: []string{"High"},
			EntityTypes: []string{"Account"}, SourceProducts: []string{"Okta"},
		}, true},
		{"all five but one", config.IssueMatch{
			Titles: []string{"Unused Admin Account"}, Categories: []string{"Least Privilege"}, Severities: []string{"High"},
			EntityTypes: []string{"Account"}, SourceProducts: []string{"Google Workspace"},
		}, false},
	}
	for _, tt := range tests {
		is := unusedAdmin
		if got := policy.IssueMatches(tt.match, &is); got != tt.want {
			t.Errorf("%s: IssueMatches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRouteRisk(t *testing.T) {
	t.Parallel()
	// Declared out of priority order, as a user may write them.
	rules := []config.RiskRule{
		{Name: "high-any", Priority: 10, Conditions: config.RiskConditions{Level: "HIGH"}, Flow: "clear-sessions"},
		{Name: "vip-never", Priority: 2, Conditions: config.RiskConditions{
			Users:  config.IncludeExclude{Include: []string{"00uVIP"}},
			Groups: config.IncludeExclude{Include: []string{"00gVIP"}},
		}, Flow: "page-security"},
		{Name: "disabled", Priority: 1, Status: "INACTIVE", Flow: "disabled-flow"},
		{Name: "brute-force", Priority: 5, Conditions: config.RiskConditions{
			DetectionTypes: config.IncludeExclude{Include: []string{"BRUTE_FORCE_ATTACK"}},
			Groups:         config.IncludeExclude{Exclude: []string{"00gBreakGlass"}},
		}, Flow: "reset-password"},
		{Name: "medium-not-admin-reported", Priority: 20, Conditions: config.RiskConditions{
			Level:          "MEDIUM",
			DetectionTypes: config.IncludeExclude{Exclude: []string{"ADMIN_REPORTED_USER_RISK"}},
			Users:          config.IncludeExclude{Exclude: []string{"00uTest"}},
		}, Flow: "notify"},
	}
	r := newRouter(t, nil, rules)

	tests := []struct {
		name     string
		trigger  event.RiskTrigger
		wantRule string // "" for no route
		wantFlow string
	}{
		{"lower priority first even if declared later", event.RiskTrigger{UserID: "00uVIP", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK"}, "vip-never", "page-security"},
		{"first match wins", event.RiskTrigger{UserID: "00u1", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK", Groups: []string{}}, "brute-force", "reset-password"},
		{"inactive rules are skipped", event.RiskTrigger{UserID: "00u1", RiskLevel: "LOW", DetectionType: "SUSPICIOUS_APP_ACCESS"}, "", ""},
		{"level exact", event.RiskTrigger{UserID: "00u1", RiskLevel: "HIGH", DetectionType: "SUSPICIOUS_APP_ACCESS"}, "high-any", "clear-sessions"},
		{"level compared case-insensitively", event.RiskTrigger{UserID: "00u1", RiskLevel: "high", DetectionType: "SUSPICIOUS_APP_ACCESS"}, "high-any", "clear-sessions"},
		{"level ANY", event.RiskTrigger{UserID: "00u1", RiskLevel: "LOW", DetectionType: "BRUTE_FORCE_ATTACK", Groups: []string{}}, "brute-force", "reset-password"},
		{"group include", event.RiskTrigger{UserID: "00u1", RiskLevel: "LOW", DetectionType: "SUSPICIOUS_APP_ACCESS", Groups: []string{"00gOther", "00gVIP"}}, "vip-never", "page-security"},
		{"group exclude", event.RiskTrigger{UserID: "00u1", RiskLevel: "LOW", DetectionType: "BRUTE_FORCE_ATTACK", Groups: []string{"00gBreakGlass"}}, "", ""},
		{"detection exclude", event.RiskTrigger{UserID: "00u1", RiskLevel: "MEDIUM", DetectionType: "ADMIN_REPORTED_USER_RISK"}, "", ""},
		{"detection not excluded", event.RiskTrigger{UserID: "00u1", RiskLevel: "MEDIUM", DetectionType: "OKTA_THREAT_INTELLIGENCE"}, "medium-not-admin-reported", "notify"},
		{"user exclude", event.RiskTrigger{UserID: "00uTest", RiskLevel: "MEDIUM", DetectionType: "OKTA_THREAT_INTELLIGENCE"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Route(riskEvent(tt.trigger))
			if tt.wantRule == "" {
				if !errors.Is(err, policy.ErrNoRoute) {
					t.Fatalf("Route = %v, %v; want an error wrapping ErrNoRoute", got, err)
				}
				for _, want := range []string{"default rule", tt.trigger.UserID} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Route: %v", err)
			}
			want := []policy.Decision{{Rule: tt.wantRule, Flow: tt.wantFlow}}
			if !slices.Equal(got, want) {
				t.Errorf("Route = %v, want %v", got, want)
			}
		})
	}
}

// A configuration as a user writes it: lower-case status and level are accepted, and an
// inactive rule does not run.
func TestRouteRiskFromYAML(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
flows:
  - {name: a, url: https://x/a/invoke, clientToken: {env: T}}
  - {name: b, url: https://x/b/invoke, clientToken: {env: T}}
entityRiskPolicy:
  - {name: off, priority: 1, status: inactive, flow: a}
  - {name: high, priority: 2, conditions: {level: high}, flow: b}
`), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := policy.New(cfg)
	got, err := r.Route(riskEvent(event.RiskTrigger{UserID: "00u1", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK"}))
	if err != nil {
		t.Fatalf("Route: %v", err)
	}
	if want := []policy.Decision{{Rule: "high", Flow: "b"}}; !slices.Equal(got, want) {
		t.Errorf("Route = %v, want %v", got, want)
	}
	if _, err := r.Route(riskEvent(event.RiskTrigger{UserID: "00u1", RiskLevel: "LOW", DetectionType: "BRUTE_FORCE_ATTACK"})); !errors.Is(err, policy.ErrNoRoute) {
		t.Errorf("LOW risk: %v, want ErrNoRoute", err)
	}
}

func TestRouteEmptyEvent(t *testing.T) {
	t.Parallel()
	r := newRouter(t, nil, nil)
	_, err := r.Route(&event.Event{ID: "evt-9"})
	if !errors.Is(err, policy.ErrNoRoute) || !strings.Contains(err.Error(), "evt-9") {
		t.Errorf("Route of an event with neither issue nor risk: %v, want ErrNoRoute naming evt-9", err)
	}
}

// Okta's "Any" level means Low, Medium or High: a user.risk.change that clears the risk (NONE)
// must not run the remediation of a rule at level ANY.
func TestRiskRuleAnyLevelIgnoresClearedRisk(t *testing.T) {
	t.Parallel()
	rule := config.RiskRule{Name: "r", Priority: 1, Status: "ACTIVE", Conditions: config.RiskConditions{Level: "ANY"}, Flow: "f"}
	for _, level := range []string{"LOW", "MEDIUM", "HIGH", "high"} {
		if ok, why := policy.RiskRuleMatches(rule, &event.RiskTrigger{UserID: "00u1", RiskLevel: level}); !ok {
			t.Errorf("level %s: ANY rule does not match (%s)", level, why)
		}
	}
	for _, level := range []string{"NONE", "none"} {
		if ok, _ := policy.RiskRuleMatches(rule, &event.RiskTrigger{UserID: "00u1", RiskLevel: level}); ok {
			t.Errorf("level %s: ANY rule matches a cleared risk", level)
		}
	}
}

func TestRiskRuleMatches(t *testing.T) {
	t.Parallel()
	jane := event.RiskTrigger{UserID: "00uJane", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK", Groups: []string{"00gEng", "00gAdmins"}}
	tests := []struct {
		name       string
		conditions config.RiskConditions
		wantReason string // "" when the rule matches
	}{
		{"level ANY", config.RiskConditions{Level: "ANY"}, ""},
		{"level HIGH", config.RiskConditions{Level: "HIGH"}, ""},
		{"level LOW", config.RiskConditions{Level: "LOW"}, "risk level HIGH is not LOW"},
		{"level MEDIUM", config.RiskConditions{Level: "MEDIUM"}, "risk level HIGH is not MEDIUM"},
		{"detection included", config.RiskConditions{Level: "ANY", DetectionTypes: config.IncludeExclude{Include: []string{"SUSPICIOUS_APP_ACCESS", "BRUTE_FORCE_ATTACK"}}}, ""},
		{"detection not included", config.RiskConditions{Level: "ANY", DetectionTypes: config.IncludeExclude{Include: []string{"SUSPICIOUS_APP_ACCESS"}}}, "detection BRUTE_FORCE_ATTACK is not among"},
		{"detection excluded", config.RiskConditions{Level: "ANY", DetectionTypes: config.IncludeExclude{Exclude: []string{"BRUTE_FORCE_ATTACK"}}}, "detection BRUTE_FORCE_ATTACK is excluded"},
		{"other detection excluded", config.RiskConditions{Level: "ANY", DetectionTypes: config.IncludeExclude{Exclude: []string{"SUSPICIOUS_APP_ACCESS"}}}, ""},
		{"user included", config.RiskConditions{Level: "ANY", Users: config.IncludeExclude{Include: []string{"00uJane"}}}, ""},
		{"user not included", config.RiskConditions{Level: "ANY", Users: config.IncludeExclude{Include: []string{"00uBob"}}}, "user 00uJane is neither an included user nor in an included group"},
		{"user excluded", config.RiskConditions{Level: "ANY", Users: config.IncludeExclude{Exclude: []string{"00uJane"}}}, "user 00uJane is excluded"},
		{"other user excluded", config.RiskConditions{Level: "ANY", Users: config.IncludeExclude{Exclude: []string{"00uBob"}}}, ""},
		{"group included", config.RiskConditions{Level: "ANY", Groups: config.IncludeExclude{Include: []string{"00gAdmins"}}}, ""},
		{"group not included", config.RiskConditions{Level: "ANY", Groups: config.IncludeExclude{Include: []string{"00gSales"}}}, "neither an included user nor in an included group"},
		{"group excluded", config.RiskConditions{Level: "ANY", Groups: config.IncludeExclude{Exclude: []string{"00gEng"}}}, "user is in an excluded group"},
		{"other group excluded", config.RiskConditions{Level: "ANY", Groups: config.IncludeExclude{Exclude: []string{"00gSales"}}}, ""},
		{"included by group, not by user", config.RiskConditions{Level: "ANY",
			Users:  config.IncludeExclude{Include: []string{"00uBob"}},
			Groups: config.IncludeExclude{Include: []string{"00gEng"}}}, ""},
		{"included by id but in an excluded group", config.RiskConditions{Level: "ANY",
			Users:  config.IncludeExclude{Include: []string{"00uJane"}},
			Groups: config.IncludeExclude{Exclude: []string{"00gAdmins"}}}, "user is in an excluded group"},
		{"included by group but excluded by id", config.RiskConditions{Level: "ANY",
			Users:  config.IncludeExclude{Exclude: []string{"00uJane"}},
			Groups: config.IncludeExclude{Include: []string{"00gEng"}}}, "user 00uJane is excluded"},
	}
	for _, tt := range tests {
		rule := config.RiskRule{Name: "r", Priority: 1, Status: "ACTIVE", Conditions: tt.conditions, Flow: "f"}
		rt := jane
		ok, reason := policy.RiskRuleMatches(rule, &rt)
		if tt.wantReason == "" {
			if !ok || reason != "" {
				t.Errorf("%s: RiskRuleMatches = %v, %q; want true, \"\"", tt.name, ok, reason)
			}
			continue
		}
		if ok {
			t.Errorf("%s: RiskRuleMatches = true, want false", tt.name)
		}
		if !strings.Contains(reason, tt.wantReason) {
			t.Errorf("%s: reason %q does not contain %q", tt.name, reason, tt.wantReason)
		}
	}
}

// A rule excluding groups is never passed over for a user whose groups are unknown: the event
// is refused (ErrGroupMembershipUnknown, also ErrUnauthorized). A group inclusion does not
// include such a user. A known empty membership is evaluated as usual.
func TestRiskRuleGroupsUnknown(t *testing.T) {
	t.Parallel()
	r := newRouter(t, nil, []config.RiskRule{
		{Name: "vip", Priority: 1, Conditions: config.RiskConditions{Groups: config.IncludeExclude{Include: []string{"00gVIP"}}}, Flow: "page"},
		{Name: "high-but-not-break-glass", Priority: 2, Conditions: config.RiskConditions{Level: "HIGH",
			Groups: config.IncludeExclude{Exclude: []string{"00gBreakGlass"}}}, Flow: "suspend"},
		{Name: "any", Priority: 3, Flow: "notify"},
	})
	unknown := event.RiskTrigger{UserID: "00uJane", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK"}
	_, err := r.Route(riskEvent(unknown))
	if !errors.Is(err, policy.ErrGroupMembershipUnknown) || !errors.Is(err, policy.ErrUnauthorized) || errors.Is(err, policy.ErrUnrouted) {
		t.Fatalf("Route = %v, want ErrGroupMembershipUnknown and ErrUnauthorized", err)
	}
	for _, want := range []string{"high-but-not-break-glass", "00gBreakGlass", "00uJane", "no group membership"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := r.Principal(riskEvent(unknown), nil, event.SubjectITP); !errors.Is(err, policy.ErrGroupMembershipUnknown) {
		t.Errorf("Principal = %v, want the same refusal", err)
	}
	steps := r.Explain(riskEvent(unknown))
	if s := steps[1]; !s.Evaluated || s.Match || !strings.HasPrefix(s.Reason, "refused: ") {
		t.Errorf("explain step %+v, want the refusal", s)
	}
	if s := steps[2]; s.Evaluated || !strings.Contains(s.Reason, "refused at rule") {
		t.Errorf("explain step after the refusal %+v, want not evaluated", s)
	}
	if !strings.Contains(steps[0].Reason, "no group membership") {
		t.Errorf("group inclusion with unknown membership: %q, want it to say the membership is unknown", steps[0].Reason)
	}

	// Known membership: excluded, or not.
	breakGlass := unknown
	breakGlass.Groups = []string{"00gBreakGlass"}
	if dec, err := r.Route(riskEvent(breakGlass)); err != nil || dec[0].Rule != "any" {
		t.Errorf("break-glass user: Route = %v, %v; want rule any", dec, err)
	}
	none := unknown
	none.Groups = []string{}
	if dec, err := r.Route(riskEvent(none)); err != nil || dec[0].Rule != "high-but-not-break-glass" {
		t.Errorf("user in no group: Route = %v, %v; want rule high-but-not-break-glass", dec, err)
	}
	// A rule the event fails before the group condition needs no membership.
	low := unknown
	low.RiskLevel = "LOW"
	if dec, err := r.Route(riskEvent(low)); err != nil || dec[0].Rule != "any" {
		t.Errorf("LOW event: Route = %v, %v; want rule any", dec, err)
	}
}
