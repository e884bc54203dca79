package config_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/config"
)

const authzFlows = `
flows:
  - {name: suspend, url: https://acme.workflows.okta.com/api/flo/s/invoke, clientToken: {env: T}}
  - {name: notify, url: https://acme.workflows.okta.com/api/flo/n/invoke, clientToken: {env: T}}
routes:
  - {name: unused-admin, match: {titles: [Unused Admin Account]}, flows: [suspend]}
entityRiskPolicy:
  - {name: high, priority: 1, conditions: {level: HIGH}, flow: notify}
`

// TestAuthzConfigRejects checks that each mistake in resource sets, default principals,
// entity-risk rules and input mappings fails at start, in one line naming the file, the entry
// and the problem.
func TestAuthzConfigRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string // appended to authzFlows
		entry   string
		problem string
	}{
		// Resource sets.
		{"set with an unknown flow", `
resourceSets:
  - {name: ok, flows: [suspend], users: [00u1], permissions: [run]}
  - {name: ispm-remediation, flows: [suspend, x], users: [00u1], permissions: [run]}
`, "resourceSets[1] (ispm-remediation)", `flow "x" is not defined under flows`},
		{"set with an unknown permission", `
resourceSets:
  - {name: s, flows: [suspend], users: [00u1], permissions: [view, write]}
`, "resourceSets[0] (s)", `permission "write" is not view or run`},
		{"set with no permissions", `
resourceSets:
  - {name: s, flows: [suspend], users: [00u1]}
`, "resourceSets[0] (s)", "permissions is empty: grant view or run"},
		{"set with no flows", `
resourceSets:
  - {name: s, users: [00u1], permissions: [run]}
`, "resourceSets[0] (s)", "flows is empty"},
		{"set assigned to no one", `
resourceSets:
  - {name: s, flows: [suspend], permissions: [run]}
`, "resourceSets[0] (s)", "assigns no one: list users, groups or rules"},
		{"duplicate set names", `
resourceSets:
  - {name: s, flows: [suspend], users: [00u1], permissions: [run]}
  - {name: s, flows: [notify], users: [00u1], permissions: [run]}
`, "resourceSets[1] (s)", `name "s" is also used by resourceSets[0]`},
		{"set without a name", `
resourceSets:
  - {flows: [suspend], users: [00u1], permissions: [run]}
`, "resourceSets[0] ()", `name "" must be 1-64`},
		{"set with an unknown rule", `
resourceSets:
  - {name: s, flows: [notify], rules: [medium], permissions: [run]}
`, "resourceSets[0] (s)", `rule "medium" is not defined under entityRiskPolicy`},
		{"rule given as a user", `
resourceSets:
  - {name: s, flows: [notify], users: ["rule:high"], permissions: [run]}
`, "resourceSets[0] (s)", `user "rule:high": list entity-risk rules under rules, by name`},
		{"empty user", `
resourceSets:
  - {name: s, flows: [notify], users: [""], permissions: [run]}
`, "resourceSets[0] (s)", "users has an empty entry"},
		{"empty group", `
resourceSets:
  - {name: s, flows: [notify], groups: [" "], permissions: [run]}
`, "resourceSets[0] (s)", "groups has an empty entry"},

		// Default principals.
		{"default principal for the ITP subject", `
defaultPrincipals: {remediation.events.itp: svc-itp}
`, "defaultPrincipals[remediation.events.itp]", "entity-risk triggers are authorized as the rule that routes them"},
		{"default principal for an unknown subject", `
defaultPrincipals: {remediation.events.other: svc}
`, "defaultPrincipals[remediation.events.other]", `"remediation.events.other" is not an event subject`},
		{"empty default principal", `
defaultPrincipals: {remediation.events.ispm: ""}
`, "defaultPrincipals[remediation.events.ispm]", "the principal is empty"},
		{"default principal posing as a rule", `
defaultPrincipals: {remediation.events.ispm: "rule:high"}
`, "defaultPrincipals[remediation.events.ispm]", "prefix is reserved for entity-risk rules"},

		// Entity-risk policy rules: the list, and people conditions.
		{"rule with include and exclude", `
  - {name: both, priority: 2, conditions: {detectionTypes: {include: [BRUTE_FORCE_ATTACK], exclude: [SUSPICIOUS_APP_ACCESS]}}, flow: notify}
`, "entityRiskPolicy[1] (both)", "conditions.detectionTypes sets both include and exclude"},
		{"rule with an unknown detection type", `
  - {name: typo, priority: 2, conditions: {detectionTypes: {include: [BRUTE_FORCE]}}, flow: notify}
`, "entityRiskPolicy[1] (typo)", `unknown detection type "BRUTE_FORCE"`},
		{"custom rule at priority 99", `
  - {name: catch-all, priority: 99, flow: notify}
`, "entityRiskPolicy[1] (catch-all)", "priority 99: custom rules need 1..98 (99 is the default catch-all)"},
		{"rule with an unknown flow", `
  - {name: lost, priority: 2, flow: deactivate}
`, "entityRiskPolicy[1] (lost)", `flow "deactivate" is not defined under flows`},
		{"user both included and excluded", `
  - {name: people, priority: 2, conditions: {users: {include: [00uA, 00uB], exclude: [00uB]}}, flow: notify}
`, "entityRiskPolicy[1] (people)", `conditions.users: "00uB" is both included and excluded`},
		{"group both included and excluded", `
  - {name: people, priority: 2, conditions: {groups: {include: [00gA], exclude: [00gA]}}, flow: notify}
`, "entityRiskPolicy[1] (people)", `conditions.groups: "00gA" is both included and excluded`},
		{"empty user id", `
  - {name: people, priority: 2, conditions: {users: {exclude: [""]}}, flow: notify}
`, "entityRiskPolicy[1] (people)", "conditions.users.exclude has an empty id"},
		{"empty group id", `
  - {name: people, priority: 2, conditions: {groups: {include: [""]}}, flow: notify}
`, "entityRiskPolicy[1] (people)", "conditions.groups.include has an empty id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(authzFlows+tt.doc), "remediator.yaml")
			assertOneProblem(t, err, "remediator.yaml: "+tt.entry+": ", tt.problem)
		})
	}
}

