package telemetry_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/remediator/remediator/telemetry"
)

func TestSecretKey(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"token", "client_token", "clientToken", "X-Api-Client-Token", "Authorization", "authorization",
		"password", "db.password", "secret", "client-secret", "private_key", "privateKey", "api_key", "Cookie", "credentials"} {
		if !telemetry.SecretKey(k) {
			t.Errorf("SecretKey(%q) = false, want true", k)
		}
	}
	for _, k := range []string{"event_id", "flow", "idempotency_key", "trace_id", "subject", "headers", "outcome", "error", "attempt", "execution_id"} {
		if telemetry.SecretKey(k) {
			t.Errorf("SecretKey(%q) = true, want false", k)
		}
	}
}

func TestRedactHandler(t *testing.T) {
	t.Parallel()
	const secret = "tok-SECRET-8c1f"
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(telemetry.RedactHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	ctx, _ := newSpan(t)

	log.With("client_token", secret).InfoContext(ctx, "with attrs")
	log.DebugContext(ctx, "plain", "token", secret, "Authorization", "Bearer "+secret, "flow", "suspend", "event_id", "e1")
	log.WithGroup("req").InfoContext(ctx, "group", slog.Group("auth", slog.String("password", secret), slog.String("user", "ann")))
	log.InfoContext(ctx, "headers",
		slog.Any("headers", http.Header{"X-Api-Client-Token": {secret}, "Traceparent": {"00-x"}}),
		slog.Any("nats_headers", map[string][]string{"authorization": {secret}}),
		slog.Any("env", map[string]string{"OKTA_FLOW_TOKEN": secret, "HOME": "/root"}),
		slog.Any("private_key", "-----BEGIN PRIVATE KEY-----"+secret),
		slog.Any("login", lazySecret{}))

	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("a secret was logged:\n%s", out)
	}
	for _, want := range []string{`"client_token":"[REDACTED]"`, `"token":"[REDACTED]"`, `"Authorization":"[REDACTED]"`,
		`"flow":"suspend"`, `"event_id":"e1"`, `"password":"[REDACTED]"`, `"user":"ann"`,
		`"X-Api-Client-Token":["[REDACTED]"]`, `"Traceparent":["00-x"]`, `"authorization":["[REDACTED]"]`,
		`"OKTA_FLOW_TOKEN":"[REDACTED]"`, `"HOME":"/root"`, `"private_key":"[REDACTED]"`, `"login":{"token":"[REDACTED]","user":"ann"}`, `"trace_id":"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("%d lines, want 4 (debug level on)", n)
	}
}

// lazySecret resolves to a group holding a secret only when logged.
type lazySecret struct{}

func (lazySecret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token", "tok-SECRET-8c1f"), slog.String("user", "ann"))
}
