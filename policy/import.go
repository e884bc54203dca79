package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
)

// Importing Okta's own entity-risk policy: the rules of the org's ENTITY_RISK policy, as the
// Policy API returns them (EntityRiskPolicyRule), become remediator rules, so that the
// configuration is Okta's policy and not a copy that drifts. [ImportOktaRules] maps them;
// [DiffRiskRules] says where a configuration and the org disagree.

// ImportedRule is one Okta rule and what it becomes.
type ImportedRule struct {
	// OktaID is the rule's id in Okta.
	OktaID string `json:"oktaId"`
	// Rule is the remediator rule; for a RUN_WORKFLOW whose workflow no flow maps, Flow is "".
	Rule config.RiskRule `json:"rule"`
	// WorkflowID is the workflow a RUN_WORKFLOW action runs in Okta.
	WorkflowID int64 `json:"workflowId,omitempty"`
	// Problem says why the rule cannot be imported as it is; "" when it can.
	Problem string `json:"problem,omitempty"`
}

// Import is the org's policy mapped to remediator rules.
type Import struct {
	// Rules are the custom rules, in Okta's priority order.
	Rules []ImportedRule `json:"rules"`
	// Skipped names rules left out on purpose: Okta's catch-all (priority 99), which
	// remediator applies by itself.
	Skipped []string `json:"skipped,omitempty"`
}

// Problems lists what keeps the import from being used, one line per rule.
func (im *Import) Problems() []string {
	var p []string
	for _, r := range im.Rules {
		if r.Problem != "" {
			p = append(p, fmt.Sprintf("rule %q (%s): %s", r.Rule.Name, r.OktaID, r.Problem))
		}
	}
	return p
}

// RiskRules are the imported rules, for a configuration.
func (im *Import) RiskRules() []config.RiskRule {
	out := make([]config.RiskRule, 0, len(im.Rules))
	for _, r := range im.Rules {
		out = append(out, r.Rule)
	}
	return out
}

type oktaRiskRule struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Priority   *int   `json:"priority"`
	Status     string `json:"status"`
	System     bool   `json:"system"`
	Conditions *struct {
		EntityRisk *struct {
			Level string `json:"level"`
		} `json:"entityRisk"`
		RiskDetectionTypes *oktaIncludeExclude `json:"riskDetectionTypes"`
		People             *struct {
			Users  *oktaIncludeExclude `json:"users"`
			Groups *oktaIncludeExclude `json:"groups"`
		} `json:"people"`
	} `json:"conditions"`
	Actions *struct {
		EntityRisk *struct {
			Actions []struct {
				Action   string `json:"action"`
				Workflow *struct {
					ID json.Number `json:"id"`
				} `json:"workflow"`
			} `json:"actions"`
		} `json:"entityRisk"`
	} `json:"actions"`
}

type oktaIncludeExclude struct {
	Include []string `json:"include"`
	Exclude []string `json:"exclude"`
}

func (ie *oktaIncludeExclude) get() config.IncludeExclude {
	if ie == nil {
		return config.IncludeExclude{}
	}
	return config.IncludeExclude{Include: slices.Clone(ie.Include), Exclude: slices.Clone(ie.Exclude)}
}

// ImportOktaRules maps the org's ENTITY_RISK rules (in Okta's order) to remediator rules for
// cfg: a RUN_WORKFLOW action runs the flow whose workflowId is Okta's workflow id, a
// TERMINATE_ALL_SESSIONS action stays one (cfg's clearSessions flow runs it), no action is
// NONE (log only). The catch-all rule (priority 99, or system) is left out: remediator's
// default rule is the same. A rule that cannot be mapped (an unknown workflow, two actions, a
// condition remediator does not know) carries a Problem; an error is returned only for a
// document that is not a list of rules.
func ImportOktaRules(cfg *config.Config, rules []json.RawMessage) (*Import, error) {
	byWorkflow := map[int64]string{}
	for _, f := range cfg.Flows {
		if f.WorkflowID != 0 {
			byWorkflow[f.WorkflowID] = f.Name
		}
	}
	im := &Import{}
	usedPriority := map[int]bool{}
	for i, raw := range rules {
		var o oktaRiskRule
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("entity-risk rule %d is not an EntityRiskPolicyRule: %w", i, err)
		}
		if (o.Priority != nil && *o.Priority >= DefaultRulePriority) || o.System {
			im.Skipped = append(im.Skipped, fmt.Sprintf("%q (%s): Okta's catch-all rule, which remediator's default rule already is", o.Name, o.ID))
			continue
		}
		ir := ImportedRule{OktaID: o.ID}
		r := config.RiskRule{Name: o.Name, Status: strings.ToUpper(o.Status), Conditions: config.RiskConditions{Level: config.DefaultRiskLevel}}
		var problems []string
		if r.Name == "" {
			r.Name = o.ID
		}
		if r.Status == "" {
			r.Status = config.DefaultRiskRuleStatus
		}
		// Okta's create answer shows priority 0 for a new rule and lists rules in priority
		// order; a rule without a usable priority takes the next free one after its
		// predecessor, keeping Okta's order.
		if o.Priority != nil && *o.Priority >= 1 && !usedPriority[*o.Priority] {
			r.Priority = *o.Priority
		} else {
			r.Priority = 1
			if n := len(im.Rules); n > 0 {
				r.Priority = im.Rules[n-1].Rule.Priority + 1
			}
			for usedPriority[r.Priority] {
				r.Priority++
			}
		}
		usedPriority[r.Priority] = true
		if c := o.Conditions; c != nil {
			if c.EntityRisk != nil && c.EntityRisk.Level != "" {
				r.Conditions.Level = strings.ToUpper(c.EntityRisk.Level)
			}
			r.Conditions.DetectionTypes = c.RiskDetectionTypes.get()
			if c.People != nil {
				r.Conditions.Users, r.Conditions.Groups = c.People.Users.get(), c.People.Groups.get()
			}
		}
		switch r.Conditions.Level {
		case "ANY", "LOW", "MEDIUM", "HIGH":
		default:
			problems = append(problems, fmt.Sprintf("risk level %q is not ANY, LOW, MEDIUM or HIGH", r.Conditions.Level))
		}
		for _, d := range append(slices.Clone(r.Conditions.DetectionTypes.Include), r.Conditions.DetectionTypes.Exclude...) {
			if !event.IsDetectionType(d) {
				problems = append(problems, fmt.Sprintf("detection type %q is not one remediator knows", d))
			}
		}
		var actions int
		if o.Actions != nil && o.Actions.EntityRisk != nil {
			actions = len(o.Actions.EntityRisk.Actions)
		}
		switch {
		case actions == 0:
			r.Action = config.RiskActionNone
		case actions > 1:
			problems = append(problems, fmt.Sprintf("%d actions; Okta allows one and remediator runs one", actions))
		default:
			a := o.Actions.EntityRisk.Actions[0]
			switch strings.ToUpper(a.Action) {
			case config.RiskActionTerminateAllSessions:
				r.Action = config.RiskActionTerminateAllSessions
			case config.RiskActionRunWorkflow:
				r.Action = config.RiskActionRunWorkflow
				var id int64
				if a.Workflow != nil {
					id, _ = a.Workflow.ID.Int64()
				}
				ir.WorkflowID = id
				switch name, ok := byWorkflow[id]; {
				case id == 0:
					problems = append(problems, "RUN_WORKFLOW names no workflow id")
				case !ok:
					problems = append(problems, fmt.Sprintf("runs Okta workflow %d, which no configured flow stands for: set workflowId: %d on the flow (flows[]) that does what that delegated flow does", id, id))
				default:
					r.Flow = name
				}
			default:
				problems = append(problems, fmt.Sprintf("action %q is not RUN_WORKFLOW or TERMINATE_ALL_SESSIONS", a.Action))
			}
		}
		if r.Action == config.RiskActionTerminateAllSessions && cfg.RuleFlow(r) == "" {
			problems = append(problems, "TERMINATE_ALL_SESSIONS needs a flow with action: clearSessions in the configuration (it needs the okta block and scope okta.users.manage)")
		}
		ir.Rule, ir.Problem = r, strings.Join(problems, "; ")
		im.Rules = append(im.Rules, ir)
	}
	return im, nil
}

