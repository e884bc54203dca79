package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
)

// ErrNoRoute is returned (wrapped, with the reason) when an event triggers no flow.
var ErrNoRoute = errors.New("no route")

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
}

// New compiles the routes and entity-risk rules of a validated configuration.
func New(cfg *config.Config) *Router {
	r := &Router{routes: slices.Clone(cfg.Routes)}
	for _, rule := range cfg.RiskRules {
		if rule.Status == "ACTIVE" {
			r.rules = append(r.rules, rule)
		}
	}
	sort.SliceStable(r.rules, func(i, j int) bool { return r.rules[i].Priority < r.rules[j].Priority })
	r.allRules = slices.Clone(cfg.RiskRules)
	sort.SliceStable(r.allRules, func(i, j int) bool { return r.allRules[i].Priority < r.allRules[j].Priority })
	r.compileAuthz(cfg)
	return r
}

// Route returns the flows ev triggers, or an error wrapping [ErrNoRoute] that says why not.
func (r *Router) Route(ev *event.Event) ([]Decision, error) {
	switch {
	case ev.Issue != nil:
		return r.routeIssue(ev.Issue)
	case ev.Risk != nil:
		return r.routeRisk(ev.Risk)
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
		return nil, fmt.Errorf("%w: no route matches ISPM issue %q (title %q, category %q, severity %q, entity type %q, source product %q)",
			ErrNoRoute, is.ID, is.Title, is.Category, is.Severity, is.EntityType, is.EntitySourceProductName)
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

func (r *Router) routeRisk(rt *event.RiskTrigger) ([]Decision, error) {
	for _, rule := range r.rules {
		if ok, _ := RiskRuleMatches(rule, rt); ok {
			return []Decision{{Rule: rule.Name, Flow: rule.Flow}}, nil
		}
	}
	return nil, fmt.Errorf("%w: entity-risk trigger for user %q (risk %s, detection %s) matched only the default rule (priority %d), which runs no flow",
		ErrNoRoute, rt.UserID, rt.RiskLevel, rt.DetectionType, DefaultRulePriority)
}

// RiskRuleMatches reports whether rule matches the trigger and, when it does not, why.
func RiskRuleMatches(rule config.RiskRule, rt *event.RiskTrigger) (bool, string) {
	c := rule.Conditions
	if c.Level != "ANY" && !strings.EqualFold(c.Level, rt.RiskLevel) {
		return false, fmt.Sprintf("risk level %s is not %s", rt.RiskLevel, c.Level)
	}
	if dt := c.DetectionTypes; len(dt.Include) > 0 && !slices.Contains(dt.Include, rt.DetectionType) {
		return false, fmt.Sprintf("detection %s is not among %v", rt.DetectionType, dt.Include)
	} else if slices.Contains(dt.Exclude, rt.DetectionType) {
		return false, fmt.Sprintf("detection %s is excluded", rt.DetectionType)
	}
	if u := c.Users; slices.Contains(u.Exclude, rt.UserID) {
		return false, fmt.Sprintf("user %s is excluded", rt.UserID)
	}
	if g := c.Groups; len(g.Exclude) > 0 && overlaps(g.Exclude, rt.Groups) {
		return false, "user is in an excluded group"
	}
	// People: with includes of either kind, the user must be named or in a named group.
	u, g := c.Users, c.Groups
	if len(u.Include) > 0 || len(g.Include) > 0 {
		if !slices.Contains(u.Include, rt.UserID) && !overlaps(g.Include, rt.Groups) {
			return false, fmt.Sprintf("user %s is neither an included user nor in an included group", rt.UserID)
		}
	}
	return true, ""
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
