package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

// TestCheckSecrets: every secret reference is checked at start, and a missing one is refused
// naming the flow (or key) and the variable or file (issue 11, defect 10), never its value.
func TestCheckSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	emptyFile := filepath.Join(dir, "empty")
	for path, content := range map[string]string{tokenFile: "file-secret\n", emptyFile: " \n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"SET_TOKEN": "env-secret", "BLANK_TOKEN": "  ", "NATS_PASSWORD": "pw"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	flow := func(secret string) string {
		return "flows:\n  - {name: suspend, url: https://x/invoke, clientToken: " + secret + "}\n"
	}
	tests := []struct {
		name, doc string
		want      string // "" when accepted
	}{
		{"env set", flow("{env: SET_TOKEN}"), ""},
		{"file present", flow("{file: " + tokenFile + "}"), ""},
		{"env unset", flow("{env: OKTA_FLOW_SUSPEND_TOKEN}"), "flows[0] (suspend): clientToken.env: environment variable OKTA_FLOW_SUSPEND_TOKEN is not set; flow \"suspend\""},
		{"env blank", flow("{env: BLANK_TOKEN}"), "flows[0] (suspend): clientToken.env: environment variable BLANK_TOKEN is empty"},
		{"file missing", flow("{file: " + filepath.Join(dir, "nope") + "}"), "flows[0] (suspend): clientToken.file: file " + filepath.Join(dir, "nope") + " does not exist"},
		{"file empty", flow("{file: " + emptyFile + "}"), "flows[0] (suspend): clientToken.file: file " + emptyFile + " is empty"},
		{"nats password set", "nats: {user: u, passwordEnv: NATS_PASSWORD}\n", ""},
		{"nats password unset", "nats: {user: u, passwordEnv: NATS_PW_MISSING}\n", "nats.passwordEnv: environment variable NATS_PW_MISSING is not set"},
		{"nats creds missing", "nats: {credsFile: " + filepath.Join(dir, "x.creds") + "}\n", "nats.credsFile: file " + filepath.Join(dir, "x.creds") + " does not exist"},
		{"nats TLS CA missing", "nats: {tlsCAFile: " + filepath.Join(dir, "ca.pem") + "}\n", "nats.tlsCAFile: file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tt.doc), "remediator.yaml")
			if err != nil {
				t.Fatalf("Parse: %v (the reference is syntactically fine; only CheckSecrets may refuse it)", err)
			}
			err = c.CheckSecrets(lookup)
			if tt.want == "" {
				if err != nil {
					t.Errorf("CheckSecrets = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "remediator.yaml: "+tt.want) {
				t.Errorf("CheckSecrets = %v; want it to say %q", err, "remediator.yaml: "+tt.want)
			}
			for _, secret := range []string{"env-secret", "file-secret", "pw"} {
				if err != nil && strings.Contains(err.Error(), secret+"\n") {
					t.Errorf("CheckSecrets error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestCheckSecretsReportsEveryFlow: all missing references are reported at once.
func TestCheckSecretsReportsEveryFlow(t *testing.T) {
	t.Parallel()
	c, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckSecrets(func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatal("CheckSecrets accepted four flows whose token variable is unset")
	}
	if n := len(strings.Split(err.Error(), "\n")); n != len(c.Flows) {
		t.Errorf("CheckSecrets reports %d problems, want one per flow (%d):\n%v", n, len(c.Flows), err)
	}
}