func assertOneProblem(t *testing.T, err error, prefix, problem string) {
	t.Helper()
	if err == nil {
		t.Fatal("Parse accepted the configuration")
	}
	lines := strings.Split(err.Error(), "\n")
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, problem) {
			found = true
		}
	}
	if !found {
		t.Errorf("error does not report %q%s:\n%v", prefix, problem, err)
	}
	if len(lines) != 1 {
		t.Errorf("error reports %d problems, want 1:\n%v", len(lines), err)
	}
}

func TestInputMappingRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		flow    string // the inputs of flow "mapped", indented by 6
		entry   string
		problem string
	}{
		{"list type", "      - {name: groups, from: userId, type: list}\n",
			"inputs[0] (groups)", `type "list": delegated flows cannot take lists or objects; flatten it, e.g. join to text`},
		{"object type", "      - {name: user, from: userId, type: object}\n",
			"inputs[0] (user)", "delegated flows cannot take lists or objects"},
		{"unknown type", "      - {name: user, from: userId, type: string}\n",
			"inputs[0] (user)", `type "string" is not text, number, boolean or datetime`},
		{"unknown event input", "      - {name: user, from: usrId}\n",
			"inputs[0] (user)", `from "usrId" is not an input of entity-risk triggers; known: detectionName, detectionType, eventId`},
		{"an ISPM input on a flow only entity-risk rules use", "      - {name: who, from: entityDisplayName}\n",
			"inputs[0] (who)", `from "entityDisplayName" is not an input of entity-risk triggers`},
		{"additionalData on an entity-risk flow", "      - {name: x, from: additionalDataLastLogin}\n",
			"inputs[0] (x)", `is not an input of entity-risk triggers`},
		{"from and value", "      - {name: user, from: userId, value: x}\n",
			"inputs[0] (user)", "set from (an event input) or value (a constant), not both"},
		{"neither from nor value", "      - {name: user}\n",
			"inputs[0] (user)", "set from (an event input) or value (a constant)"},
		{"constant list", "      - {name: ids, value: [a, b]}\n",
			"inputs[0] (ids)", "value: [\"a\",\"b\"] is a list or an object; delegated flows cannot take lists or objects"},
		{"constant that is not a number", "      - {name: n, value: many, type: number}\n",
			"inputs[0] (n)", `value: "many" is not a number`},
		{"constant that is not a boolean", "      - {name: b, value: yes please, type: boolean}\n",
			"inputs[0] (b)", `value: "yes please" is not true or false`},
		{"duplicate input", "      - {name: user, from: userId}\n      - {name: user, from: userLogin}\n",
			"inputs[1] (user)", `input "user" is also defined by inputs[0]`},
		{"reserved name", "      - {name: idempotencyKey, from: eventId}\n",
			"inputs[0] (idempotencyKey)", "is reserved"},
		{"no name", "      - {from: userId}\n",
			"inputs[0] ()", "name is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := `
flows:
  - name: mapped
    url: https://acme.workflows.okta.com/api/flo/m/invoke
    clientToken: {env: T}
    inputs:
` + tt.flow + `entityRiskPolicy:
  - {name: high, priority: 1, conditions: {level: HIGH}, flow: mapped}
`
			_, err := config.Parse([]byte(doc), "remediator.yaml")
			assertOneProblem(t, err, "remediator.yaml: flows[0] (mapped): "+tt.entry+": ", tt.problem)
		})
	}
}

func TestAuthzConfigAccepts(t *testing.T) {
	t.Parallel()
	doc := authzFlows + `  - name: people
    priority: 2
    conditions:
      users: {include: [00uA], exclude: [00uB]}
      groups: {include: [00gAdmins], exclude: [00gContractors]}
    flow: suspend
defaultPrincipals:
  remediation.events.ispm: svc-ispm
resourceSets:
  - {name: a, flows: [suspend, notify], users: [00u1, jane@example.com], groups: [00gSecOps], permissions: [VIEW, Run]}
  - {name: b, flows: [suspend], rules: [high, people], permissions: [okta.workflows.invoke]}
  - {name: c, flows: [notify], users: [svc-ispm], permissions: [okta.workflows.read]}
`
	c, err := config.Parse([]byte(strings.Replace(doc, "flows:\n  - {name: suspend", `flows:
  - name: suspend
    url: https://acme.workflows.okta.com/api/flo/s2/invoke
    clientToken: {env: T}
    inputs:
      - {name: user, from: entityDisplayName}
      - {name: lastLogin, from: additionalDataLastLogin, type: DateTime}
      - {name: riskLevel, from: riskLevel}
      - {name: attempts, value: 3, type: number}
  - {name: unused, url: https://x/invoke, clientToken: {env: T}, inputs: [{name: u, from: userId}, {name: e, from: entityId}]}
  - {name: suspend-old`, 1)), "remediator.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, s := range c.ResourceSets {
		view, run := s.Grants()
		want := map[string][2]bool{"a": {true, true}, "b": {true, true}, "c": {true, false}}[s.Name]
		if view != want[0] || run != want[1] {
			t.Errorf("set %s grants view %v, run %v; want %v", s.Name, view, run, want)
		}
	}
	if got := c.ResourceSets[0].Permissions; strings.Join(got, ",") != "view,run" {
		t.Errorf("permissions are not normalised: %v", got)
	}
	if got := c.Flows[0].Inputs[1].Type; got != config.InputDateTime {
		t.Errorf("input type %q not normalised to %q", got, config.InputDateTime)
	}
}

func TestMapInputs(t *testing.T) {
	t.Parallel()
	f := &config.Flow{Name: "mapped", Inputs: []config.Input{
		{Name: "user", From: "userLogin"},
		{Name: "score", From: "additionalDataScore", Type: config.InputNumber},
		{Name: "admin", From: "additionalDataIsAdmin", Type: config.InputBoolean},
		{Name: "detected", From: "issueDetectedAt", Type: config.InputDateTime},
		{Name: "lastLogin", From: "additionalDataLastLogin", Type: config.InputDateTime},
		{Name: "when", From: "eventTimestamp", Type: config.InputDateTime},
		{Name: "source", Value: "remediator"},
		{Name: "limit", Value: 2.5, Type: config.InputNumber},
		{Name: "absent", From: "userId"},
	}}
	in := map[string]any{
		"userLogin": "jane@example.com", "additionalDataScore": " 42 ", "additionalDataIsAdmin": "TRUE",
		"issueDetectedAt": "2024-06-18", "additionalDataLastLogin": "03/28/2024",
		"eventTimestamp": "2024-06-09T16:56:58.5+02:00", "notMapped": "x",
	}
	got, err := f.MapInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"user": "jane@example.com", "score": json.Number("42"), "admin": true,
		"detected": "2024-06-18T00:00:00Z", "lastLogin": "2024-03-28T00:00:00Z", "when": "2024-06-09T14:56:58.5Z",
		"source": "remediator", "limit": json.Number("2.5"),
	}
	if len(got) != len(want) {
		t.Errorf("MapInputs = %v, want exactly %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("input %s = %#v, want %#v", k, got[k], v)
		}
	}

	// Without a mapping, everything passes, as a copy.
	plain := &config.Flow{Name: "plain"}
	all, err := plain.MapInputs(in)
	if err != nil || len(all) != len(in) {
		t.Errorf("unmapped MapInputs = %v, %v", all, err)
	}
	all["userLogin"] = "changed"
	if in["userLogin"] != "jane@example.com" {
		t.Error("MapInputs without a mapping returned the caller's map")
	}
}

func TestMapInputsRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input config.Input
		in    map[string]any
		want  string
	}{
		{"not a number", config.Input{Name: "score", From: "additionalDataScore", Type: config.InputNumber},
			map[string]any{"additionalDataScore": "high"}, `flow mapped: input "score" (number, from event input additionalDataScore): "high" is not a number`},
		{"hex is not a number", config.Input{Name: "n", From: "k", Type: config.InputNumber},
			map[string]any{"k": "0x10"}, `"0x10" is not a number`},
		{"infinity is not a number", config.Input{Name: "n", From: "k", Type: config.InputNumber},
			map[string]any{"k": "Inf"}, `"Inf" is not a number`},
		{"out of range", config.Input{Name: "n", From: "k", Type: config.InputNumber},
			map[string]any{"k": "1e999"}, `"1e999" is not a number`},
		{"not a boolean", config.Input{Name: "admin", From: "k", Type: config.InputBoolean},
			map[string]any{"k": "yes"}, `"yes" is not true or false`},
		{"not a date", config.Input{Name: "when", From: "k", Type: config.InputDateTime},
			map[string]any{"k": "yesterday"}, `"yesterday" is not a date-time (want RFC 3339, YYYY-MM-DD or MM/DD/YYYY)`},
		{"day-first date", config.Input{Name: "when", From: "k", Type: config.InputDateTime},
			map[string]any{"k": "28/03/2024"}, "is not a date-time"},
		{"a list", config.Input{Name: "groups", From: "k"},
			map[string]any{"k": []string{"a", "b"}}, "delegated flows cannot take lists or objects (flatten it, e.g. join to text)"},
		{"an object", config.Input{Name: "o", From: "k"},
			map[string]any{"k": map[string]any{"a": 1}}, "is a list or an object"},
		{"required and missing", config.Input{Name: "user", From: "userId", Required: true},
			map[string]any{"userLogin": "x"}, `flow mapped: input "user" (text) is required, but the event has no userId`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &config.Flow{Name: "mapped", Inputs: []config.Input{tt.input}}
			got, err := f.MapInputs(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("MapInputs = %v, %v; want an error saying %q", got, err, tt.want)
			}
		})
	}
}

func TestConvertInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  string
		in   any
		want any
	}{
		{"text", "x", "x"},
		{"text", 3, "3"},
		{"text", true, "true"},
		{"text", time.Date(2024, 6, 9, 16, 0, 0, 0, time.FixedZone("", 7200)), "2024-06-09T14:00:00Z"},
		{"number", "-1.5e3", json.Number("-1.5e3")},
		{"number", "+7", json.Number("7")},
		{"number", "12345678901234567890", json.Number("12345678901234567890")},
		{"number", ".5", json.Number("0.5")},
		{"number", 12, json.Number("12")},
		{"number", 0.25, json.Number("0.25")},
		{"boolean", "False", false},
		{"boolean", true, true},
		{"datetime", "2024-06-09t14:56:58z", "2024-06-09T14:56:58Z"},
	}
	for _, tt := range tests {
		got, err := config.ConvertInput(tt.typ, tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ConvertInput(%s, %#v) = %#v, %v; want %#v", tt.typ, tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		typ string
		in  any
	}{{"number", true}, {"boolean", 1}, {"datetime", 20240609}, {"text", nil}, {"list", "x"}} {
		if got, err := config.ConvertInput(bad.typ, bad.in); err == nil {
			t.Errorf("ConvertInput(%s, %#v) = %#v, want an error", bad.typ, bad.in, got)
		}
	}
}

// FuzzConvertInput checks that no text makes ConvertInput panic, and that what it returns is
// what the type promises.
func FuzzConvertInput(f *testing.F) {
	for _, s := range []string{"42", "-1.5e3", "true", "FALSE", "2024-06-18", "03/28/2024", "2024-06-09T14:56:58Z", "0x10", "Inf", "", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range config.InputTypes {
			v, err := config.ConvertInput(typ, s)
			if err != nil {
				continue
			}
			switch typ {
			case config.InputNumber:
				n, ok := v.(json.Number)
				if !ok || !json.Valid([]byte(n)) {
					t.Errorf("number %q became %#v, not a valid JSON number", s, v)
				}
			case config.InputDateTime:
				if _, err := time.Parse(time.RFC3339Nano, v.(string)); err != nil {
					t.Errorf("datetime %q became %q, not RFC 3339", s, v)
				}
			case config.InputBoolean:
				if _, ok := v.(bool); !ok {
					t.Errorf("boolean %q became %#v", s, v)
				}
			}
		}
	})
}
