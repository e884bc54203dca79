package policy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
)

// authzConfig has one flow per situation: "a" is in three resource sets (view only, run by a
// user, run by another user), "b" is run through a group, "c" by an entity-risk rule, "d" is in
// no set.
const authzConfig = `
flows:
  - {name: a, url: https://acme.workflows.okta.com/api/flo/a/invoke, clientToken: {env: T}}
  - {name: b, url: https://acme.workflows.okta.com/api/flo/b/invoke, clientToken: {env: T}}
  - {name: c, url: https://acme.workflows.okta.com/api/flo/c/invoke, clientToken: {env: T}}
  - {name: d, url: https://acme.workflows.okta.com/api/flo/d/invoke, clientToken: {env: T}}
routes:
  - {name: everything, flows: [a, b, d]}
entityRiskPolicy:
  - {name: high, priority: 1, conditions: {level: HIGH}, flow: c}
  - {name: medium, priority: 2, conditions: {level: MEDIUM}, flow: a}
defaultPrincipals:
  remediation.events.ispm: svc-ispm-detector
resourceSets:
  - {name: viewers, flows: [a], users: [viewer@example.com, auditor@example.com], permissions: [view]}
  - {name: runners, flows: [a, b], users: [00uRunner], permissions: [run]}
  - {name: secops, flows: [b], groups: [00gSecOps], permissions: [okta.workflows.invoke]}
  - {name: second, flows: [a], users: [00uOther, viewer@example.com], permissions: [view, run]}
  - {name: risk, flows: [c], rules: [high], permissions: [run]}
  - {name: read-risk, flows: [a], rules: [medium], permissions: [okta.workflows.read]}
`

