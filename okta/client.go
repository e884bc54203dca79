package okta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

// Scopes remediator asks for. Each must be granted to the API Services app on its
// "Okta API Scopes" tab.
const (
	ScopeWorkflowsInvoke = "okta.workflows.invoke.manage"
	ScopeUsersRead       = "okta.users.read"
	ScopeUsersManage     = "okta.users.manage"
	ScopeGroupsRead      = "okta.groups.read"
	ScopeGroupsManage    = "okta.groups.manage"
	ScopeUserRiskManage  = "okta.userRisk.manage"
	ScopeLogsRead        = "okta.logs.read"
	ScopePoliciesRead    = "okta.policies.read"
)

// Defaults.
const (
	// DefaultAssertionLifetime is how long a client assertion is valid. Okta takes at most
	// an hour; a few minutes is plenty for one token request.
	DefaultAssertionLifetime = 5 * time.Minute
	// MaxAssertionLifetime is Okta's ceiling for a client assertion's exp.
	MaxAssertionLifetime = time.Hour
	// DefaultRefreshBefore is how long before expiry a cached token is replaced. Okta's
	// tokens live an hour.
	DefaultRefreshBefore = 2 * time.Minute
	// DefaultTokenTimeout bounds one token request.
	DefaultTokenTimeout = 30 * time.Second
	// TokenPath is the org authorization server's token endpoint. Workflows and the
	// management API accept only tokens of the org authorization server, not of a custom
	// one (/oauth2/{id}/v1/token).
	TokenPath = "/oauth2/v1/token"
)

// Config configures a [Client].
type Config struct {
	// OrgURL is the org, such as https://example.okta.com. Required. http is accepted only
	// for loopback hosts (the simulator).
	OrgURL string
	// ClientID is the API Services app's client id. Required.
	ClientID string
	// Key signs the client assertions. Required.
	Key *Key
	// HTTPClient sends token and API requests. Default: a dedicated client with a 30 s
	// overall timeout. It is used as given; its Transport is wrapped, not modified.
	HTTPClient *http.Client
	// Logger gets one Info line per token fetched and one Warn line per token refused
	// (never the token, the assertion or the key). Default: discard.
	Logger *slog.Logger
	// AssertionLifetime is the exp of each client assertion. Default
	// DefaultAssertionLifetime (5 min); at most MaxAssertionLifetime (1 h).
	AssertionLifetime time.Duration
	// RefreshBefore replaces a cached token this long before it expires. Default
	// DefaultRefreshBefore (2 min); a token living less than twice that is replaced at
	// half its life.
	RefreshBefore time.Duration
	// TokenTimeout bounds one token request. Default DefaultTokenTimeout (30 s).
	TokenTimeout time.Duration
	// UserAgent is sent on every request. Default "remediator".
	UserAgent string
	// Now is the clock for expiry decisions and assertion times. Default time.Now.
	Now func() time.Time
}

// Client is one Okta org, reached as one API Services app with OAuth 2.0 client
// credentials and private_key_jwt. It caches one token per scope set, shared by every
// goroutine. It is safe for concurrent use.
type Client struct {
	org      *url.URL
	tokenURL string
	clientID string
	key      *Key
	signer   jose.Signer
	hc       *http.Client // token requests
	api      *http.Client // hc with User-Agent
	log      *slog.Logger
	now      func() time.Time
	ua       string

	assertionLifetime, refreshBefore, tokenTimeout time.Duration

	mu     sync.Mutex
	tokens map[string]*cachedToken // by scope key
	flight singleflight.Group
}

// cachedToken is one access token. It is never logged or printed.
type cachedToken struct {
	value   string
	scopes  []string // granted, as Okta answered
	fetched time.Time
	expires time.Time
}

func (t *cachedToken) fresh(now time.Time, before time.Duration) bool {
	life := t.expires.Sub(t.fetched)
	if life < 2*before {
		before = life / 2
	}
	return now.Before(t.expires.Add(-before))
}

