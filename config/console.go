package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// ConsoleConfig says how people sign in to the ops console (http.console). The console
// changes things (replays, purges, brakes), so it is never open: a request carries the token
// (Authorization: Bearer TOKEN, or basic auth with the token as password) or signs in once
// with it on the login page; or, with oidc set, signs in with the org's Okta.
type ConsoleConfig struct {
	// Token is the console's access token: env or file. Default: env REMEDIATOR_CONSOLE_TOKEN.
	// Unset with the built-in configuration, a one-time token is generated and printed at
	// start; unset otherwise (and no oidc), the console stays off and the log says why.
	Token Secret `yaml:"token"`
	// Principal is who a token holder is, for the audit and for the resource sets: only a
	// principal that may run a flow may replay its dead letters, resume it or change its
	// switches. Default "console-admin".
	Principal string `yaml:"principal"`
	// Groups are the principal's group ids, for resource sets assigned to groups. Default none.
	Groups []string `yaml:"groups"`
	// SessionTTL is how long a sign-in lasts. Default 8h.
	SessionTTL time.Duration `yaml:"sessionTtl"`
	// Window is how far back the overview's counts look. Default 5m.
	Window time.Duration `yaml:"window"`
	// OIDC signs people in with an OpenID Connect provider (the org's Okta). Default: off.
	OIDC ConsoleOIDC `yaml:"oidc"`
}

// ConsoleOIDC is an OpenID Connect web app (authorization code flow). A person signed in this
// way is their login (the email or preferred_username claim) with their groups claim, checked
// against the resource sets like any principal.
type ConsoleOIDC struct {
	// Issuer, e.g. https://example.okta.com or https://example.okta.com/oauth2/default.
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"clientId"`
	// ClientSecret: env or file. Default env REMEDIATOR_CONSOLE_OIDC_SECRET.
	ClientSecret Secret `yaml:"clientSecret"`
	// RedirectURL is the console's callback as registered in the app, ending in
	// /ui/auth/callback, e.g. https://remediator.example.com/ui/auth/callback.
	RedirectURL string `yaml:"redirectUrl"`
}

// Enabled reports whether OIDC sign-in is configured.
func (o ConsoleOIDC) Enabled() bool { return o.Issuer != "" }

// UIConfig links the console to the tools around it.
type UIConfig struct {
	// JaegerURL is the Jaeger UI's base URL; an event's page links its trace there
	// (JaegerURL/trace/TRACE_ID). Default: none (no link).
	JaegerURL string `yaml:"jaegerUrl"`
}

func (c *Config) validateConsole(bad func(where, format string, args ...any)) {
	con := c.Console
	if c.HTTP.Console == nil || !*c.HTTP.Console {
		return
	}
	validateSecretRef(bad, "console.token", con.Token)
	if strings.TrimSpace(con.Principal) == "" {
		bad("console.principal", "is empty")
	}
	if con.SessionTTL < time.Minute {
		bad("console.sessionTtl", "%s is below a minute", con.SessionTTL)
	}
	if con.Window < time.Minute || con.Window > 24*time.Hour {
		bad("console.window", "%s must be between 1m and 24h", con.Window)
	}
	if o := con.OIDC; o.Enabled() {
		if u, err := url.Parse(o.Issuer); err != nil || u.Scheme != "https" && u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" {
			bad("console.oidc.issuer", "%q must be an https URL", o.Issuer)
		}
		if o.ClientID == "" {
			bad("console.oidc.clientId", "is empty")
		}
		validateSecretRef(bad, "console.oidc.clientSecret", o.ClientSecret)
		if !strings.HasSuffix(o.RedirectURL, "/ui/auth/callback") {
			bad("console.oidc.redirectUrl", "%q must end in /ui/auth/callback", o.RedirectURL)
		}
	}
	if j := c.UI.JaegerURL; j != "" {
		if u, err := url.Parse(j); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			bad("ui.jaegerUrl", "%q must be an http(s) URL", j)
		}
	}
}

// ErrConsoleTokenUnset is wrapped by [Config.ResolveConsoleToken] when no token is set.
var ErrConsoleTokenUnset = errors.New("console token not set")

// ResolveConsoleToken reads console.token. When the variable is unset and generate is true
// (the built-in configuration), it makes one up for this run and reports generated; when
// unset otherwise, the error wraps [ErrConsoleTokenUnset]. getenv and readFile default to
// os.Getenv and os.ReadFile.
func (c *Config) ResolveConsoleToken(generate bool, getenv func(string) string, readFile func(string) ([]byte, error)) (token string, generated bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	s := c.Console.Token
	if s.File != "" {
		b, err := readFile(s.File)
		if err != nil {
			return "", false, fmt.Errorf("%s: console.token: read %s: %w", c.Source(), s.File, err)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, false, nil
		}
		return "", false, fmt.Errorf("%s: console.token: %w: file %s is empty", c.Source(), ErrConsoleTokenUnset, s.File)
	}
	if v := strings.TrimSpace(getenv(s.Env)); v != "" {
		return v, false, nil
	}
	if !generate {
		return "", false, fmt.Errorf("%s: console.token: %w: environment variable %s is unset or empty", c.Source(), ErrConsoleTokenUnset, s.Env)
	}
	v, err := generateSecret()
	return v, err == nil, err
}

// ResolveSecret reads a secret reference (env or file); "" when unset or empty.
func ResolveSecret(s Secret, getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if s.File != "" {
		b, err := readFile(s.File)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	return strings.TrimSpace(getenv(s.Env)), nil
}
