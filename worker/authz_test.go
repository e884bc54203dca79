package worker_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/status"
)

const (
	seedID        = "f73a7741-6980-4d44-b0bf-13a2fa7ac556" // ispm-unused-admin.json → suspend-okta-account
	compromisedID = "7c4e1b9d-2a3f-4d8e-b6c5-0e1f2a3b4c5d" // ispm-compromised-account.json → clear-sessions, reset-password
	highRiskID    = "9f5b2c1e-4d7a-4b8e-9a31-2f0c6d8e7b14" // itp-high-risk.json → rule high-risk-clear-sessions → clear-sessions
)

// orgAuthz replaces the built-in demo's permissive grants with an org's: no default principal,
// an admin who may run suspend-okta-account, a viewer who may only see it, a SecOps group that
// may run clear-sessions and reset-password, a helpdesk user who may run reset-password only,
// and the built-in entity-risk rules' grants.
func orgAuthz(c *config.Config) {
	c.DefaultPrincipals = nil
	c.ResourceSets = []config.ResourceSet{
		{Name: "ispm-suspend", Flows: []string{"suspend-okta-account"}, Users: []string{"00uAdmin"}, Permissions: []string{"run"}},
		{Name: "ispm-audit", Flows: []string{"suspend-okta-account", "clear-sessions"}, Users: []string{"00uViewer", "helpdesk@example.com"}, Permissions: []string{"view"}},
		{Name: "secops", Flows: []string{"clear-sessions", "reset-password"}, Groups: []string{"00gSecOps"}, Permissions: []string{"run"}},
		{Name: "helpdesk", Flows: []string{"reset-password"}, Users: []string{"helpdesk@example.com"}, Permissions: []string{"run"}},
		{Name: "entity-risk", Flows: []string{"clear-sessions", "notify-slack"}, Rules: []string{"high-risk-clear-sessions", "medium-risk-notify"}, Permissions: []string{"run"}},
	}
}

