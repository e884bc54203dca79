package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/remediator/remediator/okta"
)

// OktaConfig is the Okta org remediator works against, reached as one API Services app with
// OAuth 2.0 client credentials and private_key_jwt (see package okta and the README section
// "Working against a real Okta org"). Default: none (orgUrl empty), which is fine as long as no
// flow has auth: oauth2.
type OktaConfig struct {
	// OrgURL is the org: scheme and host only, such as https://example.okta.com. http is
	// accepted for loopback hosts only (the simulator). Required when the block is used.
	OrgURL string `yaml:"orgUrl"`
	// ClientID is the API Services app's client id. Required.
	ClientID string `yaml:"clientId"`
	// KeyID is the KID Okta shows for the app's public key. Required for a PEM key; optional
	// for a JWK that carries its own "kid" (both must then agree).
	KeyID string `yaml:"keyId"`
	// PrivateKey says where the app's private key is (PEM or JWK): an environment variable
	// or a file. The key itself never appears in configuration. Required.
	PrivateKey Secret `yaml:"privateKey"`
	// Scopes are the management API scopes remediator needs beyond okta.workflows.invoke.manage
	// (which flows with auth: oauth2 imply), such as okta.users.read or okta.logs.read.
	// `remediator okta check` fetches a token and makes one harmless read for each. Default:
	// none.
	Scopes []string `yaml:"scopes"`
	// AssertionLifetime is the exp of each client assertion. Default 5m; at most 1h (Okta's
	// ceiling).
	AssertionLifetime time.Duration `yaml:"assertionLifetime"`
	// RefreshBefore replaces a cached token this long before it expires. Default 2m.
	RefreshBefore time.Duration `yaml:"refreshBefore"`
	// TokenTimeout bounds one token request. Default 30s.
	TokenTimeout time.Duration `yaml:"tokenTimeout"`
	// GroupCache caches the user's groups looked up for people.groups conditions (see
	// config/oktapolicy.go).
	GroupCache GroupCacheConfig `yaml:"groupCache"`
	// SystemLog polls the org's System Log (see config/oktapolicy.go).
	SystemLog SystemLogConfig `yaml:"systemLog"`
}

// The flow auth modes (flows[].auth).
const (
	// FlowAuthClientToken sends the flow's client token (clientToken.env or clientToken.file).
	FlowAuthClientToken = "clientToken"
	// FlowAuthOAuth2 sends a Bearer token of the okta block's app with scope
	// okta.workflows.invoke.manage, for a flow secured with OAuth 2.0.
	FlowAuthOAuth2 = "oauth2"
)

// The defaults of the okta block and of flows[].auth. They are okta's own, named here so that
// the defaults stay listed in the config package.
const (
	DefaultFlowAuth              = FlowAuthClientToken
	DefaultOktaAssertionLifetime = okta.DefaultAssertionLifetime
	DefaultOktaRefreshBefore     = okta.DefaultRefreshBefore
	DefaultOktaTokenTimeout      = okta.DefaultTokenTimeout
)

// Enabled reports whether the okta block is configured.
func (o OktaConfig) Enabled() bool { return o.OrgURL != "" }

// NeedsOkta reports whether any flow uses auth: oauth2.
func (c *Config) NeedsOkta() bool {
	for _, f := range c.Flows {
		if f.Auth == FlowAuthOAuth2 {
			return true
		}
	}
	return false
}

// OktaScopes are every scope the configuration needs of the org: the okta block's scopes,
// okta.workflows.invoke.manage when a flow uses auth: oauth2, and the scopes of the native
// actions configured. Sorted, no duplicates.
func (c *Config) OktaScopes() []string {
	s := slices.Clone(c.Okta.Scopes)
	s = append(s, c.actionScopes()...)
	if c.NeedsOkta() {
		s = append(s, okta.ScopeWorkflowsInvoke)
	}
	s = append(s, c.impliedOktaScopes()...) // group look-ups, System Log (oktapolicy.go)
	slices.Sort(s)
	return slices.Compact(s)
}

// setOktaDefaults fills the okta block's and flows[].auth's unset keys.
func (c *Config) setOktaDefaults() {
	for i := range c.Flows {
		if !c.Flows[i].IsAction() { // a native action has no auth: it is the okta block's app
			setString(&c.Flows[i].Auth, DefaultFlowAuth)
		}
	}
	if !c.Okta.Enabled() {
		return
	}
	o := &c.Okta
	o.OrgURL = strings.TrimRight(o.OrgURL, "/")
	setDuration(&o.AssertionLifetime, DefaultOktaAssertionLifetime)
	setDuration(&o.RefreshBefore, DefaultOktaRefreshBefore)
	setDuration(&o.TokenTimeout, DefaultOktaTokenTimeout)
}

