package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

func TestConsoleConfigRejects(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ doc, problem string }{
		"window too long":     {"console: {window: 48h}\n", "console.window: 48h0m0s must be between 1m and 24h"},
		"short session":       {"console: {sessionTtl: 10s}\n", "console.sessionTtl: 10s is below a minute"},
		"token env and file":  {"console: {token: {env: A, file: /b}}\n", "console.token: needs exactly one of env or file"},
		"oidc without client": {"console: {oidc: {issuer: https://example.okta.com, redirectUrl: https://r.example.com/ui/auth/callback}}\n", "console.oidc.clientId: is empty"},
		"oidc plain http":     {"console: {oidc: {issuer: http://example.okta.com, clientId: c, redirectUrl: https://r.example.com/ui/auth/callback}}\n", "must be an https URL"},
		"oidc wrong callback": {"console: {oidc: {issuer: https://example.okta.com, clientId: c, redirectUrl: https://r.example.com/cb}}\n", "must end in /ui/auth/callback"},
		"jaeger not a URL":    {"ui: {jaegerUrl: 'jaeger:16686'}\n", "ui.jaegerUrl"},
		"empty principal":     {"console: {principal: ' '}\n", "console.principal: is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tc.doc), "remediator.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.problem) {
				t.Errorf("Parse = %v, want %q", err, tc.problem)
			}
		})
	}
	// Off, the console's keys are not checked.
	if _, err := config.Parse([]byte("http: {console: false}\nconsole: {window: 48h}\n"), "remediator.yaml"); err != nil {
		t.Errorf("console off: %v", err)
	}
}

func TestResolveConsoleToken(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte("{}\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, _, err := c.ResolveConsoleToken(false, getenv, nil); !errors.Is(err, config.ErrConsoleTokenUnset) || !strings.Contains(err.Error(), "REMEDIATOR_CONSOLE_TOKEN") {
		t.Errorf("unset, production: %v", err)
	}
	tok, generated, err := c.ResolveConsoleToken(true, getenv, nil)
	if err != nil || !generated || len(tok) < 40 {
		t.Errorf("unset, built-in: %q %v %v", tok, generated, err)
	}
	env["REMEDIATOR_CONSOLE_TOKEN"] = " set-token "
	if tok, generated, err := c.ResolveConsoleToken(true, getenv, nil); tok != "set-token" || generated || err != nil {
		t.Errorf("set: %q %v %v", tok, generated, err)
	}
}
