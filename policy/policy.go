package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
)

// ErrNoRoute is returned (wrapped, with the reason) when an event triggers no flow. An event
// that is merely unrouted also matches [ErrUnrouted]; other no-route errors (an event with
// neither an issue nor a risk trigger) do not.
var ErrNoRoute = errors.New("no route")

// ErrUnrouted is matched (errors.Is) by the *[UnroutedError] [Router.Route] returns for a
// well-formed event that simply runs no flow: an ISPM issue no route takes, an entity-risk
// event that matches no custom rule (Okta's catch-all rule only logs), or one whose first
// matching rule is log-only. The intake ends such an event with a terminal "skipped" status
// naming why, not in the DLQ, unless the configuration asks for dead letters.
var ErrUnrouted = errors.New("unrouted")

// ErrGroupMembershipUnknown is matched (errors.Is) by the error [Router.Route] returns for an
// entity-risk event that reaches a rule excluding people by group while the event carries no
// group membership (Okta's user.risk.detect never does). remediator does not look groups up,
// so it cannot tell whether the user is excluded (a break-glass account, say): it refuses the
// event rather than ignore the exclusion. The error also matches [ErrUnauthorized], and the
// intake dead-letters it as unauthorized: a permanent refusal that an operator can replay once
// the membership is known (a detector sending "groups").
var ErrGroupMembershipUnknown = errors.New("group membership unknown")

// UnroutedError says why an event runs no flow. It matches [ErrUnrouted] and [ErrNoRoute].
type UnroutedError struct {
	// Rule is the log-only entity-risk rule that matched, or "" when no route or rule did.
	Rule string
	// Reason is the sentence recorded with the skipped status.
	Reason string
}

func (e *UnroutedError) Error() string { return "unrouted: " + e.Reason }

// Is makes the error match ErrUnrouted and, for callers written before it, ErrNoRoute.
func (e *UnroutedError) Is(target error) bool { return target == ErrUnrouted || target == ErrNoRoute }

// DefaultRuleName and DefaultRulePriority describe Okta's catch-all entity-risk rule.
const (
	DefaultRuleName     = "Default Policy Rule"
	DefaultRulePriority = 99
)

// Decision is one flow an event triggers, and the rule that chose it.
type Decision struct {
	Rule string
	Flow string
}

// Router holds the compiled routing configuration. It is safe for concurrent use.
type Router struct {
	routes   []config.Route
	rules    []config.RiskRule // active rules, by priority
	allRules []config.RiskRule // every rule, by priority (for Explain)

	sets              []config.ResourceSet
	defaultPrincipals map[string]string
	flows             map[string]config.Flow

	groups GroupLookup // nil: membership is what the event carries
}

// Option configures a [Router].
type Option func(*Router)

// WithGroupLookup makes the router look up the groups of an entity-risk event's user when a
// rule with people.groups conditions is reached and the event carries none.
func WithGroupLookup(g GroupLookup) Option { return func(r *Router) { r.groups = g } }

// New compiles the routes and entity-risk rules of a validated configuration. A rule's Flow
// is the flow its action runs (config.RuleFlow): "" for a log-only rule.
func New(cfg *config.Config, opts ...Option) *Router {
	r := &Router{routes: slices.Clone(cfg.Routes)}
	for _, rule := range cfg.RiskRules {
		rule.Flow, rule.Action = cfg.RuleFlow(rule), rule.EffectiveAction()
		r.allRules = append(r.allRules, rule)
		if rule.Status == "ACTIVE" {
			r.rules = append(r.rules, rule)
		}
	}
	sort.SliceStable(r.rules, func(i, j int) bool { return r.rules[i].Priority < r.rules[j].Priority })
	sort.SliceStable(r.allRules, func(i, j int) bool { return r.allRules[i].Priority < r.allRules[j].Priority })
	r.compileAuthz(cfg)
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *Router) memberships(ctx context.Context, rt *event.RiskTrigger) *memberships {
	return &memberships{ctx: ctx, rt: rt, lookup: r.groups}
}

// Route is [Router.RouteContext] without a deadline on group look-ups.
func (r *Router) Route(ev *event.Event) ([]Decision, error) {
	return r.RouteContext(context.Background(), ev)
}

