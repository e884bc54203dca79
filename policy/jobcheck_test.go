package policy_test

import (
	"errors"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
)

// TestCheckJob: dispatch's re-check accepts what intake decides with the built-in
// configuration and refuses a job that claims a rule or route that does not send its kind to
// its flow, or a principal the flow is not granted to (issue 13).
func TestCheckJob(t *testing.T) {
	t.Parallel()
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	r := policy.New(cfg)
	for _, tc := range []struct {
		name             string
		kind             event.Kind
		rule, flow, user string
		groups           []string
		ok               bool
	}{
		{"ISPM route and granted principal", event.KindISPMIssue, "unused-admin-account", "suspend-okta-account", "ispm-console", nil, true},
		{"entity-risk rule and its own principal", event.KindEntityRisk, "high-risk-clear-sessions", "clear-sessions", "rule:high-risk-clear-sessions", nil, true},
		{"route that does not send to the flow", event.KindISPMIssue, "no-mfa-admin-account", "suspend-okta-account", "ispm-console", nil, false},
		{"rule that may not run the flow", event.KindEntityRisk, "medium-risk-notify", "suspend-okta-account", "rule:medium-risk-notify", nil, false},
		{"a rule claimed for an ISPM issue", event.KindISPMIssue, "high-risk-clear-sessions", "clear-sessions", "ispm-console", nil, false},
		{"a route claimed for a risk event", event.KindEntityRisk, "unused-admin-account", "suspend-okta-account", "rule:unused-admin-account", nil, false},
		{"another rule's principal", event.KindEntityRisk, "high-risk-clear-sessions", "clear-sessions", "rule:medium-risk-notify", nil, false},
		{"principal of the attacker's choice", event.KindISPMIssue, "unused-admin-account", "suspend-okta-account", "mallory", []string{"00gAdmins"}, false},
		{"rule principal on an ISPM issue", event.KindISPMIssue, "unused-admin-account", "suspend-okta-account", "rule:high-risk-clear-sessions", nil, false},
		{"no principal", event.KindISPMIssue, "unused-admin-account", "suspend-okta-account", "", nil, false},
		{"unknown kind", event.Kind("other"), "unused-admin-account", "suspend-okta-account", "ispm-console", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.CheckJob(tc.kind, tc.rule, tc.flow, tc.user, tc.groups)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, policy.ErrJobNotAllowed)) {
				t.Fatalf("CheckJob = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