// New validates cfg and returns a Client. It sends nothing.
func New(cfg Config) (*Client, error) {
	var errs []error
	org, err := parseOrgURL(cfg.OrgURL)
	if err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		errs = append(errs, errors.New("okta: client id is empty"))
	}
	if cfg.Key == nil {
		errs = append(errs, errors.New("okta: no private key configured"))
	}
	if cfg.AssertionLifetime < 0 || cfg.AssertionLifetime > MaxAssertionLifetime {
		errs = append(errs, fmt.Errorf("okta: assertion lifetime %v must be between 0 (default) and %v", cfg.AssertionLifetime, MaxAssertionLifetime))
	}
	if cfg.RefreshBefore < 0 || cfg.TokenTimeout < 0 {
		errs = append(errs, errors.New("okta: refresh-before and token timeout must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &Client{
		org:               org,
		tokenURL:          org.String() + TokenPath,
		clientID:          cfg.ClientID,
		key:               cfg.Key,
		log:               cfg.Logger,
		now:               cfg.Now,
		ua:                cfg.UserAgent,
		assertionLifetime: cmp(cfg.AssertionLifetime, DefaultAssertionLifetime),
		refreshBefore:     cmp(cfg.RefreshBefore, DefaultRefreshBefore),
		tokenTimeout:      cmp(cfg.TokenTimeout, DefaultTokenTimeout),
		tokens:            make(map[string]*cachedToken),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ua == "" {
		c.ua = "remediator"
	}
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second}
	}
	hc := *base
	hc.Transport = userAgent{base: transportOf(base), ua: c.ua}
	c.hc = &hc
	c.api = &hc
	c.signer, err = jose.NewSigner(
		jose.SigningKey{Algorithm: cfg.Key.alg, Key: jose.JSONWebKey{Key: cfg.Key.private, KeyID: cfg.Key.id}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("okta: key %q cannot sign: %w", cfg.Key.id, err)
	}
	return c, nil
}

func cmp(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func parseOrgURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("okta: org URL is empty (e.g. https://example.okta.com)")
	}
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("okta: org URL %q is not a URL such as https://example.okta.com", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("okta: org URL %q must be scheme and host only, such as https://example.okta.com", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("okta: org URL %q must use https (http only for a local simulator)", s)
		}
	default:
		return nil, fmt.Errorf("okta: org URL %q must use https", s)
	}
	return u, nil
}

// OrgURL returns the org's base URL, such as https://example.okta.com.
func (c *Client) OrgURL() string { return c.org.String() }

// ClientID returns the app's client id.
func (c *Client) ClientID() string { return c.clientID }

// KeyID returns the id of the signing key.
func (c *Client) KeyID() string { return c.key.id }

// scopeKey is the cache key of a scope set: sorted, without duplicates.
func scopeKey(scopes []string) (string, []string) {
	s := slices.Clone(scopes)
	for i := range s {
		s[i] = strings.TrimSpace(s[i])
	}
	slices.Sort(s)
	s = slices.Compact(s)
	s = slices.DeleteFunc(s, func(v string) bool { return v == "" })
	return strings.Join(s, " "), s
}

// AccessToken returns a token for the scopes, from the cache while it is fresh, else from
// Okta. Concurrent callers needing the same scope set share one token request. The request
// runs on its own timeout, so one caller giving up does not fail the others; each caller
// still stops waiting when its ctx ends. Failures are [*Error].
func (c *Client) AccessToken(ctx context.Context, scopes ...string) (string, error) {
	key, sorted := scopeKey(scopes)
	if key == "" {
		return "", &Error{Op: "token request", Kind: ErrNoScopes, Hint: "name at least one scope, such as " + ScopeWorkflowsInvoke}
	}
	if tok := c.cached(key); tok != nil {
		return tok.value, nil
	}
	ch := c.flight.DoChan(key, func() (any, error) {
		// A flight that just finished may have stored a token while this one queued.
		if tok := c.cached(key); tok != nil {
			return tok, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.tokenTimeout)
		defer cancel()
		tok, err := c.fetch(fctx, sorted)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.tokens[key] = tok
		c.mu.Unlock()
		return tok, nil
	})
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("okta: waiting for a token: %w", context.Cause(ctx))
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(*cachedToken).value, nil
	}
}

func (c *Client) cached(key string) *cachedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok := c.tokens[key]; tok != nil && tok.fresh(c.now(), c.refreshBefore) {
		return tok
	}
	return nil
}

