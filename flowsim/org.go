package flowsim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Org defaults.
const (
	// DefaultTokenLifetime is the lifetime of an issued access token: Okta's org
	// authorization server issues tokens for an hour.
	DefaultTokenLifetime = time.Hour
	// DefaultAPIRateLimit is requests per minute per management API endpoint. Okta's real
	// limits vary by endpoint and org; this is a guess of a typical one.
	DefaultAPIRateLimit = 600
	// DefaultLogsRateLimit is requests per minute for /api/v1/logs (guessed: Okta documents
	// 60–120 depending on the org type).
	DefaultLogsRateLimit = 120
	// ScopeWorkflowsInvoke is the scope an OAuth 2.0 flow requires.
	ScopeWorkflowsInvoke = "okta.workflows.invoke.manage"
	// maxAssertionLifetime: Okta refuses a client assertion whose exp is more than an hour
	// ahead.
	maxAssertionLifetime = time.Hour
	assertionType        = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// OrgConfig makes the simulator an Okta org: an org authorization server issuing tokens to
// API Services apps (client credentials with private_key_jwt) and a few management API
// endpoints. Answers follow Okta's documented shapes; where Okta documents nothing (exact
// error texts of the token endpoint, which status a call in the wrong user state gets),
// the code says it guessed.
type OrgConfig struct {
	// Issuer is the org's base URL as clients see it, such as http://127.0.0.1:8080; the
	// assertion's aud must be Issuer + "/oauth2/v1/token". Default: the scheme and Host of
	// each token request.
	Issuer string
	// Clients are the registered API Services apps.
	Clients []OAuthClient
	// TokenLifetime is the expires_in of issued tokens. Default DefaultTokenLifetime (1 h).
	TokenLifetime time.Duration
	// Users and Groups populate the directory.
	Users  []User
	Groups []Group
	// EntityRiskRules are the rules of the org's ENTITY_RISK policy, as Okta's Policy API
	// returns them (EntityRiskPolicyRule JSON objects). The immutable catch-all rule
	// (priority 99, no action) is appended unless a rule with priority 99 is given.
	EntityRiskRules []json.RawMessage
	// APIRateLimit is requests per minute per endpoint, LogsRateLimit for /api/v1/logs.
	// Defaults DefaultAPIRateLimit and DefaultLogsRateLimit.
	APIRateLimit, LogsRateLimit int
	// APIRateWindow is the length of each endpoint's rate-limit window. Default one minute
	// (Okta's); tests shorten it so that a spent window resets quickly.
	APIRateWindow time.Duration
}

// OrgCall is one management API call the org answered, as [Simulator.OrgCalls] reports it.
type OrgCall struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Endpoint is the rate-limit bucket the call counted against, such as users.lifecycle.
	Endpoint string `json:"endpoint"`
	// At is when the call arrived, on the simulator's clock.
	At time.Time `json:"at"`
	// Status is the HTTP status answered.
	Status int `json:"status"`
	// Remaining and Reset are the X-Rate-Limit-Remaining and X-Rate-Limit-Reset (epoch
	// seconds) sent with the answer.
	Remaining int   `json:"remaining"`
	Reset     int64 `json:"reset"`
}

// OAuthClient is an API Services app with Public key / Private key client authentication.
type OAuthClient struct {
	// ID is the client id (iss and sub of its assertions). Required, unique.
	ID string
	// Keys are the app's registered public keys; an assertion must be signed by the one its
	// kid header names.
	Keys []jose.JSONWebKey
	// Scopes are the scopes granted on the app's Okta API Scopes tab.
	Scopes []string
	// RequireDPoP is the app's "Require Demonstrating Proof of Possession (DPoP) header in
	// token requests" setting: token requests without a DPoP header are refused with
	// invalid_dpop_proof (Okta's documented answer).
	RequireDPoP bool
}

// User is a directory user.
type User struct {
	ID    string `json:"id"`
	Login string `json:"login,omitempty"`
	// Status is ACTIVE (default), SUSPENDED, …
	Status string `json:"status"`
	// Groups are group ids.
	Groups []string `json:"groups,omitempty"`
	// Sessions is the number of open sessions; clearing sessions sets it to 0.
	Sessions int `json:"sessions"`
	// RiskLevel is HIGH, MEDIUM, LOW or "" (never set).
	RiskLevel string `json:"riskLevel,omitempty"`
	// SessionClears and Suspends count the calls that changed or confirmed the state, so
	// tests can tell "cleared once" from "cleared three times".
	SessionClears int `json:"sessionClears"`
	Suspends      int `json:"suspends"`
}

