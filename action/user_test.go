package action_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/remediator/remediator/action"
	"github.com/remediator/remediator/flow"
)

// TestUserID: the acted-on user is userId, else an Okta entity's entityIdInService; never
// oktaUserId (for an ISPM issue, the admin who ran the flow).
func TestUserID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   map[string]any
		want string // "" = an error
		msg  string
	}{
		{"risk event", map[string]any{"userId": "00u-risky", "oktaUserId": "00u-risky"}, "00u-risky", ""},
		{"ISPM Okta entity", map[string]any{"entityIdInService": "00u-entity", "entitySourceProductName": "Okta", "oktaUserId": "00u-admin"}, "00u-entity", ""},
		{"ISPM entity, no product", map[string]any{"entityIdInService": "00u-entity"}, "00u-entity", ""},
		{"ISPM Google entity", map[string]any{"entityIdInService": "g-1", "entitySourceProductName": "Google Workspace"}, "", `is in "Google Workspace", not Okta`},
		{"only the admin", map[string]any{"oktaUserId": "00u-admin"}, "", "no Okta user id"},
		{"not text", map[string]any{"userId": 42}, "", "no Okta user id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := action.UserID(tt.in)
			if tt.want != "" {
				if got != tt.want || err != nil {
					t.Errorf("UserID = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !errors.Is(err, flow.ErrInvalidInput) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("UserID = %q, %v; want ErrInvalidInput saying %q", got, err, tt.msg)
			}
		})
	}
}

// TestValidate: an endpoint's action and params are checked before anything is sent.
func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ep   flow.Endpoint
		want string
	}{
		{flow.Endpoint{Action: "suspend"}, ""},
		{flow.Endpoint{Action: "setUserRisk", Params: map[string]string{"riskLevel": "low"}}, ""},
		{flow.Endpoint{Action: "deactivate"}, `action "deactivate" is not one of`},
		{flow.Endpoint{Action: "removeFromGroup"}, "needs params.groupId"},
		{flow.Endpoint{Action: "setUserRisk", Params: map[string]string{"riskLevel": "NONE"}}, "must be HIGH, MEDIUM or LOW"},
	} {
		_, err := action.Validate(tt.ep)
		if (tt.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tt.want) || !errors.Is(err, flow.ErrInvalidEndpoint))) {
			t.Errorf("Validate(%+v) = %v; want %q", tt.ep, err, tt.want)
		}
	}
}
