package config

import (
	"fmt"
	"strings"
)

// Entity-risk rule actions (entityRiskPolicy[].action), as Okta names them in
// actions.entityRisk.actions[].action; NONE is Okta's empty action list ("no further action").
const (
	RiskActionRunWorkflow          = "RUN_WORKFLOW"
	RiskActionTerminateAllSessions = "TERMINATE_ALL_SESSIONS"
	RiskActionNone                 = "NONE"
)

// FlowActionClearSessions is the native action (flows[].action) that clears a user's sessions
// and tokens: what an entity-risk rule's TERMINATE_ALL_SESSIONS runs when it names no flow.
const FlowActionClearSessions = "clearSessions"

// EffectiveAction is the rule's action, or when unset (a rule assembled in code, defaults not
// applied) the default: RUN_WORKFLOW with a flow, NONE without.
func (r RiskRule) EffectiveAction() string {
	switch {
	case r.Action != "":
		return r.Action
	case r.Flow != "":
		return RiskActionRunWorkflow
	}
	return RiskActionNone
}

// RuleFlow is the flow an entity-risk rule runs: its flow for RUN_WORKFLOW, its flow or else
// the flow with action: clearSessions for TERMINATE_ALL_SESSIONS, "" for NONE (log only).
func (c *Config) RuleFlow(r RiskRule) string {
	switch r.EffectiveAction() {
	case RiskActionNone:
		return ""
	case RiskActionTerminateAllSessions:
		if r.Flow != "" {
			return r.Flow
		}
		if names := c.clearSessionsFlows(); len(names) == 1 {
			return names[0]
		}
		return ""
	}
	return r.Flow
}

// clearSessionsFlows are the flows whose native action clears sessions.
func (c *Config) clearSessionsFlows() []string {
	var names []string
	for _, f := range c.Flows {
		if strings.EqualFold(f.Action, FlowActionClearSessions) {
			names = append(names, f.Name)
		}
	}
	return names
}

// validateRiskActions checks each rule's action against its flow and the configured flows,
// naming the fix.
func (c *Config) validateRiskActions(bad func(where, format string, args ...any)) {
	byWorkflow := map[int64]string{}
	for i, f := range c.Flows {
		where := fmt.Sprintf("flows[%d] (%s).workflowId", i, f.Name)
		switch other, dup := byWorkflow[f.WorkflowID]; {
		case f.WorkflowID < 0:
			bad(where, "%d must be Okta's (positive) workflow id", f.WorkflowID)
		case f.WorkflowID > 0 && dup:
			bad(where, "%d is also flow %q's: policy import could not tell which flow an Okta rule running workflow %d means", f.WorkflowID, other, f.WorkflowID)
		case f.WorkflowID > 0:
			byWorkflow[f.WorkflowID] = f.Name
		}
	}
	for i, r := range c.RiskRules {
		where := fmt.Sprintf("entityRiskPolicy[%d] (%s).action", i, r.Name)
		switch r.EffectiveAction() {
		case RiskActionRunWorkflow:
			if r.Flow == "" {
				bad(where, "RUN_WORKFLOW needs flow: naming the flow to run; for a rule that only logs, set action: NONE")
			}
		case RiskActionNone:
			if r.Flow != "" {
				bad(where, "NONE runs nothing, but flow %q is set: remove flow, or set action: RUN_WORKFLOW", r.Flow)
			}
		case RiskActionTerminateAllSessions:
			if r.Flow != "" {
				break // the named flow terminates the sessions (a native clearSessions flow or a Workflows flow)
			}
			switch names := c.clearSessionsFlows(); len(names) {
			case 0:
				bad(where, "TERMINATE_ALL_SESSIONS needs a flow that clears the user's sessions: add one under flows with action: clearSessions (it needs the okta block and scope okta.users.manage), or name the flow to run with flow:")
			case 1:
			default:
				bad(where, "TERMINATE_ALL_SESSIONS: several flows have action: clearSessions (%s); name the one to run with flow:", strings.Join(names, ", "))
			}
		default:
			bad(where, "%q is not %s, %s or %s", r.Action, RiskActionRunWorkflow, RiskActionTerminateAllSessions, RiskActionNone)
		}
	}
}
