package flowsim_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/remediator/remediator/flowsim"
)

const orgClient = "0oa-sim-app"

type orgFixture struct {
	sim   *flowsim.Simulator
	url   string
	clock *fakeClock
	key   *ecdsa.PrivateKey
}

func startOrgSim(t *testing.T) *orgFixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	sim, err := flowsim.New(flowsim.Config{
		Seed:  1,
		Now:   clock.Now,
		Flows: []flowsim.Flow{{Alias: alias, OAuth: true}},
		Org: &flowsim.OrgConfig{
			TokenLifetime: 10 * time.Minute,
			Clients: []flowsim.OAuthClient{{
				ID:     orgClient,
				Keys:   []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}},
				Scopes: []string{flowsim.ScopeWorkflowsInvoke, "okta.users.read"},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, sim)
	return &orgFixture{sim: sim, url: srv.URL, clock: clock, key: key}
}

func (f *orgFixture) assertion(t *testing.T, mutate func(*jwt.Claims)) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	cl := jwt.Claims{Issuer: orgClient, Subject: orgClient, Audience: jwt.Audience{f.url + "/oauth2/v1/token"},
		ID: "jti-" + now.String() + t.Name(), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}
	if mutate != nil {
		mutate(&cl)
	}
	s, err := jwt.Signed(signer).Claims(cl).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type tokenAnswer struct {
	status           int
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (f *orgFixture) token(t *testing.T, assertion, scope string) tokenAnswer {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	resp, err := http.PostForm(f.url+"/oauth2/v1/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	a.status = resp.StatusCode
	return a
}

func TestOrgTokenEndpointChecksTheAssertion(t *testing.T) {
	t.Parallel()
	f := startOrgSim(t)
	defer http.DefaultClient.CloseIdleConnections()

	ok := f.token(t, f.assertion(t, nil), flowsim.ScopeWorkflowsInvoke)
	if ok.status != 200 || ok.AccessToken == "" || ok.TokenType != "Bearer" || ok.ExpiresIn != 600 || ok.Scope != flowsim.ScopeWorkflowsInvoke {
		t.Fatalf("token answer = %+v", ok)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*jwt.Claims)
		scope  string
		want   string
	}{
		{"wrong aud", func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.okta.com/oauth2/v1/token"} }, "", "invalid_client"},
		{"sub differs from iss", func(c *jwt.Claims) { c.Subject = "someone" }, "", "invalid_client"},
		{"unknown client", func(c *jwt.Claims) { c.Issuer, c.Subject = "0oa-nobody", "0oa-nobody" }, "", "invalid_client"},
		{"expired", func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(f.clock.Now().Add(-time.Second)) }, "", "invalid_client"},
		{"exp over an hour ahead", func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(f.clock.Now().Add(61 * time.Minute)) }, "", "invalid_client"},
		{"no exp", func(c *jwt.Claims) { c.Expiry = nil }, "", "invalid_client"},
		{"scope not granted", nil, "okta.users.manage", "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scope := tc.scope
			if scope == "" {
				scope = flowsim.ScopeWorkflowsInvoke
			}
			mutate := tc.mutate
			a := f.token(t, f.assertion(t, func(c *jwt.Claims) {
				c.ID = "jti-" + tc.name
				if mutate != nil {
					mutate(c)
				}
			}), scope)
			if a.Error != tc.want || a.AccessToken != "" {
				t.Errorf("answer = %+v, want error %s", a, tc.want)
			}
		})
	}

	// A jti is single use.
	as := f.assertion(t, func(c *jwt.Claims) { c.ID = "jti-once" })
	if a := f.token(t, as, flowsim.ScopeWorkflowsInvoke); a.status != 200 {
		t.Fatalf("first use = %+v", a)
	}
	if a := f.token(t, as, flowsim.ScopeWorkflowsInvoke); a.status != 401 || a.Error != "invalid_client" {
		t.Errorf("replay = %+v, want 401 invalid_client", a)
	}
	if got := f.sim.OrgStats().ReplayedAssertions; got != 1 {
		t.Errorf("ReplayedAssertions = %d, want 1", got)
	}
	// Registering another key (rotation) makes the old one fail.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := f.sim.SetClientKeys(orgClient, []jose.JSONWebKey{{Key: &other.PublicKey, KeyID: "k1"}}); err != nil {
		t.Fatal(err)
	}
	if a := f.token(t, f.assertion(t, func(c *jwt.Claims) { c.ID = "jti-rotated" }), flowsim.ScopeWorkflowsInvoke); a.Error != "invalid_client" ||
		!strings.Contains(a.ErrorDescription, "signature") {
		t.Errorf("after rotation = %+v, want invalid_client about the signature", a)
	}
	if err := f.sim.SetClientKeys(orgClient, []jose.JSONWebKey{{Key: other, KeyID: "private"}}); err == nil {
		t.Error("SetClientKeys accepted a private key")
	}
}