// RouteContext returns the flows ev triggers, or an error wrapping [ErrNoRoute] that says
// why not. An entity-risk event that reaches a rule with people.groups conditions has its
// user's groups looked up (with [WithGroupLookup]) and recorded in ev.Risk.Groups, so that
// [Router.Principal] decides on the same membership; a failed look-up is a
// [*GroupLookupError] (retry the event later), never a guess.
func (r *Router) RouteContext(ctx context.Context, ev *event.Event) ([]Decision, error) {
	switch {
	case ev.Issue != nil:
		return r.routeIssue(ev.Issue)
	case ev.Risk != nil:
		return r.routeRisk(ctx, ev.Risk)
	}
	return nil, fmt.Errorf("%w: event %q carries neither an issue nor a risk trigger", ErrNoRoute, ev.ID)
}

func (r *Router) routeIssue(is *event.Issue) ([]Decision, error) {
	var out []Decision
	seen := map[string]bool{}
	for _, rt := range r.routes {
		if !IssueMatches(rt.Match, is) {
			continue
		}
		for _, f := range rt.Flows {
			if !seen[f] {
				seen[f] = true
				out = append(out, Decision{Rule: rt.Name, Flow: f})
			}
		}
	}
	if len(out) == 0 {
		return nil, &UnroutedError{Reason: fmt.Sprintf("no route matches ISPM issue %q (title %q, category %q, severity %q, entity type %q, source product %q)",
			is.ID, is.Title, is.Category, is.Severity, is.EntityType, is.EntitySourceProductName)}
	}
	return out, nil
}

// IssueMatches reports whether every non-empty condition of m matches the issue.
func IssueMatches(m config.IssueMatch, is *event.Issue) bool {
	return anyFold(m.Titles, is.Title) &&
		anyFold(m.Categories, is.Category) &&
		anyFold(m.Severities, is.Severity) &&
		anyFold(m.EntityTypes, is.EntityType) &&
		anyFold(m.SourceProducts, is.EntitySourceProductName)
}

func anyFold(want []string, got string) bool {
	if len(want) == 0 {
		return true
	}
	got = strings.TrimSpace(got)
	for _, w := range want {
		if strings.EqualFold(strings.TrimSpace(w), got) {
			return true
		}
	}
	return false
}

func (r *Router) routeRisk(ctx context.Context, rt *event.RiskTrigger) ([]Decision, error) {
	rule, err := r.firstRiskRule(ctx, rt)
	if err != nil {
		return nil, err
	}
	if rule == nil {
		return nil, &UnroutedError{Reason: fmt.Sprintf("entity-risk event for user %q (risk %s, detection %s) matched no custom rule; the default rule (priority %d) only records it",
			rt.UserID, rt.RiskLevel, rt.DetectionType, DefaultRulePriority)}
	}
	if rule.Flow == "" {
		return nil, &UnroutedError{Rule: rule.Name, Reason: fmt.Sprintf("entity-risk event for user %q (risk %s, detection %s) matched rule %q (priority %d), which is log-only (action NONE): evaluation stops there and no flow runs",
			rt.UserID, rt.RiskLevel, rt.DetectionType, rule.Name, rule.Priority)}
	}
	return []Decision{{Rule: rule.Name, Flow: rule.Flow}}, nil
}

// firstRiskRule returns the active rule that decides rt: the first, by priority, that matches;
// nil when none does. A rule that cannot be evaluated (group membership unknown) stops the
// search with its error: a later rule must not win by default.
func (r *Router) firstRiskRule(ctx context.Context, rt *event.RiskTrigger) (*config.RiskRule, error) {
	m := r.memberships(ctx, rt)
	for i := range r.rules {
		ok, _, err := evalRiskRule(r.rules[i], rt, m)
		if err != nil {
			return nil, err
		}
		if ok {
			return &r.rules[i], nil
		}
	}
	return nil, nil
}

// detectionUnknown (event.DetectionUnknown) is the detection type of an entity-risk event
// whose detection name maps to none of Okta's riskDetectionTypes. It matches rules with no
// detection condition or an exclude condition, never an include, even one naming every type.
const detectionUnknown = event.DetectionUnknown

// RiskRuleMatches reports whether rule matches the trigger and, when it does not, why, with
// the groups the trigger carries (no look-up). A rule that cannot be evaluated because it
// excludes groups and the trigger carries no group membership does not match here;
// [Router.Route] refuses such an event instead (see [ErrGroupMembershipUnknown]).
func RiskRuleMatches(rule config.RiskRule, rt *event.RiskTrigger) (bool, string) {
	ok, why, err := evalRiskRule(rule, rt, &memberships{rt: rt})
	if err != nil {
		return false, err.Error()
	}
	return ok, why
}

