package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/policy"
)

// simOrgRules is the simulated org's ENTITY_RISK policy (the catch-all is added by the
// simulator): every condition and action kind Okta has.
var simOrgRules = []string{
	`{"id":"rulVIP","name":"VIP high risk","priority":1,"status":"ACTIVE","type":"ENTITY_RISK",
	  "conditions":{"entityRisk":{"level":"HIGH"},"people":{"groups":{"include":["00gVIP"],"exclude":["00gBreakGlass"]}}},
	  "actions":{"entityRisk":{"actions":[{"action":"RUN_WORKFLOW","workflow":{"id":572749}}]}}}`,
	`{"id":"rulTerminate","name":"High risk, reported","priority":2,"status":"ACTIVE","type":"ENTITY_RISK",
	  "conditions":{"entityRisk":{"level":"HIGH"},"people":{"users":{"exclude":["00uSvc"]}},
	    "riskDetectionTypes":{"include":["USER_REPORTED_SUSPICIOUS_ACTIVITY","OKTA_THREAT_INTELLIGENCE"]}},
	  "actions":{"entityRisk":{"actions":[{"action":"TERMINATE_ALL_SESSIONS"}]}}}`,
	`{"id":"rulLog","name":"Medium, not admin-reported","priority":3,"status":"ACTIVE","type":"ENTITY_RISK",
	  "conditions":{"entityRisk":{"level":"MEDIUM"},"riskDetectionTypes":{"exclude":["ADMIN_REPORTED_USER_RISK"]}},
	  "actions":{"entityRisk":{"actions":[]}}}`,
	`{"id":"rulOff","name":"Switched off","priority":4,"status":"INACTIVE","type":"ENTITY_RISK",
	  "conditions":{"entityRisk":{"level":"ANY"}},
	  "actions":{"entityRisk":{"actions":[{"action":"RUN_WORKFLOW","workflow":{"id":111}}]}}}`,
	`{"id":"rulContractors","name":"Contractors, any risk","priority":5,"status":"ACTIVE","type":"ENTITY_RISK",
	  "conditions":{"entityRisk":{"level":"ANY"},"people":{"groups":{"include":["00gContractors"]}}},
	  "actions":{"entityRisk":{"actions":[{"action":"RUN_WORKFLOW","workflow":{"id":222}}]}}}`,
}

var simUsers = []flowsim.User{
	{ID: "00uVIP", Groups: []string{"00gEveryone", "00gVIP"}},
	{ID: "00uVIPBreak", Groups: []string{"00gVIP", "00gBreakGlass"}},
	{ID: "00uSvc", Groups: []string{}},
	{ID: "00uContractor", Groups: []string{"00gContractors"}},
	{ID: "00uSvcContractor", Groups: []string{"00gContractors", "00gVIP", "00gBreakGlass"}},
	{ID: "00uPlain", Groups: []string{"00gEveryone"}},
}

const simClientID = "0oaPolicyImport"