// fixtureWith returns the fixture with one more top-level member.
func fixtureWith(t *testing.T, fixture, key, value string) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readFixture(t, fixture), &doc); err != nil {
		t.Fatal(err)
	}
	doc[key] = value
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuthorizationMatrix runs principals × resource sets × permissions end to end: allowed runs
// dispatch and succeed; denied ones end as unauthorized dead letters with a rejected status,
// and the flow is never called.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*config.Config)
		subject string
		data    func(t *testing.T) []byte
		header  map[string][]string
		eventID string
		flows   []string // flows the event is routed to
		allowed bool
		denial  []string // parts of the dead letter's error
	}{
		{
			name: "default config: default principal may run", subject: event.SubjectISPM,
			data:    func(t *testing.T) []byte { return readFixture(t, "ispm-unused-admin.json") },
			eventID: seedID, flows: []string{"suspend-okta-account"}, allowed: true,
		},
		{
			name: "user with run via oktaUserId", mutate: orgAuthz, subject: event.SubjectISPM,
			data:    func(t *testing.T) []byte { return fixtureWith(t, "ispm-unused-admin.json", "oktaUserId", "00uAdmin") },
			eventID: seedID, flows: []string{"suspend-okta-account"}, allowed: true,
		},
		{
			name: "user with view only", mutate: orgAuthz, subject: event.SubjectISPM,
			data:    func(t *testing.T) []byte { return fixtureWith(t, "ispm-unused-admin.json", "oktaUserId", "00uViewer") },
			eventID: seedID, flows: []string{"suspend-okta-account"},
			denial: []string{`principal "00uViewer" (from oktaUserId) may not run flow "suspend-okta-account": missing permission run`, `resource set "ispm-audit" grants it view only`},
		},
		{
			name: "user with no permission", mutate: orgAuthz, subject: event.SubjectISPM,
			data: func(t *testing.T) []byte {
				return fixtureWith(t, "ispm-unused-admin.json", "oktaUserId", "00uStranger")
			},
			eventID: seedID, flows: []string{"suspend-okta-account"},
			denial: []string{`principal "00uStranger"`, `none of which is assigned to it`},
		},
		{
			name: "no principal and no default principal", mutate: orgAuthz, subject: event.SubjectISPM,
			data:    func(t *testing.T) []byte { return readFixture(t, "ispm-unused-admin.json") },
			eventID: seedID, flows: []string{"suspend-okta-account"},
			denial: []string{"names no principal", "defaultPrincipals"},
		},
		{
			name: "header principal with run via group, two flows", mutate: orgAuthz, subject: event.SubjectISPM,
			data:    func(t *testing.T) []byte { return readFixture(t, "ispm-compromised-account.json") },
			header:  map[string][]string{"Remediator-Principal": {"jane@example.com"}, "Remediator-Principal-Groups": {"00gEveryone,00gSecOps"}},
			eventID: compromisedID, flows: []string{"clear-sessions", "reset-password"}, allowed: true,
		},
		{
			name: "one of two flows denied: neither runs", mutate: orgAuthz, subject: event.SubjectISPM,
			data:    func(t *testing.T) []byte { return readFixture(t, "ispm-compromised-account.json") },
			header:  map[string][]string{"Remediator-Principal": {"HelpDesk@Example.com"}},
			eventID: compromisedID, flows: []string{"clear-sessions", "reset-password"},
			denial: []string{`may not run flow "clear-sessions"`, `resource set "ispm-audit" grants it view only`, "none of the event's 2 flows runs when one is denied"},
		},
		{
			name: "header and oktaUserId disagree", mutate: orgAuthz, subject: event.SubjectISPM,
			data:    func(t *testing.T) []byte { return fixtureWith(t, "ispm-unused-admin.json", "oktaUserId", "00uViewer") },
			header:  map[string][]string{"Remediator-Principal": {"00uAdmin"}},
			eventID: seedID, flows: []string{"suspend-okta-account"},
			denial: []string{"names two principals"},
		},
		{
			name: "entity-risk rule with run", mutate: orgAuthz, subject: event.SubjectITP,
			data:    func(t *testing.T) []byte { return readFixture(t, "itp-high-risk.json") },
			eventID: highRiskID, flows: []string{"clear-sessions"}, allowed: true,
		},
		{
			name: "entity-risk rule without the set", subject: event.SubjectITP,
			mutate: func(c *config.Config) {
				orgAuthz(c)
				c.ResourceSets[len(c.ResourceSets)-1].Rules = []string{"medium-risk-notify"}
			},
			data:    func(t *testing.T) []byte { return readFixture(t, "itp-high-risk.json") },
			header:  map[string][]string{"Remediator-Principal": {"00uAdmin"}}, // does not count for entity risk
			eventID: highRiskID, flows: []string{"clear-sessions"},
			denial: []string{`principal "rule:high-risk-clear-sessions" (from entity-risk rule high-risk-clear-sessions) may not run flow "clear-sessions"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, options{mutate: tt.mutate})
			if _, err := h.pub.Publish(context.Background(), tt.data(t), publish.Options{Subject: tt.subject, Header: tt.header}); err != nil {
				t.Fatal(err)
			}
			if tt.allowed {
				for _, f := range tt.flows {
					h.waitStatus(tt.eventID, status.Succeeded, f)
					if n := h.sim.Stats(f).Received; n != 1 {
						t.Errorf("flow %s received %d calls, want 1", f, n)
					}
				}
				return
			}
			dl, subject := h.waitDeadLetter("unauthorized dead letter", func(d status.DeadLetter) bool { return d.EventID == tt.eventID })
			if subject != "remediation.dlq.unauthorized" || dl.Reason != status.ReasonUnauthorized {
				t.Errorf("dead letter on %s with reason %s, want remediation.dlq.unauthorized", subject, dl.Reason)
			}
			for _, want := range tt.denial {
				if !strings.Contains(dl.Error, want) {
					t.Errorf("dead letter error %q does not say %q", dl.Error, want)
				}
			}
			if len(dl.Payload) == 0 || dl.Subject != tt.subject {
				t.Errorf("dead letter lacks the original message: subject %q, %d bytes", dl.Subject, len(dl.Payload))
			}
			rej := h.waitStatus(tt.eventID, status.Rejected, "")
			if rej.Reason != status.ReasonUnauthorized || rej.DLQSequence == 0 || rej.Attempt != 0 {
				t.Errorf("rejected status = %+v, want reason unauthorized, the DLQ sequence, no attempt", rej)
			}
			for _, f := range tt.flows {
				if n := h.sim.Stats(f).Received; n != 0 {
					t.Errorf("flow %s was called %d times for a denied event", f, n)
				}
			}
			for _, r := range h.statuses() {
				if r.EventID == tt.eventID && r.Outcome != status.Rejected {
					t.Errorf("denied event has a %s status: %+v", r.Outcome, r)
				}
			}
		})
	}
}

// TestMappedFlowReceivesExactlyItsInputs checks that a flow with an input mapping receives the
// mapped inputs, converted, and the idempotency key, and nothing else; and that an event that
// does not fit the mapping is dead-lettered before any call.
func TestMappedFlowReceivesExactlyItsInputs(t *testing.T) {
	t.Parallel()
	mapped := func(c *config.Config) {
		f, _ := c.Flow("suspend-okta-account")
		f.Inputs = []config.Input{
			{Name: "username", From: "entityDisplayName", Required: true},
			{Name: "lastLogin", From: "additionalDataLastLogin", Type: "datetime"},
			{Name: "detected", From: "issueDetectedAt", Type: "datetime"},
			{Name: "severity", From: "issueSeverity"},
			{Name: "ticket", From: "additionalDataTicket", Type: "number"}, // absent: left out
			{Name: "dryRun", Value: false, Type: "boolean"},
			{Name: "maxAccounts", Value: 5, Type: "number"},
		}
	}
	h := start(t, options{mutate: mapped})
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	rec := h.waitStatus(seedID, status.Succeeded, "suspend-okta-account")
	calls := h.sim.Invocations("suspend-okta-account")
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	got := calls[0].Inputs
	want := map[string]any{
		"username": "john.smith@okta.com", "lastLogin": "2024-03-28T00:00:00Z", "detected": "2024-06-18T00:00:00Z",
		"severity": "High", "dryRun": false, "maxAccounts": json.Number("5"), "idempotencyKey": rec.IdempotencyKey,
	}
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Errorf("flow received inputs %v, want exactly %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("input %s = %#v, want %#v", k, got[k], v)
		}
	}

	// An event whose value does not convert is dead-lettered as schema_violation; no call.
	h2 := start(t, options{mutate: func(c *config.Config) {
		mapped(c)
		f, _ := c.Flow("suspend-okta-account")
		f.Inputs = append(f.Inputs, config.Input{Name: "severityScore", From: "issueSeverity", Type: "number"})
	}})
	h2.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	dl, subject := h2.waitDeadLetter("schema_violation for an unmappable input", func(d status.DeadLetter) bool { return d.EventID == seedID })
	if subject != "remediation.dlq.schema_violation" || !strings.Contains(dl.Error, `input "severityScore" (number, from event input issueSeverity): "High" is not a number`) {
		t.Errorf("dead letter on %s: %q", subject, dl.Error)
	}
	h2.waitStatus(seedID, status.Rejected, "")
	if n := h2.sim.Stats("suspend-okta-account").Received; n != 0 {
		t.Errorf("flow called %d times for an event that does not fit its inputs", n)
	}
}