// Invalidate drops the cached token for the scopes if it is still token, so the next
// AccessToken fetches a new one. Call it when Okta refused token (HTTP 401). Comparing the
// value means that many callers refused the same token cause one new fetch, not many.
func (c *Client) Invalidate(token string, scopes ...string) {
	key, _ := scopeKey(scopes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok := c.tokens[key]; tok != nil && tok.value == token {
		delete(c.tokens, key)
	}
}

// assertion signs a fresh client assertion: iss = sub = client id, aud = token URL, a new
// random jti, iat = now, exp = now + AssertionLifetime.
func (c *Client) assertion() (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	now := c.now()
	claims := jwt.Claims{
		Issuer:   c.clientID,
		Subject:  c.clientID,
		Audience: jwt.Audience{c.tokenURL},
		ID:       hex.EncodeToString(jti[:]),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(c.assertionLifetime)),
	}
	return jwt.Signed(c.signer).Claims(claims).Serialize()
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// fetch asks Okta for a token: grant_type=client_credentials with a private_key_jwt
// assertion, through golang.org/x/oauth2's clientcredentials (form encoding, response
// parsing). client_id is not sent: the assertion names the client.
func (c *Client) fetch(ctx context.Context, scopes []string) (*cachedToken, error) {
	assertion, err := c.assertion()
	if err != nil {
		return nil, &Error{Op: "token request", Kind: ErrInvalidKey, Err: err, KeyID: c.key.id,
			Hint: "the private key could not sign a client assertion"}
	}
	cc := clientcredentials.Config{
		TokenURL:  c.tokenURL,
		Scopes:    scopes,
		AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {assertionType},
			"client_assertion":      {assertion},
		},
	}
	start := c.now()
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c.hc))
	if err != nil {
		e := c.tokenError(err, scopes)
		c.log.LogAttrs(ctx, slog.LevelWarn, "okta token request refused",
			slog.String("client_id", c.clientID), slog.String("kid", c.key.id),
			slog.String("scopes", strings.Join(scopes, " ")), slog.String("error", e.Error()))
		return nil, e
	}
	if tok.AccessToken == "" {
		return nil, &Error{Op: "token request", Kind: ErrTokenResponse, Hint: "Okta answered without an access_token"}
	}
	if tt := tok.TokenType; tt != "" && !strings.EqualFold(tt, "Bearer") {
		return nil, &Error{Op: "token request", Kind: ErrDPoPRequired, KeyID: c.key.id,
			Hint: fmt.Sprintf("Okta issued a %q token, not a Bearer token: %s", tt, dpopHint)}
	}
	life := time.Duration(tok.ExpiresIn) * time.Second
	if life <= 0 {
		// Okta always sends expires_in; without it assume its documented hour.
		life = time.Hour
	}
	granted := scopes
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		granted = strings.Fields(s)
	}
	if missing := missingScopes(scopes, granted); len(missing) > 0 {
		return nil, &Error{Op: "token request", Kind: ErrScopeNotGranted, Scopes: missing,
			Hint: "Okta issued a token without " + strings.Join(missing, ", ") + scopeHint}
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "okta token fetched",
		slog.String("client_id", c.clientID), slog.String("kid", c.key.id),
		slog.String("scopes", strings.Join(granted, " ")), slog.Duration("expires_in", life))
	return &cachedToken{value: tok.AccessToken, scopes: granted, fetched: start, expires: start.Add(life)}, nil
}

func missingScopes(want, got []string) []string {
	var missing []string
	for _, s := range want {
		if !slices.Contains(got, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// TokenSource returns the token source for one scope set. It is what [flow] takes for an
// OAuth 2.0 flow (scope okta.workflows.invoke.manage).
func (c *Client) TokenSource(scopes ...string) *TokenSource {
	_, sorted := scopeKey(scopes)
	return &TokenSource{c: c, scopes: sorted}
}

// TokenSource is a [Client]'s tokens for one scope set.
type TokenSource struct {
	c      *Client
	scopes []string
}

// AccessToken returns the cached or a new token; see [Client.AccessToken].
func (ts *TokenSource) AccessToken(ctx context.Context) (string, error) {
	return ts.c.AccessToken(ctx, ts.scopes...)
}

// Invalidate drops token from the cache if it is still the cached one.
func (ts *TokenSource) Invalidate(token string) { ts.c.Invalidate(token, ts.scopes...) }

// Scopes returns the scope set.
func (ts *TokenSource) Scopes() []string { return slices.Clone(ts.scopes) }

// OAuth2 adapts the source to golang.org/x/oauth2, for libraries that take an
// oauth2.TokenSource. ctx bounds each Token call.
func (ts *TokenSource) OAuth2(ctx context.Context) oauth2.TokenSource {
	return oauth2TokenSource{ctx: ctx, ts: ts}
}

type oauth2TokenSource struct {
	ctx context.Context
	ts  *TokenSource
}

func (o oauth2TokenSource) Token() (*oauth2.Token, error) {
	v, err := o.ts.AccessToken(o.ctx)
	if err != nil {
		return nil, err
	}
	key, _ := scopeKey(o.ts.scopes)
	t := &oauth2.Token{AccessToken: v, TokenType: "Bearer"}
	o.ts.c.mu.Lock()
	if ct := o.ts.c.tokens[key]; ct != nil && ct.value == v {
		t.Expiry = ct.expires
	}
	o.ts.c.mu.Unlock()
	return t, nil
}

// String hides the tokens.
func (ts *TokenSource) String() string {
	return fmt.Sprintf("okta.TokenSource{scopes=%q}", strings.Join(ts.scopes, " "))
}

// String describes the client without secrets.
func (c *Client) String() string {
	return fmt.Sprintf("okta.Client{org=%s, client_id=%s, kid=%q}", c.org, c.clientID, c.key.id)
}

// LogValue logs the org, client id and key id only.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("org", c.org.String()), slog.String("client_id", c.clientID), slog.String("kid", c.key.id))
}

var _ slog.LogValuer = (*Client)(nil)

// transportOf returns the client's transport or the default one.
func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

// userAgent sets the User-Agent header on each request (on a clone, as RoundTrippers must).
type userAgent struct {
	base http.RoundTripper
	ua   string
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.Header.Set("User-Agent", u.ua)
	if r2.Header.Get("Accept") == "" {
		// Okta answers E0000021 to some Accept values; ask for JSON explicitly.
		r2.Header.Set("Accept", "application/json")
	}
	return u.base.RoundTrip(r2)
}
