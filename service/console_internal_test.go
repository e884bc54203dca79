package service

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

// The console is never open: a production configuration without a token or OIDC gets none;
// the built-in one gets a generated token, shown once; a set token is used and not shown.
func TestResolveConsoleNeverOpen(t *testing.T) {
	t.Parallel()
	noEnv := func(string) (string, bool) { return "", false }
	prod, err := config.Parse([]byte("{}\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := resolveConsole(prod, noEnv, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || !a.off {
		t.Errorf("production without a token: %+v, %v; want the console off", a, err)
	}
	if !strings.Contains(logs.String(), "ops console off") {
		t.Errorf("the log does not say why the console is off: %s", logs.String())
	}

	dev, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	dev.SetDefaults()
	a, err = resolveConsole(dev, noEnv, slog.New(slog.DiscardHandler))
	if err != nil || a.off || !a.generated || a.token == "" {
		t.Fatalf("built-in without a token: %+v, %v; want a generated one", a, err)
	}
	var out bytes.Buffer
	if err := a.announce(&out, "127.0.0.1:8080"); err != nil || !strings.Contains(out.String(), a.token) || !strings.Contains(out.String(), "http://127.0.0.1:8080/ui/") {
		t.Errorf("announce = %q, %v", out.String(), err)
	}

	withToken := func(k string) (string, bool) { return "set-token", k == config.DefaultConsoleTokenEnv }
	a, err = resolveConsole(dev, withToken, slog.New(slog.DiscardHandler))
	out.Reset()
	if err != nil || a.token != "set-token" || a.generated {
		t.Errorf("set token: %+v, %v", a, err)
	}
	if _ = a.announce(&out, "x"); out.Len() != 0 {
		t.Errorf("a token from the environment is printed: %q", out.String())
	}

	off := false
	dev.HTTP.Console = &off
	if a, _ := resolveConsole(dev, withToken, slog.New(slog.DiscardHandler)); !a.off {
		t.Error("http.console: false still serves the console")
	}
}
