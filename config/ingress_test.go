package config_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestIngressDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Parse(nil, "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := c.Ingress
	if in.Addr != "127.0.0.1:8081" || !in.Enabled() {
		t.Errorf("ingress.addr = %q, want 127.0.0.1:8081", in.Addr)
	}
	if in.Okta.Secrets[0].Env != config.EnvOktaHookSecret || in.ISPM.Keys[0].Env != config.EnvISPMWebhookKey || in.Tokens[0].Env != config.EnvIngressToken {
		t.Errorf("secret refs = %+v %+v %+v, want the three REMEDIATOR_* variables", in.Okta.Secrets, in.ISPM.Keys, in.Tokens)
	}
	if in.ISPM.Header != "X-API-Key" || in.ISPM.QueryParam != "" {
		t.Errorf("ispm header, queryParam = %q, %q", in.ISPM.Header, in.ISPM.QueryParam)
	}
	if in.Okta.MaxBatchBytes != 4<<20 || in.PublishTimeout.Seconds() != 2 {
		t.Errorf("maxBatchBytes, publishTimeout = %d, %s", in.Okta.MaxBatchBytes, in.PublishTimeout)
	}
}

func TestIngressValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc, want string }{
		{"bad addr", "ingress: {addr: nowhere}", "ingress.addr"},
		{"half tls", "ingress: {tls: {certFile: c.pem}}", "ingress.tls"},
		{"secret with env and file", "ingress: {okta: {secrets: [{env: A, file: b}]}}", "ingress.okta.secrets[0]: needs exactly one of env or file"},
		{"key with neither", "ingress: {ispm: {keys: [{}]}}", "ingress.ispm.keys[0]"},
		{"rule principal", "ingress: {tokens: [{env: T, principal: 'rule:x'}]}", "ingress.tokens[0].principal"},
		{"bad header", "ingress: {ispm: {header: 'X Key'}}", "ingress.ispm.header"},
		{"slow publish", "ingress: {publishTimeout: 3s}", "ingress.publishTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.doc), "x.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%s) = %v, want an error naming %q", tt.doc, err, tt.want)
			}
		})
	}
	if _, err := config.Parse([]byte("ingress: {addr: 'off', okta: {secrets: [{}]}}"), "x.yaml"); err != nil {
		t.Errorf("an ingress that is off is not validated further: %v", err)
	}
}

func TestResolveIngressSecrets(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte(`
ingress:
  okta: {secrets: [{env: OLD}, {env: NEW}]}
  ispm: {keys: [{file: /run/secrets/ispm}]}
  tokens: [{env: DETECTOR_A, principal: detector-a}]
`), "prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := func(p string) ([]byte, error) {
		if p == "/run/secrets/ispm" {
			return []byte("ispm-key\n"), nil
		}
		return nil, os.ErrNotExist
	}

	t.Run("all set", func(t *testing.T) {
		s, err := c.ResolveIngressSecrets(false, env(map[string]string{"OLD": "o", "NEW": "n", "DETECTOR_A": "tok"}), files)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(s.OktaSecrets, ",") != "o,n" || s.ISPMKeys[0] != "ispm-key" || s.Tokens[0] != (config.ResolvedToken{Value: "tok", Principal: "detector-a"}) || len(s.Generated) != 0 {
			t.Errorf("resolved %+v", s)
		}
	})
	t.Run("production refuses an unset one, naming it", func(t *testing.T) {
		_, err := c.ResolveIngressSecrets(false, env(map[string]string{"OLD": "o", "DETECTOR_A": "tok"}), files)
		if !errors.Is(err, config.ErrIngressSecretUnset) || !strings.Contains(err.Error(), "ingress.okta.secrets[1]") || !strings.Contains(err.Error(), "NEW") {
			t.Fatalf("err = %v, want ErrIngressSecretUnset naming ingress.okta.secrets[1] and NEW", err)
		}
		if strings.Contains(err.Error(), "tok") {
			t.Errorf("the error shows a secret value: %v", err)
		}
	})
	t.Run("a missing file is an error even in dev", func(t *testing.T) {
		_, err := c.ResolveIngressSecrets(true, env(nil), func(string) ([]byte, error) { return nil, os.ErrNotExist })
		if err == nil || !strings.Contains(err.Error(), "ingress.ispm.keys[0]") {
			t.Fatalf("err = %v, want one naming ingress.ispm.keys[0]", err)
		}
	})
}

func TestResolveIngressSecretsGeneratesInDev(t *testing.T) {
	t.Parallel()
	c, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.ResolveIngressSecrets(true, env(map[string]string{config.EnvIngressToken: "given"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Generated) != 2 || s.Tokens[0].Value != "given" {
		t.Fatalf("generated %+v, tokens %+v: want the Okta secret and the ISPM key generated, the token taken", s.Generated, s.Tokens)
	}
	if s.OktaSecrets[0] == s.ISPMKeys[0] || len(s.OktaSecrets[0]) < 40 {
		t.Errorf("generated secrets %q, %q: want distinct, long random values", s.OktaSecrets[0], s.ISPMKeys[0])
	}
	var out strings.Builder
	if err := s.Announce(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{config.EnvOktaHookSecret, s.OktaSecrets[0], config.EnvISPMWebhookKey} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("announcement %q does not contain %q", out.String(), want)
		}
	}
	if strings.Contains(out.String(), "given") {
		t.Errorf("the announcement prints a secret that was not generated")
	}
}
