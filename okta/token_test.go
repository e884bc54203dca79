package okta_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
)

func TestTokenFetchedOnceFor1000Invocations(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	fc := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(fc.CloseIdleConnections)
	ep := o.endpoint(c)

	const workers, perWorker = 20, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				_, err := fc.Invoke(context.Background(), ep, flow.Request{
					Inputs: map[string]any{"userId": "00u-alice"}, IdempotencyKey: fmt.Sprintf("k-%d-%d", w, i)})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Invoke() error = %v", err)
	}
	if got := o.sim.Stats(flowAlias).Succeeded; got != workers*perWorker {
		t.Errorf("flow succeeded %d times, want %d", got, workers*perWorker)
	}
	if st := o.sim.OrgStats(); st.TokenRequests != 1 || st.TokensIssued != 1 {
		t.Errorf("token requests = %d (issued %d), want exactly 1 for %d invocations", st.TokenRequests, st.TokensIssued, workers*perWorker)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	ctx := context.Background()
	first, err := c.AccessToken(ctx, okta.ScopeWorkflowsInvoke)
	if err != nil {
		t.Fatal(err)
	}
	// The sim's tokens live an hour; the client replaces them 2 minutes before.
	o.clock.Advance(57 * time.Minute)
	if tok, _ := c.AccessToken(ctx, okta.ScopeWorkflowsInvoke); tok != first {
		t.Error("token replaced 3 minutes before expiry; want it kept until 2 minutes before")
	}
	o.clock.Advance(90 * time.Second)
	second, err := c.AccessToken(ctx, okta.ScopeWorkflowsInvoke)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Error("token kept 90 s before expiry; want a new one")
	}
	if got := o.sim.OrgStats().TokenRequests; got != 2 {
		t.Errorf("token requests = %d, want 2", got)
	}
	// The refreshed token works at the flow; the old one still does too until it expires.
	fc := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(fc.CloseIdleConnections)
	if _, err := fc.Invoke(ctx, o.endpoint(c), flow.Request{IdempotencyKey: "after-refresh"}); err != nil {
		t.Errorf("Invoke() after refresh error = %v", err)
	}
	// Scope sets are cached apart: the users scope needs its own token.
	if _, err := c.AccessToken(ctx, okta.ScopeUsersRead, okta.ScopeUsersRead); err != nil {
		t.Fatal(err)
	}
	if got := o.sim.OrgStats().TokenRequests; got != 3 {
		t.Errorf("token requests = %d after a second scope set, want 3", got)
	}
}

