package policy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
)

// fakeGroups answers group look-ups from a map and counts them; a user it does not know fails.
type fakeGroups struct {
	mu     sync.Mutex
	groups map[string][]string
	calls  map[string]int
	err    error
}

func (f *fakeGroups) UserGroupIDs(_ context.Context, user string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[user]++
	if f.err != nil {
		return nil, f.err
	}
	g, ok := f.groups[user]
	if !ok {
		return nil, errors.New("okta: not found")
	}
	return g, nil
}

var _ policy.GroupLookup = (*fakeGroups)(nil)

func groupRules() []config.RiskRule {
	return []config.RiskRule{
		{Name: "vip", Priority: 1, Conditions: config.RiskConditions{Level: "HIGH", Groups: config.IncludeExclude{Include: []string{"00gVIP"}}}, Flow: "page"},
		{Name: "high-but-not-break-glass", Priority: 2, Conditions: config.RiskConditions{Level: "HIGH",
			Groups: config.IncludeExclude{Exclude: []string{"00gBreakGlass"}}}, Flow: "suspend"},
		{Name: "medium", Priority: 3, Conditions: config.RiskConditions{Level: "MEDIUM"}, Flow: "notify"},
	}
}

func groupRouter(t *testing.T, g policy.GroupLookup) *policy.Router {
	t.Helper()
	cfg := &config.Config{RiskRules: groupRules()}
	for _, f := range []string{"page", "suspend", "notify"} {
		cfg.Flows = append(cfg.Flows, config.Flow{Name: f, URL: "https://acme.workflows.okta.com/api/flo/" + f + "/invoke", ClientToken: config.Secret{Env: "TOKEN"}})
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return policy.New(cfg, policy.WithGroupLookup(g))
}

func TestRouteLooksGroupsUp(t *testing.T) {
	t.Parallel()
	g := &fakeGroups{groups: map[string][]string{
		"00uVIP":       {"00gEveryone", "00gVIP"},
		"00uBreak":     {"00gEveryone", "00gBreakGlass"},
		"00uPlain":     {"00gEveryone"},
		"00uNoGroups":  {},
		"00uVIPBreak":  {"00gVIP", "00gBreakGlass"},
		"00uMediumVIP": {"00gVIP"},
	}}
	r := groupRouter(t, g)
	cases := []struct {
		user, level string
		wantRule    string // "" = unrouted
	}{
		{"00uVIP", "HIGH", "vip"},
		{"00uBreak", "HIGH", ""}, // excluded by rule 2, and no later rule takes HIGH
		{"00uPlain", "HIGH", "high-but-not-break-glass"},
		{"00uNoGroups", "HIGH", "high-but-not-break-glass"},
		{"00uVIPBreak", "HIGH", "vip"}, // the first matching rule wins
		{"00uMediumVIP", "MEDIUM", "medium"},
	}
	for _, c := range cases {
		dec, err := r.RouteContext(t.Context(), riskEvent(event.RiskTrigger{UserID: c.user, RiskLevel: c.level, DetectionType: "BRUTE_FORCE_ATTACK"}))
		switch {
		case c.wantRule == "" && !errors.Is(err, policy.ErrUnrouted):
			t.Errorf("%s %s: Route = %v, %v; want unrouted", c.user, c.level, dec, err)
		case c.wantRule != "" && (err != nil || len(dec) != 1 || dec[0].Rule != c.wantRule):
			t.Errorf("%s %s: Route = %v, %v; want rule %s", c.user, c.level, dec, err, c.wantRule)
		}
	}
	// One look-up per evaluation, however many rules need the groups; none when no rule
	// with a group condition is reached.
	if n := g.calls["00uPlain"]; n != 1 {
		t.Errorf("00uPlain looked up %d times, want 1", n)
	}
	if n := g.calls["00uMediumVIP"]; n != 0 {
		t.Errorf("a MEDIUM event fails both group rules on its level; looked up %d times, want 0", n)
	}
	// Principal decides on the membership Route looked up (kept on the event): no second
	// look-up, the same rule.
	ev := riskEvent(event.RiskTrigger{UserID: "00uVIPBreak", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK"})
	if _, err := r.RouteContext(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	before := g.calls["00uVIPBreak"]
	if p, err := r.Principal(ev, nil, event.SubjectITP); err != nil || p.ID != "rule:vip" || g.calls["00uVIPBreak"] != before {
		t.Errorf("Principal = %v, %v after %d → %d look-ups; want rule:vip and no new look-up", p, err, before, g.calls["00uVIPBreak"])
	}
	if len(ev.Risk.Groups) != 2 {
		t.Errorf("event groups %v, want the looked-up membership recorded", ev.Risk.Groups)
	}
	// Groups the event carries are used as they are.
	if _, err := r.RouteContext(t.Context(), riskEvent(event.RiskTrigger{UserID: "00uUnknown", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK", Groups: []string{"00gVIP"}})); err != nil {
		t.Errorf("event carrying groups: %v", err)
	}
	if g.calls["00uUnknown"] != 0 {
		t.Error("an event carrying groups was looked up")
	}
}

func TestRouteGroupLookupFailureIsNotAGuess(t *testing.T) {
	t.Parallel()
	g := &fakeGroups{err: errors.New("okta: unavailable: HTTP 503")}
	r := groupRouter(t, g)
	ev := riskEvent(event.RiskTrigger{UserID: "00uPlain", RiskLevel: "HIGH", DetectionType: "BRUTE_FORCE_ATTACK"})
	_, err := r.RouteContext(t.Context(), ev)
	var le *policy.GroupLookupError
	if !errors.As(err, &le) || !errors.Is(err, policy.ErrGroupLookup) {
		t.Fatalf("Route = %v, want a *GroupLookupError", err)
	}
	if errors.Is(err, policy.ErrUnauthorized) || errors.Is(err, policy.ErrUnrouted) || errors.Is(err, policy.ErrGroupMembershipUnknown) {
		t.Errorf("a failed look-up must be retried, not refused or skipped: %v", err)
	}
	for _, want := range []string{"00uPlain", "vip", "503", "retried"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := r.Principal(ev, nil, event.SubjectITP); !errors.Is(err, policy.ErrGroupLookup) {
		t.Errorf("Principal = %v, want the look-up error", err)
	}
	steps := r.ExplainContext(t.Context(), ev)
	if !strings.HasPrefix(steps[0].Reason, "undecided: ") || steps[1].Evaluated {
		t.Errorf("explain = %+v, want undecided at the first rule and nothing after", steps[:2])
	}
}

func TestRuleActions(t *testing.T) {
	t.Parallel()
	// Built in code and not validated: the native clearSessions flow (no URL) is validated by
	// the native-actions work, not here.
	cfg := &config.Config{
		Flows: []config.Flow{
			{Name: "wf", URL: "https://x/wf/invoke", ClientToken: config.Secret{Env: "T"}},
			{Name: "clear", Action: config.FlowActionClearSessions},
		},
		RiskRules: []config.RiskRule{
			{Name: "terminate", Priority: 1, Action: "terminate_all_sessions", Conditions: config.RiskConditions{Level: "HIGH"}},
			{Name: "run", Priority: 2, Conditions: config.RiskConditions{Level: "MEDIUM"}, Flow: "wf"},
			{Name: "log", Priority: 3, Conditions: config.RiskConditions{Level: "LOW"}},
		},
	}
	cfg.SetDefaults()
	r := policy.New(cfg)
	for _, c := range []struct {
		level, flow, action string
	}{{"HIGH", "clear", "TERMINATE_ALL_SESSIONS"}, {"MEDIUM", "wf", "RUN_WORKFLOW"}, {"LOW", "", "NONE"}} {
		ev := riskEvent(event.RiskTrigger{UserID: "00u1", RiskLevel: c.level, DetectionType: "BRUTE_FORCE_ATTACK"})
		dec, err := r.Route(ev)
		switch {
		case c.flow == "" && !errors.Is(err, policy.ErrUnrouted):
			t.Errorf("%s: Route = %v, %v; want log-only", c.level, dec, err)
		case c.flow != "" && (err != nil || dec[0].Flow != c.flow):
			t.Errorf("%s: Route = %v, %v; want flow %s", c.level, dec, err, c.flow)
		}
		var matched *policy.Step
		for i, s := range r.Explain(ev) {
			if s.Match {
				matched = &r.Explain(ev)[i]
				break
			}
		}
		if matched == nil || matched.Action != c.action {
			t.Errorf("%s: explain step %+v, want action %s", c.level, matched, c.action)
		}
	}
}