// Group is a directory group.
type Group struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Type is OKTA_GROUP (default) or APP_GROUP.
	Type string `json:"type"`
}

// OrgStats count the authorization server's work.
type OrgStats struct {
	// TokenRequests counts POST /oauth2/v1/token calls, TokensIssued the successful ones.
	TokenRequests int `json:"tokenRequests"`
	TokensIssued  int `json:"tokensIssued"`
	// TokensRefused counts calls to flows or the API with a bad, expired or revoked token.
	TokensRefused int `json:"tokensRefused"`
	// ReplayedAssertions counts assertions refused because their jti was used before.
	ReplayedAssertions int `json:"replayedAssertions"`
	// HookDeliveries counts event-hook deliveries the receiver took (2xx), HookFailures
	// those lost (after Okta's one retry), HookEventsLost the events in them (orghook.go).
	HookDeliveries int `json:"hookDeliveries"`
	HookFailures   int `json:"hookFailures"`
	HookEventsLost int `json:"hookEventsLost"`
}

type issuedToken struct {
	clientID string
	scopes   []string
	expires  time.Time
	revoked  bool
}

type rateWindow struct {
	start time.Time
	used  int
}

// orgState is the simulated org.
type orgState struct {
	issuer      string
	lifetime    time.Duration
	apiLimit    int
	logsLimit   int
	window      time.Duration
	mu          sync.Mutex
	calls       []OrgCall
	clients     map[string]*OAuthClient
	tokens      map[string]*issuedToken // by sha256 of the token: the token itself is not kept
	jtis        map[string]time.Time    // used jti → assertion exp
	users       map[string]*User
	groups      map[string]*Group
	logs        []logEntry
	windows     map[string]*rateWindow
	stats       OrgStats
	flowClients map[string][]string // flow alias → assigned client ids (nil: any)
	riskRules   []json.RawMessage
	hook        *EventHook // nil: no event hook (orghook.go)
}