func authzRouter(t *testing.T) *policy.Router {
	t.Helper()
	cfg, err := config.Parse([]byte(authzConfig), "authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return policy.New(cfg)
}

func TestAuthorizeMatrix(t *testing.T) {
	t.Parallel()
	r := authzRouter(t)
	ev := &event.Event{ID: "evt-1", Kind: event.KindISPMIssue, Issue: &event.Issue{}}
	tests := []struct {
		name       string
		principal  string
		groups     []string
		flow       string
		view, run  bool
		sets       []string
		deniedWhy  string // part of the error when run is false
		grantingBy string
	}{
		{name: "user with run", principal: "00uRunner", flow: "a", view: true, run: true, sets: []string{"runners"}},
		{name: "same user, flow of another set", principal: "00uRunner", flow: "c",
			deniedWhy: `the flow is in resource set "risk", which is not assigned to it`},
		{name: "ids are matched exactly", principal: "00urunner", flow: "a",
			deniedWhy: `the flow is in resource sets "viewers", "runners", "second", "read-risk", none of which is assigned to it`},
		{name: "view only", principal: "auditor@example.com", flow: "a", view: true, sets: []string{"viewers"},
			deniedWhy: `resource set "viewers" grants it view only`},
		{name: "unknown login", principal: "viewer@other.example", flow: "a",
			deniedWhy: "none of which is assigned"},
		{name: "login in a view set and a run set: run wins", principal: "viewer@example.com", flow: "a", view: true, run: true, sets: []string{"viewers", "second"}},
		{name: "logins are matched case-insensitively", principal: "Viewer@Example.COM", flow: "a", view: true, run: true, sets: []string{"viewers", "second"}},
		{name: "flow in two sets, granted by the second", principal: "00uOther", flow: "a", view: true, run: true, sets: []string{"second"}},
		{name: "via group", principal: "00uNobody", groups: []string{"00gEveryone", "00gSecOps"}, flow: "b", view: true, run: true, sets: []string{"secops"}},
		{name: "via another group", principal: "00uNobody", groups: []string{"00gEveryone"}, flow: "b",
			deniedWhy: `the flow is in resource sets "runners", "secops", none of which is assigned to it or its groups`},
		{name: "group grants nothing on other flows", principal: "00uNobody", groups: []string{"00gSecOps"}, flow: "a",
			deniedWhy: "none of which is assigned to it or its groups"},
		{name: "no permission at all", principal: "00uStranger", flow: "b", deniedWhy: "none of which is assigned"},
		{name: "flow in no set", principal: "00uRunner", flow: "d", deniedWhy: "the flow is in no resource set"},
		{name: "rule with run", principal: "rule:high", flow: "c", view: true, run: true, sets: []string{"risk"}},
		{name: "rule with view only", principal: "rule:medium", flow: "a", view: true, sets: []string{"read-risk"},
			deniedWhy: `resource set "read-risk" grants it view only`},
		{name: "rule without the set", principal: "rule:medium", flow: "c", deniedWhy: "which is not assigned"},
		{name: "a user named like a rule's set member is not the rule", principal: "high", flow: "c", deniedWhy: "which is not assigned"},
		{name: "default principal not in any set", principal: "svc-ispm-detector", flow: "a", deniedWhy: "none of which is assigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			view, run, sets := r.Permissions(tt.principal, tt.groups, tt.flow)
			if view != tt.view || run != tt.run || !slices.Equal(sets, tt.sets) {
				t.Errorf("Permissions(%q, %v, %q) = view %v, run %v, sets %v; want %v, %v, %v",
					tt.principal, tt.groups, tt.flow, view, run, sets, tt.view, tt.run, tt.sets)
			}
			err := r.Authorize(ev, policy.Principal{ID: tt.principal, Groups: tt.groups, From: "test"}, tt.flow)
			if tt.run {
				if err != nil {
					t.Errorf("Authorize: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, policy.ErrUnauthorized) {
				t.Fatalf("Authorize = %v, want an error wrapping ErrUnauthorized", err)
			}
			for _, want := range []string{`principal "` + tt.principal + `"`, `flow "` + tt.flow + `"`, "missing permission run", tt.deniedWhy} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Authorize error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestAuthorizeWithoutPrincipal(t *testing.T) {
	t.Parallel()
	r := authzRouter(t)
	err := r.Authorize(&event.Event{ID: "evt-9"}, policy.Principal{}, "a")
	if !errors.Is(err, policy.ErrUnauthorized) || !strings.Contains(err.Error(), "no principal") || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Authorize with no principal = %v", err)
	}
}

func TestAuthorizeWithoutResourceSets(t *testing.T) {
	t.Parallel()
	// Authorization is always on: a configuration with no resource sets runs nothing.
	r := routerFor(t, []config.Route{{Name: "all", Flows: []string{"f"}}}, nil)
	err := r.Authorize(&event.Event{ID: "e"}, policy.Principal{ID: "00uAdmin", From: "oktaUserId"}, "f")
	if !errors.Is(err, policy.ErrUnauthorized) || !strings.Contains(err.Error(), "in no resource set") {
		t.Errorf("Authorize = %v, want unauthorized: no resource set", err)
	}
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	r := authzRouter(t)
	ispm := func(oktaUserID string) *event.Event {
		return &event.Event{ID: "evt-1", Kind: event.KindISPMIssue, Principal: oktaUserID, Issue: &event.Issue{Title: "x"}}
	}
	risk := func(level, ruleID string) *event.Event {
		return &event.Event{ID: "evt-2", Kind: event.KindEntityRisk, Principal: ruleID,
			Risk: &event.RiskTrigger{UserID: "00uJane", RiskLevel: level, DetectionType: "BRUTE_FORCE_ATTACK", RuleID: ruleID}}
	}
	h := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = append(m[kv[i]], kv[i+1])
		}
		return m
	}
	tests := []struct {
		name    string
		ev      *event.Event
		header  map[string][]string
		subject string
		want    policy.Principal
		err     string
	}{
		{name: "oktaUserId", ev: ispm("00uAdmin"), subject: event.SubjectISPM,
			want: policy.Principal{ID: "00uAdmin", From: "oktaUserId"}},
		{name: "header", ev: ispm(""), header: h("Remediator-Principal", "jane@example.com"), subject: event.SubjectISPM,
			want: policy.Principal{ID: "jane@example.com", From: "header Remediator-Principal"}},
		{name: "header name in any case, with groups", ev: ispm(""),
			header: h("remediator-principal", "00uA", "REMEDIATOR-PRINCIPAL-GROUPS", "00g1, 00g2,,00g1"), subject: event.SubjectISPM,
			want: policy.Principal{ID: "00uA", Groups: []string{"00g1", "00g2"}, From: "header Remediator-Principal"}},
		{name: "header and oktaUserId agree", ev: ispm("00uA"), header: h("Remediator-Principal", "00uA"), subject: event.SubjectISPM,
			want: policy.Principal{ID: "00uA", From: "header Remediator-Principal"}},
		{name: "groups with oktaUserId", ev: ispm("00uA"), header: h("Remediator-Principal-Groups", "00gSecOps"), subject: event.SubjectISPM,
			want: policy.Principal{ID: "00uA", Groups: []string{"00gSecOps"}, From: "oktaUserId"}},
		{name: "default principal", ev: ispm(""), subject: event.SubjectISPM,
			want: policy.Principal{ID: "svc-ispm-detector", From: "defaultPrincipals[remediation.events.ispm]"}},
		{name: "entity risk: the routing rule, whatever ruleId and headers say", ev: risk("HIGH", "rul8zvt07hnsPkLBB2e7"),
			header: h("Remediator-Principal", "00uAdmin"), subject: event.SubjectITP,
			want: policy.Principal{ID: "rule:high", From: "entity-risk rule high"}},
		{name: "entity risk: second rule", ev: risk("MEDIUM", ""), subject: event.SubjectITP,
			want: policy.Principal{ID: "rule:medium", From: "entity-risk rule medium"}},

		{name: "header and oktaUserId disagree", ev: ispm("00uA"), header: h("Remediator-Principal", "00uB"), subject: event.SubjectISPM,
			err: `names two principals: header Remediator-Principal "00uB" and oktaUserId "00uA"`},
		{name: "header twice", ev: ispm(""), header: h("Remediator-Principal", "00uA", "remediator-principal", "00uB"), subject: event.SubjectISPM,
			err: "header Remediator-Principal is given twice"},
		{name: "no principal, no default for the subject", ev: ispm(""), subject: "remediation.events.other",
			err: "names no principal"},
		{name: "a user may not pose as a rule", ev: ispm(""), header: h("Remediator-Principal", "rule:high"), subject: event.SubjectISPM,
			err: "prefix is reserved for entity-risk rules"},
		{name: "oktaUserId may not pose as a rule", ev: ispm("rule:high"), subject: event.SubjectISPM,
			err: "prefix is reserved"},
		{name: "entity risk matching no rule", ev: risk("LOW", ""), subject: event.SubjectITP,
			err: "matches no rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Principal(tt.ev, tt.header, tt.subject)
			if tt.err != "" {
				if !errors.Is(err, policy.ErrUnauthorized) || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("Principal = %+v, %v; want an unauthorized error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Principal: %v", err)
			}
			if got.ID != tt.want.ID || got.From != tt.want.From || !slices.Equal(got.Groups, tt.want.Groups) {
				t.Errorf("Principal = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNoPrincipalErrorSaysWhatToDo(t *testing.T) {
	t.Parallel()
	r := routerFor(t, []config.Route{{Name: "all", Flows: []string{"f"}}}, nil)
	_, err := r.Principal(&event.Event{ID: "evt-1", Issue: &event.Issue{}}, nil, event.SubjectISPM)
	for _, want := range []string{"oktaUserId", "Remediator-Principal", "defaultPrincipals", event.SubjectISPM, `"evt-1"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestInputs(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
flows:
  - name: mapped
    url: https://acme.workflows.okta.com/api/flo/m/invoke
    clientToken: {env: T}
    inputs:
      - {name: user, from: userId}
      - {name: level, from: riskLevel}
      - {name: when, from: eventTimestamp, type: datetime}
      - {name: urgent, value: true, type: boolean}
  - {name: plain, url: https://acme.workflows.okta.com/api/flo/p/invoke, clientToken: {env: T}}
`), "inputs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := policy.New(cfg)
	ev := &event.Event{ID: "evt-3", Kind: event.KindEntityRisk, Risk: &event.RiskTrigger{UserID: "00uJane", RiskLevel: "HIGH"}}
	in, err := r.Inputs(ev, "mapped")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"user": "00uJane", "level": "HIGH", "urgent": true}
	if len(in) != len(want) || in["user"] != "00uJane" || in["level"] != "HIGH" || in["urgent"] != true {
		t.Errorf("mapped inputs = %v, want %v (no time: the event has none)", in, want)
	}
	all, err := r.Inputs(ev, "plain")
	if err != nil || len(all) != len(ev.Inputs()) {
		t.Errorf("unmapped inputs = %v, %v; want the event's %v", all, err, ev.Inputs())
	}
}