func TestRevokedTokenRefreshedOnce(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	fc := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(fc.CloseIdleConnections)
	ctx := context.Background()
	ep := o.endpoint(c)
	if _, err := fc.Invoke(ctx, ep, flow.Request{IdempotencyKey: "one"}); err != nil {
		t.Fatal(err)
	}
	if n := o.sim.RevokeTokens(clientID); n != 1 {
		t.Fatalf("revoked %d tokens, want 1", n)
	}
	if _, err := fc.Invoke(ctx, ep, flow.Request{IdempotencyKey: "two"}); err != nil {
		t.Fatalf("Invoke() after revocation error = %v, want success after one refresh", err)
	}
	st := o.sim.Stats(flowAlias)
	if st.Unauthorized != 1 || st.Executed != 2 {
		t.Errorf("flow stats = %+v, want 1 unauthorized call and 2 executions", st)
	}
	if got := o.sim.OrgStats().TokenRequests; got != 2 {
		t.Errorf("token requests = %d, want 2 (one refresh)", got)
	}

	// Now the flow refuses this app altogether: one refresh, then a permanent failure
	// carrying Okta's error code, and no third token request.
	if err := o.sim.SetFlowClients(flowAlias, []string{"0oa-someone-else"}); err != nil {
		t.Fatal(err)
	}
	_, err := fc.Invoke(ctx, ep, flow.Request{IdempotencyKey: "three"})
	var fe *flow.Error
	if !errors.As(err, &fe) {
		t.Fatalf("Invoke() error = %v, want *flow.Error", err)
	}
	if fe.Class != flow.ClassPermanent || fe.StatusCode != http.StatusUnauthorized {
		t.Errorf("error class %v status %d, want permanent 401", fe.Class, fe.StatusCode)
	}
	if fe.Okta == nil || fe.Okta.Code != "E0000011" || fe.Okta.ID == "" {
		t.Errorf("error's Okta object = %+v, want errorCode E0000011 with an errorId", fe.Okta)
	}
	if got := o.sim.OrgStats().TokenRequests; got != 3 {
		t.Errorf("token requests = %d, want 3 (exactly one refresh for the refused call)", got)
	}
	if got := o.sim.Stats(flowAlias).Unauthorized; got != 3 {
		t.Errorf("unauthorized calls = %d, want 3 (1 earlier + 2 for this invocation)", got)
	}
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	const callers = 50
	var started sync.WaitGroup
	started.Add(callers)
	release := make(chan struct{})
	// Hold the token request until every caller has started, so that they overlap it.
	gate := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == okta.TokenPath {
			<-release
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	hc := &http.Client{Transport: gate}
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	c, err := okta.New(okta.Config{OrgURL: o.srv.URL, ClientID: clientID, Key: mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), HTTPClient: hc, Now: o.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tokens := make(chan string, callers)
	var done sync.WaitGroup
	for range callers {
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			tok, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke)
			if err != nil {
				t.Error(err)
			}
			tokens <- tok
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
	close(tokens)
	first := ""
	for tok := range tokens {
		if first == "" {
			first = tok
		}
		if tok != first {
			t.Fatal("callers got different tokens")
		}
	}
	if got := o.sim.OrgStats().TokenRequests; got != 1 {
		t.Errorf("token requests = %d for %d concurrent callers, want 1", got, callers)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWrongKeyNamesKeyID(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	for _, tc := range []struct {
		name string
		key  *okta.Key
	}{
		{"right kid, wrong private key", mustKey(t, pemPKCS8(t, testRSA(t, 1)), kid)},
		{"kid unknown to Okta", mustKey(t, pemPKCS8(t, testRSA(t, 0)), "kid-rotated-away")},
		{"EC key instead", mustKey(t, pemPKCS8(t, newECKey(t)), "kid-ec")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := o.client(t, tc.key, nil)
			_, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke)
			var oe *okta.Error
			if !errors.As(err, &oe) || !errors.Is(err, okta.ErrInvalidClient) {
				t.Fatalf("AccessToken() error = %v, want *okta.Error wrapping ErrInvalidClient", err)
			}
			if oe.StatusCode != http.StatusUnauthorized || oe.OAuthError != "invalid_client" || oe.Retryable() {
				t.Errorf("error = %+v, want a permanent 401 invalid_client", oe)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("key id %q", tc.key.ID())) || !strings.Contains(msg, clientID) {
				t.Errorf("error %q does not name key id %q and client id %s", msg, tc.key.ID(), clientID)
			}
			// Through a flow, the same failure is a flow error that names the key id.
			fc := flow.NewClient(flow.ClientConfig{})
			defer fc.CloseIdleConnections()
			_, err = fc.Invoke(context.Background(), o.endpoint(c), flow.Request{})
			if err == nil || !strings.Contains(err.Error(), tc.key.ID()) {
				t.Errorf("Invoke() error = %v, want one naming key id %q", err, tc.key.ID())
			}
		})
	}
	if got := o.sim.Stats(flowAlias).Received; got != 0 {
		t.Errorf("flow received %d calls, want none without a token", got)
	}
}

func TestES256KeyFromJWK(t *testing.T) {
	t.Parallel()
	ec := newECKey(t)
	o := startOrg(t, publicJWK(ec, "kid-ec"))
	priv := mustJSON(t, jose.JSONWebKey{Key: ec, KeyID: "kid-ec", Algorithm: "ES256", Use: "sig"})
	key := mustKey(t, priv, "") // kid from the JWK
	if key.Algorithm() != "ES256" || key.ID() != "kid-ec" {
		t.Fatalf("key = %v, want ES256 kid-ec", key)
	}
	c := o.client(t, key, nil)
	if _, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke); err != nil {
		t.Fatalf("AccessToken() error = %v", err)
	}
	// The assertion has the claims Okta requires.
	as := o.recordedAssertions()
	if len(as) != 1 {
		t.Fatalf("recorded %d assertions, want 1", len(as))
	}
	tok, err := jwt.ParseSigned(as[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var cl jwt.Claims
	if err := tok.Claims(&ec.PublicKey, &cl); err != nil {
		t.Fatal(err)
	}
	now := o.clock.Now()
	if cl.Issuer != clientID || cl.Subject != clientID || len(cl.Audience) != 1 || cl.Audience[0] != o.srv.URL+okta.TokenPath ||
		cl.ID == "" || cl.Expiry.Time().After(now.Add(okta.MaxAssertionLifetime)) || !cl.Expiry.Time().After(now) ||
		tok.Headers[0].KeyID != "kid-ec" {
		t.Errorf("assertion claims %+v header kid %q are not what Okta needs", cl, tok.Headers[0].KeyID)
	}
}

func TestReplayedAssertionRefused(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	if _, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke); err != nil {
		t.Fatal(err)
	}
	replay := o.recordedAssertions()[0]
	post := func(assertion string) *http.Response {
		t.Helper()
		form := "grant_type=client_credentials&scope=" + okta.ScopeWorkflowsInvoke +
			"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + assertion
		resp, err := http.Post(o.srv.URL+okta.TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	defer http.DefaultClient.CloseIdleConnections()
	if resp := post(replay); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed assertion answered %d, want 401", resp.StatusCode)
	}
	if got := o.sim.OrgStats().ReplayedAssertions; got != 1 {
		t.Errorf("replayed assertions = %d, want 1", got)
	}
	// Each fetch signs a new jti, so the client itself never replays.
	c.Invalidate(mustToken(t, c), okta.ScopeWorkflowsInvoke)
	if _, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke); err != nil {
		t.Errorf("second fetch error = %v", err)
	}
}

func mustToken(t *testing.T, c *okta.Client) string {
	t.Helper()
	tok, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDPoPRequiredNamesTheSetting(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid), func(cfg *flowsim.Config) { cfg.Org.Clients[0].RequireDPoP = true })
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	_, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke)
	if !errors.Is(err, okta.ErrDPoPRequired) {
		t.Fatalf("AccessToken() error = %v, want ErrDPoPRequired", err)
	}
	if !strings.Contains(err.Error(), "Require Demonstrating Proof of Possession (DPoP) header in token requests") {
		t.Errorf("error %q does not name the app setting to turn off", err)
	}
}