func newOrgState(cfg *OrgConfig) (*orgState, error) {
	o := &orgState{
		issuer:    strings.TrimRight(cfg.Issuer, "/"),
		lifetime:  cfg.TokenLifetime,
		apiLimit:  cfg.APIRateLimit,
		logsLimit: cfg.LogsRateLimit,
		window:    cfg.APIRateWindow,
		clients:   make(map[string]*OAuthClient),
		tokens:    make(map[string]*issuedToken),
		jtis:      make(map[string]time.Time),
		users:     make(map[string]*User),
		groups:    make(map[string]*Group),
		windows:   make(map[string]*rateWindow),
	}
	if o.window == 0 {
		o.window = time.Minute
	}
	if o.lifetime < 0 || o.apiLimit < 0 || o.logsLimit < 0 || o.window < 0 {
		return nil, errors.New("flowsim: org token lifetime and rate limits must not be negative")
	}
	if o.lifetime == 0 {
		o.lifetime = DefaultTokenLifetime
	}
	if o.apiLimit == 0 {
		o.apiLimit = DefaultAPIRateLimit
	}
	if o.logsLimit == 0 {
		o.logsLimit = DefaultLogsRateLimit
	}
	for _, c := range cfg.Clients {
		if c.ID == "" {
			return nil, errors.New("flowsim: an org client has no ID")
		}
		if _, dup := o.clients[c.ID]; dup {
			return nil, fmt.Errorf("flowsim: org client %q appears twice", c.ID)
		}
		if err := checkPublicKeys(c.Keys); err != nil {
			return nil, fmt.Errorf("flowsim: org client %q: %w", c.ID, err)
		}
		c.Keys, c.Scopes = slices.Clone(c.Keys), slices.Clone(c.Scopes)
		o.clients[c.ID] = &c
	}
	catchAll := true
	for i, raw := range cfg.EntityRiskRules {
		var head struct {
			ID       string `json:"id"`
			Priority *int   `json:"priority"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.ID == "" {
			return nil, fmt.Errorf("flowsim: entity-risk rule %d must be a JSON object with an id", i)
		}
		if head.Priority != nil && *head.Priority == 99 {
			catchAll = false
		}
		o.riskRules = append(o.riskRules, slices.Clone(raw))
	}
	if catchAll {
		// The spec's list example names it "Catch-all rule"; its shape is Okta's, its id a guess.
		o.riskRules = append(o.riskRules, json.RawMessage(`{"id":"rulCatchAllSim","name":"Catch-all rule","priority":99,`+
			`"status":"ACTIVE","system":true,"type":"ENTITY_RISK","conditions":{"entityRisk":{"level":"ANY"}},`+
			`"actions":{"entityRisk":{"actions":[]}}}`))
	}
	for _, g := range cfg.Groups {
		if g.ID == "" {
			return nil, errors.New("flowsim: a group has no ID")
		}
		if g.Type == "" {
			g.Type = "OKTA_GROUP"
		}
		o.groups[g.ID] = &g
	}
	for _, u := range cfg.Users {
		if u.ID == "" {
			return nil, errors.New("flowsim: a user has no ID")
		}
		if u.Status == "" {
			u.Status = "ACTIVE"
		}
		for _, g := range u.Groups {
			if _, ok := o.groups[g]; !ok {
				return nil, fmt.Errorf("flowsim: user %q is in unknown group %q", u.ID, g)
			}
		}
		u.Groups = slices.Clone(u.Groups)
		o.users[u.ID] = &u
	}
	return o, nil
}

func checkPublicKeys(keys []jose.JSONWebKey) error {
	for i, k := range keys {
		if !k.IsPublic() {
			return fmt.Errorf("key %d (%q) is not a public key: register only the public half", i, k.KeyID)
		}
		if !k.Valid() {
			return fmt.Errorf("key %d (%q) is not a valid key", i, k.KeyID)
		}
	}
	return nil
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// ---- Go API for tests and operators ----

var errNoOrg = errors.New("flowsim: no org configured (Config.Org)")

// OrgStats returns the authorization server's counters (zero without an org).
func (s *Simulator) OrgStats() OrgStats {
	if s.org == nil {
		return OrgStats{}
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	return s.org.stats
}

// RevokeToken revokes one access token, as POST /oauth2/v1/revoke would; it reports whether
// the token was known.
func (s *Simulator) RevokeToken(token string) bool {
	if s.org == nil {
		return false
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	t, ok := s.org.tokens[tokenHash(token)]
	if ok {
		t.revoked = true
	}
	return ok
}

// RevokeTokens revokes every token issued so far to clientID and returns how many.
func (s *Simulator) RevokeTokens(clientID string) int {
	if s.org == nil {
		return 0
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	n := 0
	for _, t := range s.org.tokens {
		if t.clientID == clientID && !t.revoked {
			t.revoked = true
			n++
		}
	}
	return n
}

// SetClientKeys replaces a client's registered public keys (key rotation in the admin
// console).
func (s *Simulator) SetClientKeys(clientID string, keys []jose.JSONWebKey) error {
	if s.org == nil {
		return errNoOrg
	}
	if err := checkPublicKeys(keys); err != nil {
		return fmt.Errorf("flowsim: %w", err)
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	c, ok := s.org.clients[clientID]
	if !ok {
		return fmt.Errorf("flowsim: unknown org client %q", clientID)
	}
	c.Keys = slices.Clone(keys)
	return nil
}

// ClientKeys returns a client's registered public keys (its JWKS).
func (s *Simulator) ClientKeys(clientID string) []jose.JSONWebKey {
	if s.org == nil {
		return nil
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	if c, ok := s.org.clients[clientID]; ok {
		return slices.Clone(c.Keys)
	}
	return nil
}

// SetFlowClients assigns an OAuth 2.0 flow to the given client ids; nil lets any client
// with the scope invoke it. A token of an unassigned client is answered 401 E0000011
// (guessed: Okta does not document the answer for an app the flow does not trust).
func (s *Simulator) SetFlowClients(alias string, clientIDs []string) error {
	if s.org == nil {
		return errNoOrg
	}
	if _, ok := s.flows[alias]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownFlow, alias)
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	if s.org.flowClients == nil {
		s.org.flowClients = make(map[string][]string)
	}
	s.org.flowClients[alias] = slices.Clone(clientIDs)
	return nil
}

// User returns a copy of a directory user.
// OrgCalls returns the management API calls answered so far, oldest first (token requests
// are not included).
func (s *Simulator) OrgCalls() []OrgCall {
	if s.org == nil {
		return nil
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	return slices.Clone(s.org.calls)
}

func (s *Simulator) User(id string) (User, bool) {
	if s.org == nil {
		return User{}, false
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	u, ok := s.org.users[id]
	if !ok {
		return User{}, false
	}
	c := *u
	c.Groups = slices.Clone(u.Groups)
	return c, true
}

// ---- the authorization server ----

// tokenError is the OAuth 2.0 error body of the token endpoint.
type tokenError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (s *Simulator) handleToken(w http.ResponseWriter, r *http.Request) {
	o := s.org
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.writeOktaError(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method", nil)
		return
	}
	o.mu.Lock()
	o.stats.TokenRequests++
	o.mu.Unlock()
	refuse := func(status int, code, desc string) {
		// The log line names the outcome, never the assertion or a token.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "flowsim token request refused",
			slog.Int("status", status), slog.String("error", code), slog.String("error_description", desc))
		w.Header().Set("Cache-Control", "no-store")
		s.writeJSON(w, status, tokenError{code, desc})
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "The request body could not be read.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		// Okta's text for other grants differs per grant; this one is guessed.
		refuse(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	if r.PostForm.Get("client_assertion_type") != assertionType || r.PostForm.Get("client_assertion") == "" {
		// Guessed text: the simulator only knows private_key_jwt apps.
		refuse(http.StatusUnauthorized, "invalid_client", "Client authentication failed: a private_key_jwt client_assertion is required.")
		return
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512})
	if err != nil || len(tok.Headers) != 1 {
		refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion is not a valid JWT.") // guessed text
		return
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion is not a valid JWT.") // guessed text
		return
	}
	now := s.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	client, ok := o.clients[unverified.Issuer]
	if !ok {
		refuse(http.StatusUnauthorized, "invalid_client", "The client_id is invalid.") // guessed text
		return
	}
	if client.RequireDPoP && r.Header.Get("DPoP") == "" {
		// Documented: support.okta.com "The DPoP Proof JWT Header Is Missing".
		refuse(http.StatusBadRequest, "invalid_dpop_proof", "The DPoP proof JWT header is missing.")
		return
	}
	kid := tok.Headers[0].KeyID
	var key *jose.JSONWebKey
	for i := range client.Keys {
		if client.Keys[i].KeyID == kid || (kid == "" && len(client.Keys) == 1) {
			key = &client.Keys[i]
			break
		}
	}
	var claims jwt.Claims
	if key == nil || tok.Claims(key.Key, &claims) != nil {
		// Guessed text; Okta refuses an unknown kid and a bad signature alike.
		refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion signature is invalid.")
		return
	}
	audience := o.tokenURL(r)
	switch {
	case claims.Issuer != client.ID || claims.Subject != client.ID:
		refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion iss and sub claims must both be the client_id.") // guessed text
		return
	case !claims.Audience.Contains(audience):
		refuse(http.StatusUnauthorized, "invalid_client", "The audience claim for client_assertion must be the endpoint invoked for the request.") // guessed text
		return
	case claims.Expiry == nil:
		refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion token is missing the exp claim.") // guessed text
		return
	case !now.Before(claims.Expiry.Time()):
		refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion token is expired.") // guessed text
		return
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime)):
		refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion token has an expiration too far into the future.") // guessed text
		return
	}
	for j, exp := range o.jtis { // forget jtis whose assertions can no longer be replayed anyway
		if !now.Before(exp) {
			delete(o.jtis, j)
		}
	}
	if claims.ID != "" {
		if _, used := o.jtis[claims.ID]; used {
			o.stats.ReplayedAssertions++
			refuse(http.StatusUnauthorized, "invalid_client", "The client_assertion token has already been used.") // guessed text
			return
		}
		o.jtis[claims.ID] = claims.Expiry.Time()
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if len(scopes) == 0 {
		refuse(http.StatusBadRequest, "invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.")
		return
	}
	var missing []string
	for _, sc := range scopes {
		if !slices.Contains(client.Scopes, sc) {
			missing = append(missing, sc)
		}
	}
	if len(missing) > 0 {
		refuse(http.StatusBadRequest, "invalid_scope", "The following scopes were requested, but not granted: "+strings.Join(missing, " ")) // guessed text
		return
	}
	for h, t := range o.tokens { // expired tokens can never be accepted again
		if !now.Before(t.expires) {
			delete(o.tokens, h)
		}
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	access := "simtok." + hex.EncodeToString(raw[:])
	o.tokens[tokenHash(access)] = &issuedToken{clientID: client.ID, scopes: scopes, expires: now.Add(o.lifetime)}
	o.stats.TokensIssued++
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "flowsim token issued",
		slog.String("client_id", client.ID), slog.String("kid", kid), slog.String("scope", strings.Join(scopes, " ")))
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, http.StatusOK, map[string]any{
		"token_type":   "Bearer",
		"expires_in":   int(o.lifetime / time.Second),
		"access_token": access,
		"scope":        strings.Join(scopes, " "),
	})
}

func (o *orgState) tokenURL(r *http.Request) string {
	if o.issuer != "" {
		return o.issuer + "/oauth2/v1/token"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/oauth2/v1/token"
}

// bearer checks the request's Bearer token. It returns the token's client and an empty
// reason, or the reason it is refused: "invalid" (401) or "scope" (403). anyScope lists the
// scopes of which the token needs one. The caller holds o.mu.
func (o *orgState) bearer(r *http.Request, now time.Time, anyScope ...string) (client, reason string) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		o.stats.TokensRefused++
		return "", "invalid"
	}
	t, ok := o.tokens[tokenHash(strings.TrimSpace(tok))]
	if !ok || t.revoked || !now.Before(t.expires) {
		o.stats.TokensRefused++
		return "", "invalid"
	}
	for _, sc := range anyScope {
		if slices.Contains(t.scopes, sc) {
			return t.clientID, ""
		}
	}
	return t.clientID, "scope"
}

// refuseBearer answers a refused Bearer token the way Okta's API does: 401 E0000011, or
// 403 E0000006 with a WWW-Authenticate insufficient_scope challenge. (The challenge's scope
// parameter is a guess; Okta names the resource instead.)
func (s *Simulator) refuseBearer(w http.ResponseWriter, reason string, scopes []string) {
	if reason == "scope" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="IdpMyAccountAPI", error="insufficient_scope", `+
			`error_description="The access token provided does not contain the required scopes.", scope=%q`, strings.Join(scopes, " ")))
		s.writeOktaError(w, http.StatusForbidden, "E0000006", "You do not have permission to perform the requested action", nil)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="IdpMyAccountAPI", error="invalid_token", error_description="The token is not valid."`)
	s.writeOktaError(w, http.StatusUnauthorized, "E0000011", "Invalid token provided", nil)
}

// flowAuthorized checks a call to an OAuth 2.0 flow: a live token with scope
// okta.workflows.invoke.manage, of a client the flow is assigned to.
func (s *Simulator) flowAuthorized(r *http.Request, alias string, now time.Time) bool {
	o := s.org
	o.mu.Lock()
	defer o.mu.Unlock()
	client, reason := o.bearer(r, now, ScopeWorkflowsInvoke)
	if reason != "" {
		if reason == "scope" {
			o.stats.TokensRefused++
		}
		return false
	}
	if allowed, ok := o.flowClients[alias]; ok && allowed != nil && !slices.Contains(allowed, client) {
		o.stats.TokensRefused++
		return false
	}
	return true
}

// ParseJWKS reads public keys for [OAuthClient].Keys from a JWK Set ({"keys": [...]}) or a
// single JWK, such as okta.Key.PublicJWK returns. Private keys are refused.
func ParseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err == nil && len(set.Keys) > 0 {
		return set.Keys, checkPublicKeys(set.Keys)
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, errors.New("flowsim: not a JWK or JWK Set")
	}
	keys := []jose.JSONWebKey{k}
	return keys, checkPublicKeys(keys)
}
