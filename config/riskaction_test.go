package config_test

import (
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

func TestRiskRuleActions(t *testing.T) {
	t.Parallel()
	base := "flows:\n  - {name: wf, url: https://x/wf/invoke, clientToken: {env: T}}\nentityRiskPolicy:\n"
	cases := []struct {
		name, rules string
		wantErr     string // "" = valid
		wantAction  string
	}{
		{"flow means RUN_WORKFLOW", "  - {name: r, priority: 1, flow: wf}\n", "", "RUN_WORKFLOW"},
		{"no flow means NONE", "  - {name: r, priority: 1}\n", "", "NONE"},
		{"case-insensitive", "  - {name: r, priority: 1, action: run_workflow, flow: wf}\n", "", "RUN_WORKFLOW"},
		{"RUN_WORKFLOW needs a flow", "  - {name: r, priority: 1, action: RUN_WORKFLOW}\n", "RUN_WORKFLOW needs flow:", ""},
		{"NONE with a flow", "  - {name: r, priority: 1, action: NONE, flow: wf}\n", "remove flow, or set action: RUN_WORKFLOW", ""},
		{"TERMINATE_ALL_SESSIONS with a flow", "  - {name: r, priority: 1, action: TERMINATE_ALL_SESSIONS, flow: wf}\n", "", "TERMINATE_ALL_SESSIONS"},
		{"TERMINATE_ALL_SESSIONS without a clearSessions flow", "  - {name: r, priority: 1, action: TERMINATE_ALL_SESSIONS}\n", "add one under flows with action: clearSessions", ""},
		{"unknown action", "  - {name: r, priority: 1, action: SUSPEND, flow: wf}\n", `"SUSPEND" is not RUN_WORKFLOW, TERMINATE_ALL_SESSIONS or NONE`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(base+c.rules), "remediator.yaml")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), "entityRiskPolicy[0] (r).action") {
					t.Fatalf("error %v, want one at entityRiskPolicy[0] (r).action containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.RiskRules[0].Action; got != c.wantAction {
				t.Errorf("action %q, want %q", got, c.wantAction)
			}
		})
	}
}

func TestRuleFlowTerminateAllSessions(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Flows: []config.Flow{{Name: "wf"}, {Name: "clear", Action: "clearSessions"}}}
	r := config.RiskRule{Name: "r", Priority: 1, Action: config.RiskActionTerminateAllSessions}
	if got := cfg.RuleFlow(r); got != "clear" {
		t.Errorf("RuleFlow = %q, want the clearSessions flow", got)
	}
	r.Flow = "wf"
	if got := cfg.RuleFlow(r); got != "wf" {
		t.Errorf("RuleFlow with flow = %q, want wf", got)
	}
	if got := cfg.RuleFlow(config.RiskRule{Action: config.RiskActionNone}); got != "" {
		t.Errorf("NONE: RuleFlow = %q, want none", got)
	}
}

func TestBackfillConfig(t *testing.T) {
	t.Parallel()
	okta := "okta: {orgUrl: https://acme.okta.com, clientId: c, privateKey: {env: K}"
	cases := []struct{ name, yaml, wantErr string }{
		{"defaults", okta + ", systemLog: {backfill: {enabled: true}}}\n", ""},
		{"without okta", "okta: {systemLog: {backfill: {enabled: true}}}\n", "okta.systemLog.backfill.enabled: needs the okta block"},
		{"lookback beyond maxAge", "streams: {maxAge: 24h}\n" + okta + ", systemLog: {backfill: {enabled: true, lookback: 48h}}}\n", "okta.systemLog.backfill.lookback: 48h0m0s is longer than streams.maxAge"},
		{"page size", okta + ", systemLog: {backfill: {enabled: true, pageSize: 5000}}}\n", "okta.systemLog.backfill.pageSize: 5000 must be 1 to 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(c.yaml), "remediator.yaml")
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				b := cfg.Okta.SystemLog.Backfill
				if b.Interval != config.DefaultBackfillInterval || b.Filter != config.DefaultBackfillFilter || b.Lookback != config.DefaultBackfillLookback {
					t.Errorf("defaults not set: %+v", b)
				}
				if s := strings.Join(cfg.OktaScopes(), " "); !strings.Contains(s, "okta.logs.read") {
					t.Errorf("scopes %q lack okta.logs.read", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestFlowWorkflowIDsAreUnique(t *testing.T) {
	t.Parallel()
	_, err := config.Parse([]byte("flows:\n  - {name: a, url: https://x/a/invoke, clientToken: {env: T}, workflowId: 7}\n  - {name: b, url: https://x/b/invoke, clientToken: {env: T}, workflowId: 7}\n"), "remediator.yaml")
	if err == nil || !strings.Contains(err.Error(), `flows[1] (b).workflowId: 7 is also flow "a"'s`) {
		t.Errorf("error %v, want the duplicate workflow id named", err)
	}
}

// A rule assembled in code after the defaults were applied has no action: it takes the
// default its flow implies, as a parsed one does.
func TestRuleWithoutActionInCode(t *testing.T) {
	t.Parallel()
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.RiskRules = append(cfg.RiskRules,
		config.RiskRule{Name: "log", Priority: 10, Status: "ACTIVE", Conditions: config.RiskConditions{Level: "LOW"}},
		config.RiskRule{Name: "run", Priority: 11, Status: "ACTIVE", Conditions: config.RiskConditions{Level: "LOW"}, Flow: "notify-slack"})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := len(cfg.RiskRules)
	if a, b := cfg.RiskRules[n-2].EffectiveAction(), cfg.RiskRules[n-1].EffectiveAction(); a != "NONE" || b != "RUN_WORKFLOW" {
		t.Errorf("effective actions %s, %s; want NONE, RUN_WORKFLOW", a, b)
	}
}