func TestOAuthFlowNeedsALiveTokenWithTheScope(t *testing.T) {
	t.Parallel()
	f := startOrgSim(t)
	defer http.DefaultClient.CloseIdleConnections()
	invoke := func(bearer string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.url+"/api/flo/"+alias+"/invoke", strings.NewReader(`{}`))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := f.token(t, f.assertion(t, func(c *jwt.Claims) { c.ID = "a" }), flowsim.ScopeWorkflowsInvoke).AccessToken
	usersOnly := f.token(t, f.assertion(t, func(c *jwt.Claims) { c.ID = "b" }), "okta.users.read").AccessToken
	for name, tc := range map[string]struct {
		bearer string
		want   int
	}{
		"no token":      {"", 401},
		"unknown token": {"simtok.nope", 401},
		"wrong scope":   {usersOnly, 401},
		"good":          {good, 200},
	} {
		if got := invoke(tc.bearer); got != tc.want {
			t.Errorf("%s: status %d, want %d", name, got, tc.want)
		}
	}
	f.clock.Advance(10 * time.Minute) // the token's lifetime
	if got := invoke(good); got != 401 {
		t.Errorf("expired token: status %d, want 401", got)
	}
	if _, err := flowsim.New(flowsim.Config{Flows: []flowsim.Flow{{Alias: "x", OAuth: true}}}); err == nil {
		t.Error("New accepted an OAuth flow without an org")
	}
}

func TestOrgAdminAPI(t *testing.T) {
	t.Parallel()
	f := startOrgSim(t)
	defer http.DefaultClient.CloseIdleConnections()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, _ = io.Copy(b, resp.Body)
		return resp.StatusCode, b.String()
	}
	tok := f.token(t, f.assertion(t, nil), flowsim.ScopeWorkflowsInvoke).AccessToken
	if st, body := do(http.MethodPost, "/_sim/org/revoke", `{"token":"`+tok+`"}`); st != 200 || !strings.Contains(body, `"revoked":1`) {
		t.Errorf("revoke = %d %s", st, body)
	}
	if st, body := do(http.MethodGet, "/_sim/org/stats", ""); st != 200 || !strings.Contains(body, `"tokensIssued":1`) {
		t.Errorf("stats = %d %s", st, body)
	}
	if st, body := do(http.MethodGet, "/_sim/org/clients/"+orgClient+"/jwks", ""); st != 200 || !strings.Contains(body, `"kid":"k1"`) || strings.Contains(body, `"d":`) {
		t.Errorf("jwks = %d %s", st, body)
	}
	pub, _ := json.Marshal(map[string]any{"keys": []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k2"}}})
	if st, body := do(http.MethodPut, "/_sim/org/clients/"+orgClient+"/jwks", string(pub)); st != 204 {
		t.Errorf("put jwks = %d %s", st, body)
	}
	if keys := f.sim.ClientKeys(orgClient); len(keys) != 1 || keys[0].KeyID != "k2" {
		t.Errorf("keys after PUT = %v", keys)
	}
	ev := `[{"uuid":"u1","published":"2030-01-01T00:00:00Z","eventType":"user.risk.detect"}]`
	if st, body := do(http.MethodPost, "/_sim/org/logs", ev); st != 204 {
		t.Errorf("post logs = %d %s", st, body)
	}
	if st, _ := do(http.MethodPost, "/_sim/org/logs", `[{"uuid":"u2"}]`); st != 400 {
		t.Errorf("post incomplete log event = %d, want 400", st)
	}
	if st, _ := do(http.MethodGet, "/_sim/org/users/nobody", ""); st != 404 {
		t.Errorf("unknown user = %d, want 404", st)
	}
}