// memberships finds the at-risk user's groups once per evaluation: those the event carries,
// else, with a look-up configured, the org's answer; else unknown.
type memberships struct {
	ctx    context.Context
	rt     *event.RiskTrigger
	lookup GroupLookup

	done   bool
	groups []string
	known  bool
	err    error
}

func (m *memberships) get() ([]string, bool, error) {
	if m.done {
		return m.groups, m.known, m.err
	}
	m.done = true
	switch {
	case m.rt.Groups != nil: // an empty list means the user is in none
		m.groups, m.known = m.rt.Groups, true
	case m.lookup != nil:
		ctx := m.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		g, err := m.lookup.UserGroupIDs(ctx, m.rt.UserID)
		if err != nil {
			m.err = &GroupLookupError{UserID: m.rt.UserID, Err: err}
		} else {
			m.groups, m.known = g, true
			if m.groups == nil {
				m.groups = []string{}
			}
			// Kept on the event, so that Principal and Authorize decide on the membership
			// Route decided on, without a second look-up (the cache may have expired, or the
			// membership changed, in between).
			m.rt.Groups = m.groups
		}
	}
	return m.groups, m.known, m.err
}

// evalRiskRule evaluates one rule: match, or why not, or an error: one wrapping
// [ErrGroupMembershipUnknown] when the answer depends on group membership that is unknown,
// or a [*GroupLookupError] when looking it up failed.
func evalRiskRule(rule config.RiskRule, rt *event.RiskTrigger, m *memberships) (bool, string, error) {
	c := rule.Conditions
	// Okta's "Any" is any of Low, Medium and High: a user.risk.change that clears the risk
	// (level NONE) must not fire a rule that suspends the user.
	if c.Level == "ANY" && strings.EqualFold(rt.RiskLevel, "NONE") {
		return false, "risk level is NONE (the risk was cleared); ANY means LOW, MEDIUM or HIGH", nil
	}
	if c.Level != "ANY" && !strings.EqualFold(c.Level, rt.RiskLevel) {
		return false, fmt.Sprintf("risk level %s is not %s", rt.RiskLevel, c.Level), nil
	}
	if dt := c.DetectionTypes; len(dt.Include) > 0 && (rt.DetectionType == detectionUnknown || !slices.Contains(dt.Include, rt.DetectionType)) {
		return false, fmt.Sprintf("detection %s is not among %v", rt.DetectionType, dt.Include), nil
	} else if slices.Contains(dt.Exclude, rt.DetectionType) {
		return false, fmt.Sprintf("detection %s is excluded", rt.DetectionType), nil
	}
	if u := c.Users; slices.Contains(u.Exclude, rt.UserID) {
		return false, fmt.Sprintf("user %s is excluded", rt.UserID), nil
	}
	u, g := c.Users, c.Groups
	var groups []string
	membershipKnown := false
	// Groups are needed only by a group condition the user's id does not settle already.
	if len(g.Exclude) > 0 || (len(g.Include) > 0 && !slices.Contains(u.Include, rt.UserID)) {
		var err error
		groups, membershipKnown, err = m.get()
		if err != nil {
			return false, "", fmt.Errorf("entity-risk rule %q (priority %d) has people.groups conditions: %w", rule.Name, rule.Priority, err)
		}
	}
	if len(g.Exclude) > 0 && membershipKnown && overlaps(g.Exclude, groups) {
		return false, "user is in an excluded group", nil
	}
	// People: with includes of either kind, the user must be named or in a named group. With
	// membership unknown, a group inclusion does not include the user.
	if len(u.Include) > 0 || len(g.Include) > 0 {
		if !slices.Contains(u.Include, rt.UserID) && !overlaps(g.Include, groups) {
			why := fmt.Sprintf("user %s is neither an included user nor in an included group", rt.UserID)
			if !membershipKnown && len(g.Include) > 0 {
				why += " (the event carries no group membership)"
			}
			return false, why, nil
		}
	}
	if len(c.Groups.Exclude) > 0 && !membershipKnown {
		return false, "", fmt.Errorf("%w: %w: entity-risk rule %q (priority %d) excludes groups %v, but the event carries no group membership for user %q, and no okta block is configured to look groups up: the event is refused rather than the exclusion ignored (configure the okta block with scope okta.users.read, send the user's groups, or drop the group exclusion)",
			ErrUnauthorized, ErrGroupMembershipUnknown, rule.Name, rule.Priority, c.Groups.Exclude, rt.UserID)
	}
	return true, "", nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
