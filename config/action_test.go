package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/okta"
)

// TestActionFlows: a flow entry naming a native action takes the action's defaults (no auth,
// a higher rate limit: Okta's headers bind), and its scopes join the ones the org must grant.
func TestActionFlows(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte(oktaBlock+"flows:\n"+
		"  - {name: clear, action: clearSessions}\n"+
		"  - {name: drop-admins, action: removeFromGroup, params: {groupId: 00g1}}\n"+
		"  - {name: risky, action: setUserRisk, params: {riskLevel: high}}\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := c.FlowWithAction(config.ActionClearSessions)
	if f == nil || f.Name != "clear" || f.Auth != "" || f.RateLimit != config.DefaultActionRateLimit {
		t.Fatalf("clearSessions flow: %+v; want no auth and rateLimit %v", f, config.DefaultActionRateLimit)
	}
	want := []string{okta.ScopeGroupsManage, okta.ScopeUserRiskManage, okta.ScopeUsersManage}
	if got := c.OktaScopes(); !slices.Equal(got, want) {
		t.Errorf("OktaScopes = %v, want %v", got, want)
	}
	if c.Limits.MaxOutputBytes != config.DefaultMaxOutputBytes {
		t.Errorf("limits.maxOutputBytes = %d, want the default %d", c.Limits.MaxOutputBytes, config.DefaultMaxOutputBytes)
	}
}

// TestActionFlowsRefused: every mistake in an action entry is named by its key path.
func TestActionFlowsRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"no okta block", "flows:\n  - {name: s, action: suspend}\n",
			"flows[0] (s).action: suspend calls Okta's management API (POST /api/v1/users/{userId}/lifecycle/suspend, scope okta.users.manage) as the okta block's app"},
		{"unknown action", oktaBlock + "flows:\n  - {name: s, action: deactivate}\n",
			`flows[0] (s).action: "deactivate" is not one of clearSessions, suspend, expirePassword, removeFromGroup, setUserRisk`},
		{"url too", oktaBlock + "flows:\n  - {name: s, action: suspend, url: https://x/invoke}\n",
			"flows[0] (s).url: a native action (action: suspend) has no url"},
		{"auth too", oktaBlock + "flows:\n  - {name: s, action: suspend, auth: oauth2}\n",
			"flows[0] (s).auth: a native action (action: suspend) always uses the okta block's app"},
		{"client token too", oktaBlock + "flows:\n  - {name: s, action: suspend, clientToken: {env: T}}\n",
			"flows[0] (s).clientToken: a native action (action: suspend) uses the okta block's app"},
		{"missing group", oktaBlock + "flows:\n  - {name: g, action: removeFromGroup}\n",
			"flows[0] (g).params.groupId: is required by action removeFromGroup"},
		{"stray param", oktaBlock + "flows:\n  - {name: c, action: clearSessions, params: {groupId: 00g1}}\n",
			"flows[0] (c).params.groupId: action clearSessions takes no params"},
		{"bad level", oktaBlock + "flows:\n  - {name: r, action: setUserRisk, params: {riskLevel: EXTREME}}\n",
			`flows[0] (r).params.riskLevel: "EXTREME" must be HIGH, MEDIUM or LOW`},
		{"params on a flow", "flows:\n  - {name: f, url: https://x/invoke, clientToken: {env: T}, params: {groupId: 00g1}}\n",
			"flows[0] (f).params: params are for native actions"},
		{"output cap", "limits: {maxOutputBytes: 100000}\n",
			"limits.maxOutputBytes: 100000 is not between 1 and 16384"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.yaml), "remediator.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}
