package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remediator/remediator/flowsim"
)

// TestPolicyImportAndDiff: `policy import` prints the simulated org's ENTITY_RISK rules as an
// entityRiskPolicy block; a configuration holding it agrees with the org (`policy diff` exits
// 0); a changed level is reported, and `policy diff` exits 1.
func TestPolicyImportAndDiff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile, keys := keygen(t, dir, "app.pem")
	rules := []json.RawMessage{
		json.RawMessage(`{"id":"rulVIP","name":"VIP high risk","priority":1,"status":"ACTIVE","type":"ENTITY_RISK",
		  "conditions":{"entityRisk":{"level":"HIGH"},"people":{"groups":{"include":["00gVIP"],"exclude":["00gBreakGlass"]}}},
		  "actions":{"entityRisk":{"actions":[{"action":"RUN_WORKFLOW","workflow":{"id":572749}}]}}}`),
		json.RawMessage(`{"id":"rulLog","name":"Medium logged","priority":2,"status":"ACTIVE","type":"ENTITY_RISK",
		  "conditions":{"entityRisk":{"level":"MEDIUM"},"riskDetectionTypes":{"exclude":["ADMIN_REPORTED_USER_RISK"]}},
		  "actions":{"entityRisk":{"actions":[]}}}`),
	}
	sim, err := flowsim.New(flowsim.Config{Org: &flowsim.OrgConfig{
		Clients:         []flowsim.OAuthClient{{ID: cliClientID, Keys: keys, Scopes: []string{"okta.policies.read", "okta.users.read"}}},
		EntityRiskRules: rules,
		Groups:          []flowsim.Group{{ID: "00gVIP"}, {ID: "00gBreakGlass"}},
		Users:           []flowsim.User{{ID: "00uVIP", Groups: []string{"00gVIP"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	base := fmt.Sprintf(`okta:
  orgUrl: %s
  clientId: %s
  keyId: %s
  privateKey: {file: %s}
  scopes: [okta.policies.read, okta.users.read]
flows:
  - {name: vip-flow, url: https://acme.workflows.okta.com/api/flo/vip/invoke, clientToken: {env: T}, workflowId: %%d}
`, srv.URL, cliClientID, cliKeyID, keyFile)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	unmapped := write("unmapped.yaml", fmt.Sprintf(base, 1))
	if code, _, errOut := remediator(t, "policy", "import", "--config", unmapped); code != 1 || !strings.Contains(errOut, "runs Okta workflow 572749") || !strings.Contains(errOut, "workflowId: 572749") {
		t.Fatalf("import with no flow for workflow 572749: exit %d, stderr %q; want 1 naming the workflow id to configure", code, errOut)
	}

	cfgPath := write("remediator.yaml", fmt.Sprintf(base, 572749))
	code, out, errOut := remediator(t, "policy", "import", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("policy import: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"entityRiskPolicy:", "name: VIP high risk", "level: HIGH", "include: [00gVIP]", "exclude: [00gBreakGlass]", "flow: vip-flow", "name: Medium logged", "exclude: [ADMIN_REPORTED_USER_RISK]", "Left out: \"Catch-all rule\""} {
		if !strings.Contains(out, want) {
			t.Errorf("policy import printed\n%s\nwithout %q", out, want)
		}
	}

	agreeing := write("agreeing.yaml", fmt.Sprintf(base, 572749)+out)
	if code, out, errOut := remediator(t, "policy", "diff", "--config", agreeing); code != 0 || !strings.Contains(out, "agree") {
		t.Errorf("policy diff of the imported policy: exit %d, %q %q; want 0, agree", code, out, errOut)
	}
	drifted := write("drifted.yaml", fmt.Sprintf(base, 572749)+strings.Replace(out, "level: MEDIUM", "level: LOW", 1))
	code, out, errOut = remediator(t, "policy", "diff", "--config", drifted)
	if code != 1 || !strings.Contains(out, "Medium logged") || !strings.Contains(out, "conditions.level") || !strings.Contains(errOut, "disagree on 1 rules") {
		t.Errorf("policy diff after a change: exit %d, stdout %q, stderr %q; want 1 naming the rule and field", code, out, errOut)
	}

	// explain --lookup-groups decides the VIP rule on the org's groups; without it, the
	// LogEvent carries none.
	logEvent := write("vip.json", `{"uuid":"3c1e0f5a-0000-4000-8000-000000000001","published":"2026-03-02T09:15:27.412Z","eventType":"user.risk.detect","version":"0",
	  "target":[{"id":"00uVIP","type":"User","alternateId":"vip@example.com"}],
	  "debugContext":{"debugData":{"risk":"{level=HIGH, detectionName=User reported suspicious activity, issuer=OKTA}"}}}`)
	code, out, errOut = remediator(t, "policy", "explain", "--config", agreeing, "--lookup-groups", logEvent)
	if line := lineOf(out, "  1 "); code != 0 || !strings.Contains(line, "VIP high risk") || !strings.Contains(line, "MATCH") || !strings.Contains(line, "[action RUN_WORKFLOW]") {
		t.Errorf("explain --lookup-groups: exit %d\n%s%s\nwant the VIP rule matched on the org's groups", code, out, errOut)
	}
	code, out, _ = remediator(t, "policy", "explain", "--config", agreeing, logEvent)
	if code != 0 || !strings.Contains(out, "no group membership") {
		t.Errorf("explain without look-ups: exit %d\n%s\nwant the missing membership said", code, out)
	}
}