// validateOkta checks the okta block and each flow's auth against it.
func (c *Config) validateOkta(bad func(where, format string, args ...any)) {
	for i, f := range c.Flows {
		if f.IsAction() {
			continue // validateActions
		}
		where := fmt.Sprintf("flows[%d] (%s).auth", i, f.Name)
		switch f.Auth {
		case FlowAuthClientToken:
			// clientToken's own check (exactly one of env or file) is in Validate.
		case FlowAuthOAuth2:
			if !c.Okta.Enabled() {
				bad(where, "oauth2 needs the okta block (okta.orgUrl, okta.clientId, okta.privateKey) naming the API Services app whose token the flow accepts")
			}
			if f.ClientToken.Env != "" || f.ClientToken.File != "" {
				bad(fmt.Sprintf("flows[%d] (%s).clientToken", i, f.Name), "a flow with auth: oauth2 sends a Bearer token, not a client token; remove clientToken (a flow has one security setting in Okta)")
			}
		default:
			bad(where, "%q is not %s or %s", f.Auth, FlowAuthClientToken, FlowAuthOAuth2)
		}
	}
	o := c.Okta
	if !o.Enabled() {
		if o.ClientID != "" || o.KeyID != "" || o.PrivateKey != (Secret{}) || len(o.Scopes) > 0 {
			bad("okta.orgUrl", "is required when the okta block is used (such as https://example.okta.com)")
		}
		return
	}
	if problem := orgURLProblem(o.OrgURL); problem != "" {
		bad("okta.orgUrl", "%q %s", o.OrgURL, problem)
	}
	if strings.TrimSpace(o.ClientID) == "" {
		bad("okta.clientId", "is required: the client id of the API Services app")
	}
	if (o.PrivateKey.Env == "") == (o.PrivateKey.File == "") {
		bad("okta.privateKey", "needs exactly one of env or file (the app's private key, PEM or JWK)")
	}
	seen := map[string]bool{}
	for i, s := range o.Scopes {
		where := fmt.Sprintf("okta.scopes[%d]", i)
		switch {
		case !strings.HasPrefix(s, "okta.") || strings.ContainsAny(s, " \t"):
			bad(where, "%q is not an Okta API scope (such as okta.users.read)", s)
		case seen[s]:
			bad(where, "%q is listed twice", s)
		}
		seen[s] = true
	}
	if o.AssertionLifetime <= 0 || o.AssertionLifetime > okta.MaxAssertionLifetime {
		bad("okta.assertionLifetime", "%s must be above 0 and at most %s (Okta refuses a client assertion that lives longer)", o.AssertionLifetime, okta.MaxAssertionLifetime)
	}
	if o.RefreshBefore <= 0 {
		bad("okta.refreshBefore", "%s must be above 0", o.RefreshBefore)
	}
	if o.TokenTimeout <= 0 {
		bad("okta.tokenTimeout", "%s must be above 0", o.TokenTimeout)
	}
}

// orgURLProblem says what is wrong with an org URL, or "".
func orgURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return "must be the org's URL, such as https://example.okta.com"
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "must be the scheme and host only (no path such as /oauth2/default: Workflows and the management API take only org tokens)"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return "" // the simulator
	case u.Scheme == "http":
		return "must use https (http is accepted for a loopback simulator only)"
	}
	return "must be an https URL"
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// OktaKey loads the okta block's private key from okta.privateKey (env through lookupEnv, or
// file) and checks it: it is a secret checked at start like the flows' client tokens, by
// `remediator run` and `remediator okta`. Errors name the key path and the key id, never the
// key. It returns nil, nil when the okta block is not configured.
func (c *Config) OktaKey(lookupEnv func(string) (string, bool)) (*okta.Key, error) {
	o := c.Okta
	if !o.Enabled() {
		return nil, nil
	}
	fail := func(where string, err error) error {
		return fmt.Errorf("%s: %s: %w", c.Source(), where, err)
	}
	switch {
	case o.PrivateKey.Env != "":
		v, ok := lookupEnv(o.PrivateKey.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fail("okta.privateKey.env", fmt.Errorf("environment variable %s is not set; the app's private key is needed to fetch tokens", o.PrivateKey.Env))
		}
		k, err := okta.ParseKey([]byte(v), o.KeyID)
		if err != nil {
			return nil, fail("okta.privateKey.env", fmt.Errorf("private key in %s: %w", o.PrivateKey.Env, err))
		}
		return k, nil
	case o.PrivateKey.File != "":
		if problem := secretFileProblem(o.PrivateKey.File, true); problem != "" {
			return nil, fail("okta.privateKey.file", errors.New(problem))
		}
		k, err := okta.LoadKeyFile(o.PrivateKey.File, o.KeyID)
		if err != nil {
			return nil, fail("okta.privateKey.file", err)
		}
		return k, nil
	}
	return nil, fail("okta.privateKey", errors.New("needs exactly one of env or file"))
}