// simOrg serves the simulated org over real HTTP and returns it with a client of its app.
func simOrg(t *testing.T, rules []string, scopes ...string) (*flowsim.Simulator, *okta.Client) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	key, err := okta.ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "kid-import")
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := key.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := flowsim.ParseJWKS(jwk)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]json.RawMessage, len(rules))
	for i, r := range rules {
		raw[i] = json.RawMessage(r)
	}
	sim, err := flowsim.New(flowsim.Config{Org: &flowsim.OrgConfig{
		Clients:         []flowsim.OAuthClient{{ID: simClientID, Keys: keys, Scopes: scopes}},
		Users:           simUsers,
		Groups:          []flowsim.Group{{ID: "00gEveryone"}, {ID: "00gVIP"}, {ID: "00gBreakGlass"}, {ID: "00gContractors"}},
		EntityRiskRules: raw,
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	oc, err := okta.New(okta.Config{OrgURL: srv.URL, ClientID: simClientID, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return sim, oc
}

// importConfig has a flow for each of the org's workflows and the native clearSessions flow.
// It is built in code and not validated: the native flow (no URL) is validated by the
// native-actions work.
func importConfig() *config.Config {
	wf := func(name string, id int64) config.Flow {
		return config.Flow{Name: name, URL: "https://acme.workflows.okta.com/api/flo/" + name + "/invoke", ClientToken: config.Secret{Env: "T"}, WorkflowID: id}
	}
	return &config.Config{Flows: []config.Flow{
		wf("vip-flow", 572749), wf("contractor-flow", 222), wf("old-flow", 111),
		{Name: "clear", Action: config.FlowActionClearSessions},
	}}
}

// TestImportedPolicyDecidesAsTheOrg is issue 10's acceptance: `policy import` of the
// simulator's policy yields rules whose verdicts equal the simulator's own evaluation, for a
// table of users and risk events, with the groups looked up in the org over HTTP.
func TestImportedPolicyDecidesAsTheOrg(t *testing.T) {
	t.Parallel()
	sim, oc := simOrg(t, simOrgRules, okta.ScopePoliciesRead, okta.ScopeUsersRead)
	_, rules, err := oc.EntityRiskRules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := importConfig()
	im, err := policy.ImportOktaRules(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	if p := im.Problems(); len(p) > 0 {
		t.Fatalf("import problems: %v", p)
	}
	if len(im.Rules) != 5 || len(im.Skipped) != 1 {
		t.Fatalf("imported %d rules, skipped %v; want 5 and the catch-all", len(im.Rules), im.Skipped)
	}
	cfg.RiskRules = im.RiskRules()
	cfg.SetDefaults()
	gc, err := okta.NewGroupCache(oc, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r := policy.New(cfg, policy.WithGroupLookup(gc))
	flowFor := map[int64]string{572749: "vip-flow", 222: "contractor-flow", 111: "old-flow"}

	cases := 0
	for _, u := range simUsers {
		for _, level := range []string{"HIGH", "MEDIUM", "LOW", "NONE"} {
			for _, det := range []string{"USER_REPORTED_SUSPICIOUS_ACTIVITY", "ADMIN_REPORTED_USER_RISK", "BRUTE_FORCE_ATTACK"} {
				cases++
				name := fmt.Sprintf("%s %s %s", u.ID, level, det)
				want, err := sim.EvaluateEntityRisk(u.ID, level, det)
				if err != nil {
					t.Fatal(err)
				}
				ev := riskEvent(event.RiskTrigger{UserID: u.ID, RiskLevel: level, DetectionType: det})

				// What runs: the org's action against remediator's decision.
				dec, rerr := r.RouteContext(t.Context(), ev)
				var unrouted *policy.UnroutedError
				switch {
				case want.Action == "" && want.Priority == 99: // the catch-all: logged only
					if !errors.As(rerr, &unrouted) || unrouted.Rule != "" {
						t.Errorf("%s: org logs only (catch-all); remediator: %v, %v", name, dec, rerr)
					}
				case want.Action == "": // a log-only custom rule
					if !errors.As(rerr, &unrouted) || unrouted.Rule != want.RuleName {
						t.Errorf("%s: org logs only at rule %q; remediator: %v, %v", name, want.RuleName, dec, rerr)
					}
				default:
					wantFlow := "clear"
					if want.Action == config.RiskActionRunWorkflow {
						wantFlow = flowFor[want.WorkflowID]
					}
					if rerr != nil || len(dec) != 1 || dec[0].Rule != want.RuleName || dec[0].Flow != wantFlow {
						t.Errorf("%s: org runs %s (%d) at rule %q; remediator: %v, %v", name, want.Action, want.WorkflowID, want.RuleName, dec, rerr)
					}
				}

				// What explain says: the matching step and its action.
				var matched *policy.Step
				steps := r.ExplainContext(t.Context(), ev)
				for i := range steps {
					if steps[i].Match {
						matched = &steps[i]
						break
					}
				}
				wantAction := want.Action
				if wantAction == "" {
					wantAction = config.RiskActionNone
				}
				switch {
				case matched == nil:
					t.Errorf("%s: explain matched no step", name)
				case want.Priority == 99:
					if matched.Kind != policy.StepDefaultRule {
						t.Errorf("%s: explain matched %q, the org its catch-all", name, matched.Name)
					}
				case matched.Name != want.RuleName || matched.Action != wantAction:
					t.Errorf("%s: explain matched %q (%s), the org %q (%s)", name, matched.Name, matched.Action, want.RuleName, wantAction)
				}
			}
		}
	}
	if cases != 72 {
		t.Fatalf("%d cases", cases)
	}
}

func TestImportRefusesWhatCannotBeMapped(t *testing.T) {
	t.Parallel()
	rules := []json.RawMessage{
		json.RawMessage(`{"id":"rul1","name":"Unknown workflow","priority":1,"status":"ACTIVE","conditions":{"entityRisk":{"level":"HIGH"}},
		  "actions":{"entityRisk":{"actions":[{"action":"RUN_WORKFLOW","workflow":{"id":999}}]}}}`),
		json.RawMessage(`{"id":"rul2","name":"Terminate","priority":0,"status":"ACTIVE",
		  "actions":{"entityRisk":{"actions":[{"action":"TERMINATE_ALL_SESSIONS"}]}}}`),
		json.RawMessage(`{"id":"rulDefault","name":"Catch-all rule","priority":99,"system":true,"actions":{"entityRisk":{"actions":[]}}}`),
	}
	cfg := &config.Config{Flows: []config.Flow{{Name: "wf", URL: "https://x/wf/invoke"}}}
	im, err := policy.ImportOktaRules(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Join(im.Problems(), "\n")
	for _, want := range []string{`rule "Unknown workflow" (rul1): runs Okta workflow 999`, "set workflowId: 999", `rule "Terminate" (rul2): TERMINATE_ALL_SESSIONS needs a flow with action: clearSessions`} {
		if !strings.Contains(p, want) {
			t.Errorf("problems %q lack %q", p, want)
		}
	}
	if im.Rules[1].Rule.Priority != 2 {
		t.Errorf("a rule with priority 0 after one at 1 got priority %d, want 2 (Okta's order kept)", im.Rules[1].Rule.Priority)
	}
	if len(im.Skipped) != 1 {
		t.Errorf("skipped %v, want the catch-all", im.Skipped)
	}
}

func TestDiffRiskRules(t *testing.T) {
	t.Parallel()
	_, oc := simOrg(t, simOrgRules, okta.ScopePoliciesRead)
	_, rules, err := oc.EntityRiskRules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := importConfig()
	org, err := policy.ImportOktaRules(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RiskRules = org.RiskRules()
	cfg.SetDefaults()
	if d := policy.DiffRiskRules(cfg, org); len(d) != 0 {
		t.Fatalf("the imported policy differs from the org: %+v", d)
	}
	// Drift: a level changed, a flow changed, a rule added, a rule removed.
	cfg.RiskRules[0].Conditions.Level = "MEDIUM"
	cfg.RiskRules[4].Flow = "old-flow"
	cfg.RiskRules = append(cfg.RiskRules[:3], cfg.RiskRules[4], config.RiskRule{Name: "Local only", Priority: 7, Status: "ACTIVE", Action: "NONE", Conditions: config.RiskConditions{Level: "LOW"}})
	got := map[string]policy.RuleDiff{}
	for _, d := range policy.DiffRiskRules(cfg, org) {
		got[d.Rule] = d
	}
	if d := got["VIP high risk"]; len(d.Fields) != 1 || d.Fields[0] != (policy.FieldDiff{Field: "conditions.level", Config: "MEDIUM", Okta: "HIGH"}) {
		t.Errorf("VIP high risk: %+v", d)
	}
	if d := got["Contractors, any risk"]; len(d.Fields) != 1 || d.Fields[0] != (policy.FieldDiff{Field: "flow", Config: "old-flow", Okta: "contractor-flow"}) {
		t.Errorf("Contractors: %+v", d)
	}
	if got["Local only"].Only != "configuration" || got["Switched off"].Only != "okta" || len(got) != 4 {
		t.Errorf("diff %+v", got)
	}
}
