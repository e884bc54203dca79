package flowsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The simulated org evaluates its own ENTITY_RISK policy, as Okta does when a risk is
// detected, so that tests can compare remediator's evaluation of an imported policy with the
// org's. Okta documents the rule shape (conditions, actions) and that rules are tried by
// priority with the first match winning and a catch-all at 99; the finer semantics below are
// guesses, each marked where it is made.

// EntityRiskVerdict is what the org's ENTITY_RISK policy decides for one risk event.
type EntityRiskVerdict struct {
	// RuleID and RuleName are the rule that matched: the first, by priority, among the ACTIVE
	// rules (the catch-all, priority 99, matches everything).
	RuleID   string `json:"ruleId"`
	RuleName string `json:"ruleName"`
	Priority int    `json:"priority"`
	// Action is RUN_WORKFLOW, TERMINATE_ALL_SESSIONS, or "" (no further action: logged only).
	Action string `json:"action,omitempty"`
	// WorkflowID is the delegated flow a RUN_WORKFLOW action runs.
	WorkflowID int64 `json:"workflowId,omitempty"`
}

type simRiskRule struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Priority   *int   `json:"priority"`
	Status     string `json:"status"`
	Conditions *struct {
		EntityRisk *struct {
			Level string `json:"level"`
		} `json:"entityRisk"`
		RiskDetectionTypes *simIncludeExclude `json:"riskDetectionTypes"`
		People             *struct {
			Users  *simIncludeExclude `json:"users"`
			Groups *simIncludeExclude `json:"groups"`
		} `json:"people"`
	} `json:"conditions"`
	Actions struct {
		EntityRisk struct {
			Actions []struct {
				Action   string `json:"action"`
				Workflow *struct {
					ID int64 `json:"id"`
				} `json:"workflow"`
			} `json:"actions"`
		} `json:"entityRisk"`
	} `json:"actions"`
}

type simIncludeExclude struct {
	Include []string `json:"include"`
	Exclude []string `json:"exclude"`
}

// EvaluateEntityRisk evaluates the org's ENTITY_RISK policy for a risk event: the user (whose
// groups are the directory's), the risk level (HIGH, MEDIUM, LOW or NONE) and the detection
// type (one of Okta's riskDetectionTypes).
func (s *Simulator) EvaluateEntityRisk(userID, level, detectionType string) (EntityRiskVerdict, error) {
	if s.org == nil {
		return EntityRiskVerdict{}, errNoOrg
	}
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	var groups []string
	if u, ok := o.users[userID]; ok {
		groups = slices.Clone(u.Groups)
	}
	rules := make([]simRiskRule, 0, len(o.riskRules))
	for i, raw := range o.riskRules {
		var r simRiskRule
		if err := json.Unmarshal(raw, &r); err != nil {
			return EntityRiskVerdict{}, fmt.Errorf("flowsim: entity-risk rule %d: %w", i, err)
		}
		rules = append(rules, r)
	}
	// Guess: a rule without a priority sorts after those with one, in the order given.
	prio := func(r simRiskRule) int {
		if r.Priority == nil {
			return 98
		}
		return *r.Priority
	}
	sort.SliceStable(rules, func(i, j int) bool { return prio(rules[i]) < prio(rules[j]) })
	level = strings.ToUpper(level)
	for _, r := range rules {
		if r.Status != "" && r.Status != "ACTIVE" {
			continue
		}
		if !simRuleMatches(r, userID, groups, level, detectionType) {
			continue
		}
		v := EntityRiskVerdict{RuleID: r.ID, RuleName: r.Name, Priority: prio(r)}
		if acts := r.Actions.EntityRisk.Actions; len(acts) > 0 {
			v.Action = acts[0].Action
			if acts[0].Workflow != nil {
				v.WorkflowID = acts[0].Workflow.ID
			}
		}
		return v, nil
	}
	// Unreachable with the catch-all in place; an org whose rules list has none logs only.
	return EntityRiskVerdict{RuleName: "Catch-all rule", Priority: 99}, nil
}

func simRuleMatches(r simRiskRule, userID string, groups []string, level, detection string) bool {
	c := r.Conditions
	if c == nil {
		return true
	}
	want := "ANY"
	if c.EntityRisk != nil && c.EntityRisk.Level != "" {
		want = strings.ToUpper(c.EntityRisk.Level)
	}
	// Guess: "Any" is any detected risk (LOW, MEDIUM or HIGH); a risk cleared to NONE fires
	// no rule but the catch-all.
	if level == "NONE" && r.priorityBelowCatchAll() {
		return false
	}
	if want != "ANY" && want != level {
		return false
	}
	if d := c.RiskDetectionTypes; d != nil {
		if len(d.Include) > 0 && !slices.Contains(d.Include, detection) {
			return false
		}
		if slices.Contains(d.Exclude, detection) {
			return false
		}
	}
	if p := c.People; p != nil {
		var users, grps simIncludeExclude
		if p.Users != nil {
			users = *p.Users
		}
		if p.Groups != nil {
			grps = *p.Groups
		}
		// Guess: an exclusion (of the user, or of any of the user's groups) beats any
		// inclusion; with inclusions of either kind, the user must be named or in a named
		// group (Okta's "people" condition of other policies works this way).
		if slices.Contains(users.Exclude, userID) || anyOf(grps.Exclude, groups) {
			return false
		}
		if (len(users.Include) > 0 || len(grps.Include) > 0) && !slices.Contains(users.Include, userID) && !anyOf(grps.Include, groups) {
			return false
		}
	}
	return true
}

func (r simRiskRule) priorityBelowCatchAll() bool { return r.Priority == nil || *r.Priority < 99 }

func anyOf(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
