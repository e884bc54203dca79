package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/remediator/remediator/flowsim"
)

const (
	cliClientID = "0oa-cli-test"
	cliKeyID    = "kid-cli-test"
)

// keygen makes a key with `remediator okta keygen` and returns its file and public JWK.
func keygen(t *testing.T, dir, name string) (string, []jose.JSONWebKey) {
	t.Helper()
	path := filepath.Join(dir, name)
	code, out, errOut := remediator(t, "okta", "keygen", "--out", path, "--key-id", cliKeyID)
	if code != 0 {
		t.Fatalf("okta keygen: exit %d: %s", code, errOut)
	}
	keys, err := flowsim.ParseJWKS([]byte(out))
	if err != nil || len(keys) != 1 || keys[0].KeyID != cliKeyID {
		t.Fatalf("okta keygen printed %q (%v); want one public JWK with kid %s", out, err, cliKeyID)
	}
	return path, keys
}

// orgWith serves a simulated org whose app has the public keys and granted scopes given, and
// one flow secured with OAuth 2.0, and writes a configuration for it using keyFile.
func orgWith(t *testing.T, dir, keyFile string, keys []jose.JSONWebKey, granted ...string) string {
	t.Helper()
	sim, err := flowsim.New(flowsim.Config{
		Flows: []flowsim.Flow{{Alias: "suspend", OAuth: true}},
		Org:   &flowsim.OrgConfig{Clients: []flowsim.OAuthClient{{ID: cliClientID, Keys: keys, Scopes: granted}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	cfg := fmt.Sprintf(`okta:
  orgUrl: %[1]s
  clientId: %[2]s
  keyId: %[3]s
  privateKey: {file: %[4]s}
  scopes: [okta.logs.read, okta.policies.read, okta.users.read, okta.groups.read]
flows:
  - name: suspend
    url: %[1]s/api/flo/suspend/invoke
    auth: oauth2
  - name: legacy
    url: %[1]s/api/flo/legacy/invoke
    clientToken: {env: SOME_TOKEN}
`, srv.URL, cliClientID, cliKeyID, keyFile)
	path := filepath.Join(dir, "remediator.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOktaCheck runs `okta check` against the simulator's org over real HTTP: all OK with the
// app's key; a key Okta does not know fails naming the key id; a scope not granted fails
// naming the scope. Nothing printed is secret.
func TestOktaCheck(t *testing.T) {
	t.Parallel()
	all := []string{"okta.workflows.invoke.manage", "okta.logs.read", "okta.policies.read", "okta.users.read", "okta.groups.read"}

	t.Run("all OK", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		keyFile, keys := keygen(t, dir, "key.pem")
		cfg := orgWith(t, dir, keyFile, keys, all...)
		code, out, errOut := remediator(t, "--config", cfg, "okta", "check")
		if code != 0 {
			t.Fatalf("exit %d, want 0:\n%s\n%s", code, out, errOut)
		}
		for _, want := range []string{
			"OK    token for okta.logs.read\n",
			"OK    okta.logs.read: GET /api/v1/logs?limit=1\n",
			"OK    token for okta.policies.read\n",
			"OK    okta.policies.read: GET /api/v1/policies?type=ENTITY_RISK\n",
			"OK    okta.users.read: GET /api/v1/users?limit=1\n",
			"OK    okta.groups.read: GET /api/v1/groups?limit=1\n",
			"OK    token for okta.workflows.invoke.manage\n",
			"OK    flow suspend: token for okta.workflows.invoke.manage\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "legacy") || strings.Contains(out, "FAIL") {
			t.Errorf("a clientToken flow is not the org's to check, and nothing failed:\n%s", out)
		}
		// The same check under `flows check`.
		if code, out2, _ := remediator(t, "--config", cfg, "flows", "check"); code != 0 || !strings.Contains(out2, "OK    flow suspend") {
			t.Errorf("flows check: exit %d:\n%s", code, out2)
		}
		assertNoSecrets(t, keyFile, out+errOut)
	})

	t.Run("wrong key", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		keyFile, _ := keygen(t, dir, "key.pem")
		_, otherKeys := keygen(t, dir, "other.pem") // Okta has another key under the same id
		cfg := orgWith(t, dir, keyFile, otherKeys, all...)
		code, out, errOut := remediator(t, "--config", cfg, "okta", "check")
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		want := "FAIL  token for okta.logs.read: "
		if !strings.Contains(out, want) || !strings.Contains(lineOf(out, want), `key id "`+cliKeyID+`"`) {
			t.Errorf("output should fail the token naming key id %s:\n%s", cliKeyID, out)
		}
		if strings.Contains(out, "OK    ") {
			t.Errorf("nothing can pass with a key Okta does not know:\n%s", out)
		}
		if !strings.Contains(errOut, "checks failed") {
			t.Errorf("stderr %q, want the count of failed checks", errOut)
		}
		assertNoSecrets(t, keyFile, out+errOut)
	})

	t.Run("missing scope", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		keyFile, keys := keygen(t, dir, "key.pem")
		cfg := orgWith(t, dir, keyFile, keys, "okta.workflows.invoke.manage", "okta.logs.read")
		code, out, _ := remediator(t, "--config", cfg, "okta", "check")
		if code != 1 {
			t.Fatalf("exit %d, want 1:\n%s", code, out)
		}
		l := lineOf(out, "FAIL  token for okta.policies.read: ")
		if !strings.Contains(l, "okta.policies.read") || !strings.Contains(l, "Okta API Scopes") {
			t.Errorf("the failure should name the scope and where to grant it: %q\n%s", l, out)
		}
		if !strings.Contains(out, "OK    okta.logs.read: GET /api/v1/logs?limit=1") || !strings.Contains(out, "OK    flow suspend") {
			t.Errorf("the granted scopes still pass:\n%s", out)
		}
	})
}

// TestOktaKey: `okta key` prints the public JWK of the configured key, the same one keygen
// printed, and no private part.
func TestOktaKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile, keys := keygen(t, dir, "key.pem")
	cfg := orgWith(t, dir, keyFile, keys, "okta.logs.read")
	for _, args := range [][]string{
		{"--config", cfg, "okta", "key"},
		{"okta", "key", "--private-key-file", keyFile, "--key-id", cliKeyID},
	} {
		code, out, errOut := remediator(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var jwk map[string]any
		if err := json.Unmarshal([]byte(out), &jwk); err != nil {
			t.Fatalf("%v: %q is not a JWK: %v", args, out, err)
		}
		if jwk["kid"] != cliKeyID || jwk["alg"] != "ES256" || jwk["use"] != "sig" || jwk["d"] != nil {
			t.Errorf("%v: JWK %v, want the public key with kid, alg ES256 and use sig", args, jwk)
		}
		got, _ := flowsim.ParseJWKS([]byte(out))
		if len(got) != 1 || !got[0].Valid() {
			t.Fatalf("%v: %q", args, out)
		}
		want, _ := json.Marshal(keys[0])
		if have, _ := json.Marshal(got[0]); string(have) != string(want) {
			t.Errorf("%v: printed %s, keygen printed %s", args, have, want)
		}
	}
	if code, _, errOut := remediator(t, "okta", "key"); code == 0 || !strings.Contains(errOut, "has no okta block") {
		t.Errorf("okta key with the built-in configuration: exit %d %q; want an error saying there is no okta block", code, errOut)
	}
	if code, _, errOut := remediator(t, "okta", "keygen", "--out", keyFile, "--key-id", "k"); code == 0 || !strings.Contains(errOut, "never overwritten") {
		t.Errorf("keygen over an existing key: exit %d %q; want a refusal", code, errOut)
	}
}

func lineOf(out, prefix string) string {
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// assertNoSecrets fails when out shows the private key or anything like a token.
func assertNoSecrets(t *testing.T, keyFile, out string) {
	t.Helper()
	pemData, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Join(strings.Split(string(pemData), "\n")[1:3], "")
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, body[:40]) || strings.Contains(out, "eyJ") || strings.Contains(out, "Bearer") {
		t.Errorf("the output shows key material, an assertion or a token:\n%s", out)
	}
}
