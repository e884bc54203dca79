package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/okta"
)

func ecPEM(t *testing.T) []byte {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

const oktaBlock = "okta:\n  orgUrl: https://example.okta.com/\n  clientId: 0oa1\n  keyId: kid-1\n  privateKey: {env: OKTA_KEY}\n"

// TestOktaDefaults: an okta block and flows take their documented defaults, in the config
// package (decision 3), and the scopes needed include the invoke scope only with an oauth2 flow.
func TestOktaDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte(oktaBlock+"  scopes: [okta.logs.read]\nflows:\n"+
		"  - {name: a, url: https://x/invoke, clientToken: {env: T}}\n"+
		"  - {name: b, url: https://x/invoke, auth: oauth2}\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := c.Okta
	if o.OrgURL != "https://example.okta.com" || o.AssertionLifetime != okta.DefaultAssertionLifetime ||
		o.RefreshBefore != okta.DefaultRefreshBefore || o.TokenTimeout != okta.DefaultTokenTimeout {
		t.Errorf("okta defaults: %+v", o)
	}
	if c.Flows[0].Auth != config.FlowAuthClientToken || c.Flows[1].Auth != config.FlowAuthOAuth2 {
		t.Errorf("auth: %q, %q; want clientToken (the default) and oauth2", c.Flows[0].Auth, c.Flows[1].Auth)
	}
	if got, want := c.OktaScopes(), []string{"okta.logs.read", okta.ScopeWorkflowsInvoke}; !slices.Equal(got, want) {
		t.Errorf("OktaScopes = %v, want %v", got, want)
	}
	// Without an oauth2 flow, no invoke scope is needed.
	c2, err := config.Parse([]byte(oktaBlock+"  scopes: [okta.logs.read]\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.OktaScopes(); !slices.Equal(got, []string{"okta.logs.read"}) || c2.NeedsOkta() {
		t.Errorf("OktaScopes = %v, NeedsOkta %v; want only okta.logs.read", got, c2.NeedsOkta())
	}
	if _, err := config.Parse([]byte("okta:\n  orgUrl: http://127.0.0.1:8090\n  clientId: 0oa1\n  privateKey: {file: /k.pem}\n"), "x"); err != nil {
		t.Errorf("a loopback simulator org over http is allowed: %v", err)
	}
}

// TestOktaValidate: each mistake is refused naming its key path.
func TestOktaValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc, want string }{
		{"oauth2 without okta", "flows:\n  - {name: b, url: https://x/invoke, auth: oauth2}\n",
			"flows[0] (b).auth: oauth2 needs the okta block"},
		{"oauth2 with a client token", oktaBlock + "flows:\n  - {name: b, url: https://x/invoke, auth: oauth2, clientToken: {env: T}}\n",
			"flows[0] (b).clientToken: a flow with auth: oauth2 sends a Bearer token"},
		{"clientToken still required by default", "flows:\n  - {name: a, url: https://x/invoke}\n",
			"flows[0] (a): clientToken needs exactly one of env or file"},
		{"unknown auth", "flows:\n  - {name: a, url: https://x/invoke, auth: basic, clientToken: {env: T}}\n",
			`flows[0] (a).auth: "basic" is not clientToken or oauth2`},
		{"block without orgUrl", "okta:\n  clientId: 0oa1\n", "okta.orgUrl: is required"},
		{"custom authorization server", strings.Replace(oktaBlock, "okta.com/", "okta.com/oauth2/default", 1), "okta.orgUrl: \"https://example.okta.com/oauth2/default\" must be the scheme and host only"},
		{"plain http to a real org", strings.Replace(oktaBlock, "https://", "http://", 1), "okta.orgUrl: \"http://example.okta.com\" must use https"},
		{"no client id", strings.Replace(oktaBlock, "clientId: 0oa1", "clientId: ''", 1), "okta.clientId: is required"},
		{"no private key", strings.Replace(oktaBlock, "privateKey: {env: OKTA_KEY}", "privateKey: {}", 1), "okta.privateKey: needs exactly one of env or file"},
		{"both key sources", strings.Replace(oktaBlock, "{env: OKTA_KEY}", "{env: OKTA_KEY, file: /k}", 1), "okta.privateKey: needs exactly one of env or file"},
		{"bad scope", oktaBlock + "  scopes: [users.read]\n", `okta.scopes[0]: "users.read" is not an Okta API scope`},
		{"duplicate scope", oktaBlock + "  scopes: [okta.logs.read, okta.logs.read]\n", `okta.scopes[1]: "okta.logs.read" is listed twice`},
		{"assertion too long", oktaBlock + "  assertionLifetime: 2h\n", "okta.assertionLifetime: 2h0m0s must be above 0 and at most 1h0m0s"},
		{"negative refresh", oktaBlock + "  refreshBefore: -1s\n", "okta.refreshBefore: -1s must be above 0"},
		{"negative timeout", oktaBlock + "  tokenTimeout: -1s\n", "okta.tokenTimeout: -1s must be above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.doc), "remediator.yaml")
			if err == nil || !strings.Contains(err.Error(), "remediator.yaml: "+tt.want) {
				t.Errorf("Parse = %v; want it to say %q", err, "remediator.yaml: "+tt.want)
			}
		})
	}
}

