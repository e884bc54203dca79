package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/remediator/remediator/cli"
)

// remediator runs the command line offline and returns its exit code and outputs.
func remediator(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// fields splits a table line on runs of two or more spaces.
func fields(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

// tableRow returns the fields of the line of out that starts with first.
func tableRow(t *testing.T, out, first string) []string {
	t.Helper()
	for line := range strings.Lines(out) {
		if f := fields(line); f[0] == first {
			return f
		}
	}
	t.Fatalf("no line for %s in:\n%s", first, out)
	return nil
}

func TestFlowsList(t *testing.T) {
	t.Parallel()
	code, out, errOut := remediator(t, "flows", "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := fields(strings.SplitN(out, "\n", 2)[0]); strings.Join(got, "|") != "FLOW|HOST|ROUTED BY|RESOURCE SETS" {
		t.Errorf("header = %q", got)
	}
	row := tableRow(t, out, "clear-sessions")
	want := []string{"clear-sessions", "127.0.0.1:8090", "route compromised-okta-account, rule high-risk-clear-sessions", "ispm-remediation, entity-risk-remediation"}
	if strings.Join(row, "|") != strings.Join(want, "|") {
		t.Errorf("clear-sessions row = %q, want %q", row, want)
	}
	if strings.Contains(out, "/api/flo/") || strings.Contains(out, "REMEDIATOR_FLOWSIM_TOKEN") {
		t.Errorf("flows list shows more than the host of the invoke URL:\n%s", out)
	}
}

func TestFlowsListAs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		as   string
		want map[string]string // flow → "view run"
	}{
		{"ispm-console", map[string]string{"suspend-okta-account": "yes yes", "reset-password": "yes yes", "clear-sessions": "yes yes", "notify-slack": "yes yes"}},
		{"rule:high-risk-clear-sessions", map[string]string{"suspend-okta-account": "no no", "reset-password": "no no", "clear-sessions": "yes yes", "notify-slack": "yes yes"}},
		{"00uStranger", map[string]string{"suspend-okta-account": "no no", "reset-password": "no no", "clear-sessions": "no no", "notify-slack": "no no"}},
	}
	for _, tt := range tests {
		t.Run(tt.as, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := remediator(t, "flows", "list", "--as", tt.as)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(strings.SplitN(out, "\n", 2)[0], "VIEW  RUN") {
				t.Errorf("header lacks VIEW and RUN: %q", strings.SplitN(out, "\n", 2)[0])
			}
			for flow, want := range tt.want {
				row := tableRow(t, out, flow)
				if got := strings.Join(row[len(row)-2:], " "); got != want {
					t.Errorf("--as %s: %s view/run = %q, want %q", tt.as, flow, got, want)
				}
			}
		})
	}
}

func TestFlowsListWithConfigAndJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "remediator.yaml")
	doc := `
flows:
  - {name: suspend, url: https://acme.workflows.okta.com/api/flo/7d3b0c5f/invoke, clientToken: {env: TOKEN}}
  - {name: notify, url: https://acme.workflows.okta.com/api/flo/9a8b7c6d/invoke, clientToken: {env: TOKEN}}
routes:
  - {name: unused-admin-account, match: {titles: [Unused Admin Account]}, flows: [suspend]}
resourceSets:
  - {name: auditors, flows: [suspend, notify], groups: [00gAuditors], permissions: [view]}
  - {name: admins, flows: [suspend], users: [jane.doe@example.com], permissions: [run]}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := remediator(t, "flows", "list", "--config", path, "--as", "Jane.Doe@example.com", "--groups", "00gAuditors", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []struct {
		Flow         string   `json:"flow"`
		Host         string   `json:"host"`
		RoutedBy     []string `json:"routedBy"`
		ResourceSets []string `json:"resourceSets"`
		View, Run    *bool
		GrantedBy    []string `json:"grantedBy"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2: %s", len(rows), out)
	}
	s, n := rows[0], rows[1]
	if s.Flow != "suspend" || s.Host != "acme.workflows.okta.com" || !*s.View || !*s.Run || strings.Join(s.GrantedBy, ",") != "auditors,admins" {
		t.Errorf("suspend row = %+v", s)
	}
	if n.Flow != "notify" || !*n.View || *n.Run || len(n.RoutedBy) != 0 || strings.Join(n.ResourceSets, ",") != "auditors" {
		t.Errorf("notify row = %+v; want view only, routed by nothing", n)
	}
}