func TestScopeNotGrantedNamesTheScope(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	_, err := c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke, okta.ScopeGroupsManage)
	var oe *okta.Error
	if !errors.As(err, &oe) || !errors.Is(err, okta.ErrScopeNotGranted) {
		t.Fatalf("AccessToken() error = %v, want ErrScopeNotGranted", err)
	}
	if !strings.Contains(err.Error(), okta.ScopeGroupsManage) || !strings.Contains(err.Error(), "Okta API Scopes") {
		t.Errorf("error %q does not name the scope and where to grant it", err)
	}
}

// TestNoSecretsInLogsOrErrors runs successes and failures with Debug logging everywhere
// and searches the logs, errors and printed values for the token, the assertions and the
// key material.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := startOrg(t, publicJWK(testRSA(t, 0), kid), func(cfg *flowsim.Config) { cfg.Logger = logger })
	keyPEM := pemPKCS8(t, testRSA(t, 0))
	key := mustKey(t, keyPEM, kid)
	c := o.client(t, key, logger)
	fc := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(fc.CloseIdleConnections)
	ctx := context.Background()

	var printed []string
	tok := mustToken(t, c)
	if _, err := fc.Invoke(ctx, o.endpoint(c), flow.Request{IdempotencyKey: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UserGroups(ctx, "00u-alice"); err != nil {
		t.Fatal(err)
	}
	usersTok, err := c.AccessToken(ctx, okta.ScopeUsersRead)
	if err != nil {
		t.Fatal(err)
	}
	o.sim.RevokeTokens(clientID)
	_ = o.sim.SetFlowClients(flowAlias, []string{"other"})
	_, err = fc.Invoke(ctx, o.endpoint(c), flow.Request{IdempotencyKey: "y"})
	printed = append(printed, err.Error())
	_, err = c.Do(ctx, http.MethodGet, "/api/v1/logs", nil, nil, okta.ScopeGroupsManage) // not granted
	printed = append(printed, err.Error())
	bad := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 1)), kid), logger)
	_, err = bad.AccessToken(ctx, okta.ScopeWorkflowsInvoke)
	printed = append(printed, err.Error(), fmt.Sprintf("%v %+v %#v %s", key, key, key, key), c.String(),
		fmt.Sprint(c.TokenSource(okta.ScopeWorkflowsInvoke)), string(mustJSON(t, key)))
	logger.Info("values", "key", key, "client", c)

	logMu.Lock()
	all := logs.String() + strings.Join(printed, "\n")
	logMu.Unlock()
	for _, line := range []string{"okta token fetched", "okta token request refused", "flowsim invocation", "flowsim token issued", "flowsim token request refused", "flowsim org call"} {
		if !strings.Contains(all, line) {
			t.Fatalf("logs lack %q; the test would prove less than it claims:\n%s", line, all)
		}
	}
	if !strings.Contains(all, "okta token fetched") {
		t.Fatalf("logs lack the expected lines; the test would prove nothing:\n%s", all)
	}
	secrets := map[string]string{"access token": tok, "users access token": usersTok, "key PEM body": pemBody(keyPEM)}
	for i, a := range o.recordedAssertions() {
		secrets[fmt.Sprintf("assertion %d", i)] = a
		// The signature alone is secret enough to look for.
		secrets[fmt.Sprintf("assertion %d signature", i)] = a[strings.LastIndex(a, ".")+1:]
	}
	d := base64.RawURLEncoding.EncodeToString(testRSA(t, 0).D.Bytes())
	secrets["private exponent (JWK d)"] = d[:40]
	for name, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("%s appears in logs, errors or printed values", name)
		}
	}
}

func pemBody(p []byte) string {
	lines := strings.Split(string(p), "\n")
	return lines[2] // a line of key material, past the header and the first line
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