// RuleDiff is one rule on which a configuration and the org disagree.
type RuleDiff struct {
	Rule string `json:"rule"`
	// Only is "configuration" or "okta" for a rule only one side has; "" when both do.
	Only string `json:"only,omitempty"`
	// Fields are the differences of a rule both have.
	Fields []FieldDiff `json:"fields,omitempty"`
}

// FieldDiff is one field of a rule, as configured and in Okta.
type FieldDiff struct {
	Field  string `json:"field"`
	Config string `json:"config"`
	Okta   string `json:"okta"`
}

// DiffRiskRules compares the configured rules with the org's, matched by name: a rule only
// one side has, and for rules both have, each field that differs (priority, status, level,
// detection types, users, groups, action, and the flow the action runs, through cfg's
// workflowId mapping). Nil when they agree.
func DiffRiskRules(cfg *config.Config, org *Import) []RuleDiff {
	var out []RuleDiff
	orgByName := map[string]ImportedRule{}
	for _, r := range org.Rules {
		orgByName[r.Rule.Name] = r
	}
	seen := map[string]bool{}
	for _, c := range cfg.RiskRules {
		seen[c.Name] = true
		o, ok := orgByName[c.Name]
		if !ok {
			out = append(out, RuleDiff{Rule: c.Name, Only: "configuration"})
			continue
		}
		var f []FieldDiff
		add := func(field, a, b string) {
			if a != b {
				f = append(f, FieldDiff{field, a, b})
			}
		}
		or := o.Rule
		add("priority", fmt.Sprint(c.Priority), fmt.Sprint(or.Priority))
		add("status", c.Status, or.Status)
		add("conditions.level", c.Conditions.Level, or.Conditions.Level)
		add("conditions.detectionTypes", ieString(c.Conditions.DetectionTypes), ieString(or.Conditions.DetectionTypes))
		add("conditions.users", ieString(c.Conditions.Users), ieString(or.Conditions.Users))
		add("conditions.groups", ieString(c.Conditions.Groups), ieString(or.Conditions.Groups))
		add("action", c.EffectiveAction(), or.EffectiveAction())
		orgFlow := cfg.RuleFlow(or)
		if or.Action == config.RiskActionRunWorkflow && or.Flow == "" {
			orgFlow = fmt.Sprintf("Okta workflow %d (no configured flow has this workflowId)", o.WorkflowID)
		}
		add("flow", cfg.RuleFlow(c), orgFlow)
		if len(f) > 0 {
			out = append(out, RuleDiff{Rule: c.Name, Fields: f})
		}
	}
	for _, o := range org.Rules {
		if !seen[o.Rule.Name] {
			out = append(out, RuleDiff{Rule: o.Rule.Name, Only: "okta"})
		}
	}
	return out
}

func ieString(ie config.IncludeExclude) string {
	var parts []string
	if len(ie.Include) > 0 {
		in := slices.Sorted(slices.Values(ie.Include))
		parts = append(parts, "include "+strings.Join(in, ","))
	}
	if len(ie.Exclude) > 0 {
		ex := slices.Sorted(slices.Values(ie.Exclude))
		parts = append(parts, "exclude "+strings.Join(ex, ","))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, "; ")
}