func TestPolicyExplainISPM(t *testing.T) {
	t.Parallel()
	code, out, errOut := remediator(t, "policy", "explain", "../examples/ispm-unused-admin.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"event      f73a7741-6980-4d44-b0bf-13a2fa7ac556\n",
		"kind       ispm_issue (ispm-issue-ondemand) on remediation.events.ispm\n",
		"principal  ispm-console (from defaultPrincipals[remediation.events.ispm])\n",
		"routes, in order (every matching route adds its flows):",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if r := tableRow(t, out, "1"); strings.Join(r, "|") != `1|unused-admin-account|MATCH|title "Unused Admin Account" matches → suspend-okta-account` {
		t.Errorf("route 1 = %q", r)
	}
	if r := tableRow(t, out, "2"); strings.Join(r, "|") != `2|no-mfa-admin-account|no match|title "Unused Admin Account" is not "No MFA - Admin Account"` {
		t.Errorf("route 2 = %q", r)
	}
	if r := tableRow(t, out, "suspend-okta-account"); strings.Join(r, "|") != "suspend-okta-account|(route unused-admin-account)|ALLOWED|run granted by resource set ispm-remediation" {
		t.Errorf("flow line = %q", r)
	}
	if !strings.HasSuffix(out, "verdict: dispatch to suspend-okta-account\n") {
		t.Errorf("verdict missing:\n%s", out)
	}
}

func TestPolicyExplainDenied(t *testing.T) {
	t.Parallel()
	code, out, _ := remediator(t, "policy", "explain", "--as", "00uStranger", "--groups", "00gEveryone", "../examples/ispm-compromised-account.json")
	if code != 0 {
		t.Fatalf("exit %d, want 0 whatever the verdict", code)
	}
	for _, want := range []string{
		"principal  00uStranger (from header Remediator-Principal), groups 00gEveryone\n",
		`DENIED   missing permission run: the flow is in resource set "ispm-remediation", which is not assigned to it or its groups`,
		`verdict: dead-letter on remediation.dlq.unauthorized: unauthorized: principal "00uStranger"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPolicyExplainEntityRisk(t *testing.T) {
	t.Parallel()
	code, out, errOut := remediator(t, "policy", "explain", "--json", "../examples/itp-high-risk.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var x struct {
		EventKind string
		Principal struct{ ID, From string }
		Steps     []struct {
			Kind, Name, Reason string
			Priority           int
			Evaluated, Match   bool
		}
		Flows []struct {
			Flow, Rule string
			Authorized bool
			GrantedBy  []string
			Inputs     map[string]any
		}
		Verdict string
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if x.EventKind != "entity_risk" || x.Principal.ID != "rule:high-risk-clear-sessions" || x.Verdict != "dispatch" {
		t.Errorf("explanation = %+v", x)
	}
	var steps []string
	for _, s := range x.Steps {
		steps = append(steps, s.Name)
	}
	if strings.Join(steps, ",") != "high-risk-clear-sessions,medium-risk-notify,Default Policy Rule" || !x.Steps[0].Match || x.Steps[1].Evaluated || x.Steps[2].Priority != 99 {
		t.Errorf("steps = %+v", x.Steps)
	}
	if len(x.Flows) != 1 || x.Flows[0].Flow != "clear-sessions" || !x.Flows[0].Authorized || x.Flows[0].Inputs["userId"] != "00u8k2j4abCDefGH5d7" {
		t.Errorf("flows = %+v", x.Flows)
	}

	// LOW risk falls to the default rule, which only records: skipped.
	_, out, _ = remediator(t, "policy", "explain", "../examples/itp-low-risk.json")
	if r := tableRow(t, out, "99"); r[1] != "Default Policy Rule" || r[2] != "MATCH" || !strings.Contains(out, "verdict: skipped") {
		t.Errorf("low risk:\n%s", out)
	}
}

func TestPolicyExplainMappedInputsAndInvalidEvents(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "remediator.yaml")
	doc := `
flows:
  - name: suspend
    url: https://acme.workflows.okta.com/api/flo/7d3b0c5f/invoke
    clientToken: {env: TOKEN}
    inputs:
      - {name: username, from: entityDisplayName}
      - {name: lastLogin, from: additionalDataLastLogin, type: datetime}
routes:
  - {name: unused-admin-account, match: {titles: [Unused Admin Account]}, flows: [suspend]}
resourceSets:
  - {name: admins, flows: [suspend], users: [00uAdmin], permissions: [run]}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, out, _ := remediator(t, "policy", "explain", "--config", path, "--as", "00uAdmin", "../examples/ispm-unused-admin.json")
	if !strings.Contains(out, "inputs (mapped): lastLogin, username\n") || !strings.Contains(out, "verdict: dispatch to suspend") {
		t.Errorf("mapped flow:\n%s", out)
	}
	// Without --as the event names no principal, and this configuration has no default.
	_, out, _ = remediator(t, "policy", "explain", "--config", path, "../examples/ispm-unused-admin.json")
	if !strings.Contains(out, "principal  none: unauthorized: event \"f73a7741-6980-4d44-b0bf-13a2fa7ac556\" names no principal") ||
		!strings.Contains(out, "verdict: dead-letter on remediation.dlq.unauthorized: ") {
		t.Errorf("no principal:\n%s", out)
	}
	_, out, _ = remediator(t, "policy", "explain", "../examples/invalid-missing-issueid.json")
	if !strings.Contains(out, "verdict: dead-letter on remediation.dlq.schema_violation: ispm-issue-ondemand v1: /issueId: missing required property") {
		t.Errorf("invalid event:\n%s", out)
	}
	code, _, errOut := remediator(t, "policy", "explain", "--subject", "remediation.events.nope", "../examples/ispm-unused-admin.json")
	if code != 2 || !strings.Contains(errOut, "remediation.events.ispm") {
		t.Errorf("bad subject: exit %d, %q", code, errOut)
	}
}

// policy explain takes a raw Okta event-hook delivery and explains each risk event in it.
func TestPolicyExplainOktaEventHookDelivery(t *testing.T) {
	t.Parallel()
	code, out, errOut := remediator(t, "policy", "explain", "--json", "../examples/okta-event-hook-delivery.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var xs []struct {
		EventType, UserID, RiskLevel, Verdict string
		Flows                                 []string
	}
	if err := json.Unmarshal([]byte(out), &xs); err != nil {
		t.Fatalf("output is not a JSON list of explanations: %v\n%s", err, out)
	}
	if len(xs) != 3 {
		t.Fatalf("%d explanations, want one per LogEvent (3):\n%s", len(xs), out)
	}
	want := []struct{ eventType, verdict, flow string }{
		{"user.risk.detect", "dispatch", "clear-sessions"},
		{"user.risk.change", "dispatch", "notify-slack"},
		{"user.session.start", "ignored", ""},
	}
	for i, w := range want {
		x := xs[i]
		if x.EventType != w.eventType || x.Verdict != w.verdict || (w.flow != "" && !slices.Contains(x.Flows, w.flow)) {
			t.Errorf("event %d: %s → %s %v; want %s → %s %s", i, x.EventType, x.Verdict, x.Flows, w.eventType, w.verdict, w.flow)
		}
	}
}

// An entity-risk event no custom rule takes is explained as the worker treats it: skipped, not
// dead-lettered (unrouted: skip, the default).
func TestPolicyExplainUnroutedIsSkipped(t *testing.T) {
	t.Parallel()
	code, out, errOut := remediator(t, "policy", "explain", "../examples/itp-low-risk.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "verdict: skipped") || strings.Contains(out, "dead-letter on") {
		t.Errorf("explain of an unrouted LOW-risk event:\n%s\nwant verdict skipped", out)
	}
}
