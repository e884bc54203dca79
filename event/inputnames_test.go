package event_test

import (
	"slices"
	"testing"

	"github.com/remediator/remediator/event"
)

func TestInputNames(t *testing.T) {
	t.Parallel()
	for _, want := range []string{"eventId", "eventTimestamp", "oktaUserId", "issueTitle", "entityDisplayName", "entitySourceProductTenant"} {
		if !slices.Contains(event.ISPMInputNames, want) {
			t.Errorf("ISPMInputNames lacks %s: %v", want, event.ISPMInputNames)
		}
	}
	for _, want := range []string{"eventId", "userId", "userLogin", "riskLevel", "previousRiskLevel", "detectionType", "ruleId", "oktaTraceId"} {
		if !slices.Contains(event.RiskInputNames, want) {
			t.Errorf("RiskInputNames lacks %s: %v", want, event.RiskInputNames)
		}
	}
	if slices.Contains(event.RiskInputNames, "issueTitle") || slices.Contains(event.ISPMInputNames, "userId") {
		t.Error("input names leak across kinds")
	}
	if !slices.IsSorted(event.ISPMInputNames) || !slices.IsSorted(event.RiskInputNames) {
		t.Error("input names are not sorted")
	}
	// Every input an event produces is a known name.
	ev := &event.Event{ID: "e", Kind: event.KindISPMIssue, Issue: &event.Issue{Title: "t", AdditionalData: map[string]string{"additionalDataLastLogin": "x"}}}
	for k := range ev.Inputs() {
		if !event.IsInputName(event.KindISPMIssue, k) {
			t.Errorf("IsInputName(ispm, %q) = false", k)
		}
	}
	for name, want := range map[string]bool{"additionalDataTypes": true, "additionalData": false, "userId": false, "issueId": true} {
		if got := event.IsInputName(event.KindISPMIssue, name); got != want {
			t.Errorf("IsInputName(ispm, %q) = %v, want %v", name, got, want)
		}
	}
	if event.IsInputName(event.KindEntityRisk, "additionalDataTypes") || !event.IsInputName(event.KindEntityRisk, "userId") {
		t.Error("IsInputName(entity_risk) is wrong about additionalData or userId")
	}
	names := event.InputNames(event.KindEntityRisk)
	names[0] = "changed"
	if event.RiskInputNames[0] == "changed" {
		t.Error("InputNames returns the shared slice")
	}
}
