package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/remediator/remediator/okta"
)

// A flow entry may name one of Okta's native actions instead of a Workflows flow (PLAN
// decision 3):
//
//	flows:
//	  - name: okta-clear-sessions
//	    action: clearSessions   # clearSessions | suspend | expirePassword | removeFromGroup | setUserRisk
//	  - name: okta-remove-admins
//	    action: removeFromGroup
//	    params: {groupId: "00g…"}
//
// It is dispatched like a flow (same jobs, retries, rate budget, breaker, idempotency, dry-run,
// blast-radius cap) through the okta block's app, and has no url, auth or clientToken. See
// package action and the README section "Native actions".

// The native actions' names (flows[].action), as package okta names them.
const (
	ActionClearSessions   = okta.ActionClearSessions
	ActionSuspend         = okta.ActionSuspend
	ActionExpirePassword  = okta.ActionExpirePassword
	ActionRemoveFromGroup = okta.ActionRemoveFromGroup
	ActionSetUserRisk     = okta.ActionSetUserRisk
)

// IsAction reports whether the flow entry names a native action instead of a flow URL.
func (f *Flow) IsAction() bool { return f.Action != "" }

// FlowWithAction returns the first configured flow whose action is action (such as
// clearSessions, for an entity-risk rule's TERMINATE_ALL_SESSIONS), or nil.
func (c *Config) FlowWithAction(action string) *Flow {
	for i := range c.Flows {
		if c.Flows[i].Action == action {
			return &c.Flows[i]
		}
	}
	return nil
}

// HasActions reports whether any flow entry names a native action.
func (c *Config) HasActions() bool {
	return slices.ContainsFunc(c.Flows, func(f Flow) bool { return f.IsAction() })
}

// actionScopes are the scopes the configured actions need (their call's and the status read
// that tells "already in effect" from a refusal).
func (c *Config) actionScopes() []string {
	var out []string
	for _, f := range c.Flows {
		if a, ok := okta.LookupAction(f.Action); ok {
			out = append(out, a.Scopes()...)
		}
	}
	return out
}

// validateActions checks the flow entries that name a native action.
func (c *Config) validateActions(bad func(where, format string, args ...any)) {
	for i, f := range c.Flows {
		if !f.IsAction() {
			if len(f.Params) > 0 {
				bad(fmt.Sprintf("flows[%d] (%s).params", i, f.Name), "params are for native actions (action:); a Workflows flow takes its inputs from inputs:")
			}
			continue
		}
		where := fmt.Sprintf("flows[%d] (%s)", i, f.Name)
		a, ok := okta.LookupAction(f.Action)
		if !ok {
			bad(where+".action", "%q is not one of %s", f.Action, strings.Join(okta.ActionNames(), ", "))
			continue
		}
		if !c.Okta.Enabled() {
			bad(where+".action", "%s calls Okta's management API (%s %s, scope %s) as the okta block's app: configure okta.orgUrl, okta.clientId and okta.privateKey",
				a.Name, a.Method, a.Path, a.Scope)
		}
		if f.URL != "" {
			bad(where+".url", "a native action (action: %s) has no url; remove url, or remove action to invoke a Workflows flow", a.Name)
		}
		if f.Auth != "" {
			bad(where+".auth", "a native action (action: %s) always uses the okta block's app; remove auth", a.Name)
		}
		if f.ClientToken != (Secret{}) {
			bad(where+".clientToken", "a native action (action: %s) uses the okta block's app, not a client token; remove clientToken", a.Name)
		}
		for _, p := range a.Params {
			if strings.TrimSpace(f.Params[p]) == "" {
				bad(where+".params."+p, "is required by action %s", a.Name)
			}
		}
		for _, p := range slices.Sorted(maps.Keys(f.Params)) {
			if !slices.Contains(a.Params, p) {
				if len(a.Params) == 0 {
					bad(where+".params."+p, "action %s takes no params", a.Name)
				} else {
					bad(where+".params."+p, "action %s takes only %s", a.Name, strings.Join(a.Params, ", "))
				}
			}
		}
		if a.Name == ActionSetUserRisk {
			if lvl := f.Params[okta.ParamRiskLevel]; lvl != "" && !slices.Contains([]string{"HIGH", "MEDIUM", "LOW"}, strings.ToUpper(lvl)) {
				bad(where+".params.riskLevel", "%q must be HIGH, MEDIUM or LOW", lvl)
			}
		}
	}
}
