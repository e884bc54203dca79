package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
)

// Step kinds reported by [Router.Explain].
const (
	StepRoute       = "route"        // an ISPM route
	StepRule        = "rule"         // a custom entity-risk policy rule
	StepDefaultRule = "default-rule" // Okta's catch-all entity-risk rule, priority 99
)

// Step is one route or rule [Router.Explain] went through, in evaluation order.
type Step struct {
	// Kind is [StepRoute], [StepRule] or [StepDefaultRule].
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Priority of an entity-risk rule (99 for the default rule); 0 for routes.
	Priority int `json:"priority,omitempty"`
	// Evaluated is false for an inactive rule and for rules after the first match (the first
	// matching entity-risk rule wins; every ISPM route is evaluated).
	Evaluated bool `json:"evaluated"`
	Match     bool `json:"match"`
	// Reason says why it matched or not, or why it was not evaluated.
	Reason string `json:"reason"`
	// Flows the step runs when it matches.
	Flows []string `json:"flows,omitempty"`
	// Action is an entity-risk rule's action: RUN_WORKFLOW, TERMINATE_ALL_SESSIONS or NONE.
	Action string `json:"action,omitempty"`
}

// Explain evaluates ev as [Router.Route] does and reports every route or rule, in order, with
// whether it matched and why. It does not authorize: see [Router.Principal] and
// [Router.Authorize].
func (r *Router) Explain(ev *event.Event) []Step {
	return r.ExplainContext(context.Background(), ev)
}

// ExplainContext is [Router.Explain] with a context for the group look-ups an entity-risk
// rule with people.groups conditions needs.
func (r *Router) ExplainContext(ctx context.Context, ev *event.Event) []Step {
	switch {
	case ev.Issue != nil:
		return r.explainIssue(ev.Issue)
	case ev.Risk != nil:
		return r.explainRisk(ctx, ev.Risk)
	}
	return nil
}

func (r *Router) explainIssue(is *event.Issue) []Step {
	steps := make([]Step, 0, len(r.routes))
	for _, rt := range r.routes {
		why, ok := IssueMatchReason(rt.Match, is)
		steps = append(steps, Step{Kind: StepRoute, Name: rt.Name, Evaluated: true, Match: ok, Reason: why, Flows: rt.Flows})
	}
	return steps
}

// IssueMatchReason reports whether every non-empty condition of m matches the issue (as
// [IssueMatches]) and why: the first condition that fails, or what matched.
func IssueMatchReason(m config.IssueMatch, is *event.Issue) (string, bool) {
	conds := []struct {
		name string
		want []string
		got  string
	}{
		{"title", m.Titles, is.Title},
		{"category", m.Categories, is.Category},
		{"severity", m.Severities, is.Severity},
		{"entity type", m.EntityTypes, is.EntityType},
		{"source product", m.SourceProducts, is.EntitySourceProductName},
	}
	var matched []string
	for _, c := range conds {
		if len(c.want) == 0 {
			continue
		}
		if !anyFold(c.want, c.got) {
			return fmt.Sprintf("%s %q is not %s", c.name, c.got, oneOf(c.want)), false
		}
		matched = append(matched, fmt.Sprintf("%s %q", c.name, c.got))
	}
	if len(matched) == 0 {
		return "no conditions: matches every issue", true
	}
	if len(matched) == 1 {
		return matched[0] + " matches", true
	}
	return strings.Join(matched, ", ") + " match", true
}

func oneOf(want []string) string {
	if len(want) == 1 {
		return fmt.Sprintf("%q", want[0])
	}
	q := make([]string, len(want))
	for i, w := range want {
		q[i] = fmt.Sprintf("%q", w)
	}
	return "any of " + strings.Join(q, ", ")
}

func (r *Router) explainRisk(ctx context.Context, rt *event.RiskTrigger) []Step {
	m := r.memberships(ctx, rt)
	steps := make([]Step, 0, len(r.allRules)+1)
	var winner *config.RiskRule
	var refused *config.RiskRule
	for _, rule := range r.allRules {
		st := Step{Kind: StepRule, Name: rule.Name, Priority: rule.Priority, Action: rule.Action}
		if rule.Flow != "" {
			st.Flows = []string{rule.Flow}
		}
		switch {
		case rule.Status != "ACTIVE":
			st.Reason = "not evaluated: the rule is " + rule.Status
		case winner != nil:
			st.Reason = fmt.Sprintf("not evaluated: rule %q (priority %d) matched first", winner.Name, winner.Priority)
		case refused != nil:
			st.Reason = fmt.Sprintf("not evaluated: the event is refused at rule %q (priority %d)", refused.Name, refused.Priority)
		default:
			st.Evaluated = true
			ok, why, err := evalRiskRule(rule, rt, m)
			switch {
			case errors.Is(err, ErrGroupLookup):
				why = "undecided: " + err.Error()
				refused = &rule
			case err != nil:
				why = "refused: " + err.Error()
				refused = &rule
			case ok:
				why = describeRiskMatch(rule, rt)
				switch {
				case rule.Flow == "":
					why += "; the rule is log-only (action NONE): evaluation stops, no flow runs, and the event ends as skipped"
				case rule.Action == config.RiskActionTerminateAllSessions:
					why += "; action TERMINATE_ALL_SESSIONS: flow " + rule.Flow + " clears the user's sessions"
				}
				winner = &rule
			}
			st.Match = ok
			st.Reason = why
		}
		steps = append(steps, st)
	}
	def := Step{Kind: StepDefaultRule, Name: DefaultRuleName, Priority: DefaultRulePriority}
	switch {
	case winner != nil:
		def.Reason = fmt.Sprintf("not reached: rule %q (priority %d) matched first", winner.Name, winner.Priority)
	case refused != nil:
		def.Reason = fmt.Sprintf("not reached: the event is refused at rule %q (priority %d)", refused.Name, refused.Priority)
	default:
		def.Evaluated, def.Match = true, true
		def.Reason = "no custom rule matched; the default rule matches everything and only records, so the event ends as skipped (or is dead-lettered as no_route with unrouted: deadLetter)"
	}
	return append(steps, def)
}

// describeRiskMatch says why a rule that matches does.
func describeRiskMatch(rule config.RiskRule, rt *event.RiskTrigger) string {
	c := rule.Conditions
	var parts []string
	if c.Level == "ANY" {
		parts = append(parts, "any risk level")
	} else {
		parts = append(parts, "risk level "+rt.RiskLevel)
	}
	switch dt := c.DetectionTypes; {
	case len(dt.Include) > 0:
		parts = append(parts, "detection "+rt.DetectionType+" is included")
	case len(dt.Exclude) > 0:
		parts = append(parts, "detection "+rt.DetectionType+" is not excluded")
	default:
		parts = append(parts, "any detection")
	}
	switch u, g := c.Users, c.Groups; {
	case len(u.Include) > 0 || len(g.Include) > 0:
		parts = append(parts, "user "+rt.UserID+" is included")
	case len(u.Exclude) > 0 || len(g.Exclude) > 0:
		parts = append(parts, "user "+rt.UserID+" is not excluded")
	default:
		parts = append(parts, "anyone")
	}
	return strings.Join(parts, ", ")
}