// TestOktaKey: the private key reference is checked like the flows' client tokens, errors
// naming the key path and never the key.
func TestOktaKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyPEM := ecPEM(t)
	keyFile := filepath.Join(dir, "okta.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OKTA_KEY": string(keyPEM), "NOT_A_KEY": "hunter2-not-a-key"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	parse := func(t *testing.T, doc string) *config.Config {
		c, err := config.Parse([]byte(doc), "remediator.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct{ name, doc, want string }{
		{"env", oktaBlock, ""},
		{"file", strings.Replace(oktaBlock, "{env: OKTA_KEY}", "{file: "+keyFile+"}", 1), ""},
		{"env unset", strings.Replace(oktaBlock, "OKTA_KEY", "OKTA_KEY_UNSET", 1), "okta.privateKey.env: environment variable OKTA_KEY_UNSET is not set"},
		{"env not a key", strings.Replace(oktaBlock, "OKTA_KEY", "NOT_A_KEY", 1), "okta.privateKey.env: private key in NOT_A_KEY: private key is neither PEM"},
		{"file missing", strings.Replace(oktaBlock, "{env: OKTA_KEY}", "{file: "+dir+"/nope.pem}", 1), "okta.privateKey.file: file " + dir + "/nope.pem does not exist"},
		{"no key id for PEM", strings.Replace(oktaBlock, "  keyId: kid-1\n", "", 1), "okta.privateKey.env: private key in OKTA_KEY: private key has no key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := parse(t, tt.doc).OktaKey(lookup)
			if tt.want == "" {
				if err != nil || k == nil || k.ID() != "kid-1" || k.Algorithm() != "ES256" {
					t.Fatalf("OktaKey = %v, %v; want key kid-1 ES256", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "remediator.yaml: "+tt.want) {
				t.Fatalf("OktaKey = %v; want it to say %q", err, "remediator.yaml: "+tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Errorf("the error quotes the key material: %v", err)
			}
		})
	}
	if k, err := parse(t, "").OktaKey(lookup); k != nil || err != nil {
		t.Errorf("no okta block: OktaKey = %v, %v; want nil, nil", k, err)
	}
}

// TestOktaDefaultsMatchREADME: the okta block's defaults are the ones its README section
// documents.
func TestOktaDefaultsMatchREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse([]byte(oktaBlock+"flows:\n  - {name: a, url: https://x/invoke, clientToken: {env: T}}\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []defaultCase{
		{"okta.assertionLifetime", "5m", func(c *config.Config) any { return c.Okta.AssertionLifetime }, 5 * time.Minute},
		{"okta.refreshBefore", "2m", func(c *config.Config) any { return c.Okta.RefreshBefore }, 2 * time.Minute},
		{"okta.tokenTimeout", "30s", func(c *config.Config) any { return c.Okta.TokenTimeout }, 30 * time.Second},
		{"flows[].auth", "clientToken", func(c *config.Config) any { return c.Flows[0].Auth }, "clientToken"},
	} {
		if got := tt.got(c); got != tt.want {
			t.Errorf("%s: SetDefaults gives %v, want %v", tt.readmeKey, got, tt.want)
		}
		if row := readmeRow(t, string(readme), tt.readmeKey); !strings.Contains(row, "`"+tt.readme+"`") {
			t.Errorf("README row does not document the default `%s`: %s", tt.readme, row)
		}
	}
}
