package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"time"
)

// Environment variables the ingress secrets are read from unless the configuration names others.
const (
	EnvOktaHookSecret   = "REMEDIATOR_OKTA_HOOK_SECRET"
	EnvISPMWebhookKey   = "REMEDIATOR_ISPM_WEBHOOK_KEY"
	EnvIngressToken     = "REMEDIATOR_INGRESS_TOKEN"
	ingressOff          = "off"
	defaultIngressAddr  = "127.0.0.1:8081"
	defaultHookBatch    = 4 << 20 // 4 MiB: Okta batches events; each LogEvent is a few KiB
	defaultISPMHeader   = "X-API-Key"
	defaultPublishWait  = 2 * time.Second
	defaultOktaSource   = "okta-event-hook"
	defaultISPMSource   = "ispm-webhook"
	defaultTokenSource  = "ingress-token"
	minIngressBodyBytes = 1024
)

// headerNameRE is RFC 9110's token, the syntax of a header field name.
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// IngressConfig configures the public HTTP listener that Okta (event hooks, the ISPM webhook)
// and detectors send events to. It is separate from the admin listener (http.addr), because
// only the ingress faces Okta. Every secret is a reference (env or file); values never appear
// in the configuration. [Config.ResolveIngressSecrets] reads them.
type IngressConfig struct {
	// Addr to listen on. Default "127.0.0.1:8081"; "off" disables the ingress. Okta must reach
	// it over HTTPS: set TLS, or put a TLS-terminating reverse proxy in front.
	Addr string `yaml:"addr"`
	// TLS serves HTTPS with this certificate and key (PEM files). Default: none (plain HTTP).
	TLS IngressTLS `yaml:"tls"`
	// PublishTimeout bounds how long a request waits for JetStream to acknowledge its events
	// before it is answered 503. Default 2s, under the 3s Okta waits for an event hook.
	PublishTimeout time.Duration `yaml:"publishTimeout"`
	// Okta configures POST /hooks/okta, the Okta event hook.
	Okta IngressOkta `yaml:"okta"`
	// ISPM configures POST /hooks/ispm, the ISPM outbound webhook.
	ISPM IngressISPM `yaml:"ispm"`
	// Tokens are the bearer tokens of POST /v1/events/{ispm,itp}. Default: one, from
	// $REMEDIATOR_INGRESS_TOKEN, principal "ingress-token".
	Tokens []IngressToken `yaml:"tokens"`
}

// IngressTLS names the ingress certificate and key; both or neither.
type IngressTLS struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// IngressOkta configures the Okta event hook endpoint.
type IngressOkta struct {
	// Secrets accepted in the Authorization header, as configured on the event hook. Several
	// may be listed at once to rotate without downtime. Default: one, from
	// $REMEDIATOR_OKTA_HOOK_SECRET.
	Secrets []Secret `yaml:"secrets"`
	// MaxBatchBytes caps the body of one delivery, which batches many LogEvents. Default
	// 4194304 (4 MiB). Each LogEvent in it is still held to limits.maxEventBytes.
	MaxBatchBytes int64 `yaml:"maxBatchBytes"`
	// Principal is the Remediator-Principal the ingress sets on the events. Default
	// "okta-event-hook". (An entity-risk event's principal is the rule that routes it.)
	Principal string `yaml:"principal"`
}

// IngressISPM configures the ISPM webhook endpoint. ISPM sends its API key either in a header
// or as a query parameter, as set in ISPM's outbound integration.
type IngressISPM struct {
	// Header carrying the API key. Default "X-API-Key"; "" with QueryParam set accepts only
	// the query parameter.
	Header string `yaml:"header"`
	// QueryParam carrying the API key. Default: none (query strings end up in proxy logs).
	QueryParam string `yaml:"queryParam"`
	// Keys accepted (several for rotation). Default: one, from $REMEDIATOR_ISPM_WEBHOOK_KEY.
	Keys []Secret `yaml:"keys"`
	// Principal is the Remediator-Principal the ingress sets on the issues; assign it a
	// resource set. Default "ispm-webhook".
	Principal string `yaml:"principal"`
}

// IngressToken is one bearer token of the publish API and the principal it authenticates.
type IngressToken struct {
	Secret `yaml:",inline"`
	// Principal is the Remediator-Principal set on events sent with this token; assign it a
	// resource set. Default "ingress-token".
	Principal string `yaml:"principal"`
}

// Enabled reports whether the ingress listener runs.
func (c *IngressConfig) Enabled() bool { return c.Addr != ingressOff }

// SetDefaults fills every zero field with its documented default.
func (c *IngressConfig) SetDefaults() {
	setString(&c.Addr, defaultIngressAddr)
	setDuration(&c.PublishTimeout, defaultPublishWait)
	if c.Okta.MaxBatchBytes == 0 {
		c.Okta.MaxBatchBytes = defaultHookBatch
	}
	if len(c.Okta.Secrets) == 0 {
		c.Okta.Secrets = []Secret{{Env: EnvOktaHookSecret}}
	}
	setString(&c.Okta.Principal, defaultOktaSource)
	if c.ISPM.Header == "" && c.ISPM.QueryParam == "" {
		c.ISPM.Header = defaultISPMHeader
	}
	if len(c.ISPM.Keys) == 0 {
		c.ISPM.Keys = []Secret{{Env: EnvISPMWebhookKey}}
	}
	setString(&c.ISPM.Principal, defaultISPMSource)
	if len(c.Tokens) == 0 {
		c.Tokens = []IngressToken{{Secret: Secret{Env: EnvIngressToken}}}
	}
	for i := range c.Tokens {
		setString(&c.Tokens[i].Principal, defaultTokenSource)
	}
}

// validate reports every problem of the ingress section through bad.
func (c *IngressConfig) validate(bad func(where, format string, args ...any)) {
	if !c.Enabled() {
		return
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("ingress.addr", "%q is not host:port or off: %v", c.Addr, err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("ingress.tls", "certFile and keyFile must be set together")
	}
	if c.PublishTimeout <= 0 || c.PublishTimeout >= 3*time.Second {
		bad("ingress.publishTimeout", "%s must be above 0 and below the 3s Okta waits for an event hook", c.PublishTimeout)
	}
	if c.Okta.MaxBatchBytes < minIngressBodyBytes {
		bad("ingress.okta.maxBatchBytes", "%d is below %d", c.Okta.MaxBatchBytes, minIngressBodyBytes)
	}
	for i, s := range c.Okta.Secrets {
		validateSecretRef(bad, fmt.Sprintf("ingress.okta.secrets[%d]", i), s)
	}
	for i, s := range c.ISPM.Keys {
		validateSecretRef(bad, fmt.Sprintf("ingress.ispm.keys[%d]", i), s)
	}
	for i, t := range c.Tokens {
		where := fmt.Sprintf("ingress.tokens[%d]", i)
		validateSecretRef(bad, where, t.Secret)
		validateSourcePrincipal(bad, where+".principal", t.Principal)
	}
	if c.ISPM.Header != "" && !headerNameRE.MatchString(c.ISPM.Header) {
		bad("ingress.ispm.header", "%q is not a valid HTTP header name", c.ISPM.Header)
	}
	validateSourcePrincipal(bad, "ingress.okta.principal", c.Okta.Principal)
	validateSourcePrincipal(bad, "ingress.ispm.principal", c.ISPM.Principal)
}

func validateSecretRef(bad func(where, format string, args ...any), where string, s Secret) {
	if (s.Env == "") == (s.File == "") {
		bad(where, "needs exactly one of env or file")
	}
}

func validateSourcePrincipal(bad func(where, format string, args ...any), where, p string) {
	switch {
	case strings.TrimSpace(p) == "":
		bad(where, "is empty")
	case strings.HasPrefix(p, RulePrincipalPrefix):
		bad(where, "%q: the %s prefix is reserved for entity-risk rules", p, RulePrincipalPrefix)
	}
}

// IngressSecrets are the resolved secret values of the ingress. Never log them.
type IngressSecrets struct {
	OktaSecrets []string
	ISPMKeys    []string
	Tokens      []ResolvedToken
	// Generated lists the secrets made up for this process because their environment
	// variable was unset (built-in configuration only). Print them once with [IngressSecrets.Announce].
	Generated []GeneratedSecret
}

// ResolvedToken is a publish-API bearer token and the principal it authenticates.
type ResolvedToken struct {
	Value     string
	Principal string
}

// GeneratedSecret is a secret generated for one run.
type GeneratedSecret struct {
	// Key is the configuration key, e.g. "ingress.okta.secrets[0]".
	Key string
	// Env is the environment variable that, set, would have supplied it.
	Env   string
	Value string
}

// ErrIngressSecretUnset is wrapped by [Config.ResolveIngressSecrets] when a secret a production
// configuration needs is not set.
var ErrIngressSecretUnset = errors.New("ingress secret not set")

// ResolveIngressSecrets reads every ingress secret. A secret referring to an environment
// variable that is unset or empty is generated when generate is true (the built-in dev
// configuration: the service passes true only when no --config was given) and listed in
// Generated, and otherwise an error wrapping [ErrIngressSecretUnset] names it, so that a
// production configuration refuses to start. A file that cannot be read or is empty is always
// an error. getenv and readFile default to os.Getenv and os.ReadFile. With the ingress off it
// returns nil, nil.
func (c *Config) ResolveIngressSecrets(generate bool, getenv func(string) string, readFile func(string) ([]byte, error)) (*IngressSecrets, error) {
	in := &c.Ingress
	if !in.Enabled() {
		return nil, nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	out := &IngressSecrets{}
	generated := map[string]string{} // env → value, so one variable named twice gets one value
	var errs []error
	resolve := func(key string, s Secret) string {
		if s.File != "" {
			b, err := readFile(s.File)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: read %s: %w", c.Source(), key, s.File, err))
				return ""
			}
			v := strings.TrimSpace(string(b))
			if v == "" {
				errs = append(errs, fmt.Errorf("%s: %s: %w: file %s is empty", c.Source(), key, ErrIngressSecretUnset, s.File))
			}
			return v
		}
		if v := strings.TrimSpace(getenv(s.Env)); v != "" {
			return v
		}
		if !generate {
			errs = append(errs, fmt.Errorf("%s: %s: %w: environment variable %s is unset or empty", c.Source(), key, ErrIngressSecretUnset, s.Env))
			return ""
		}
		if v, ok := generated[s.Env]; ok {
			return v
		}
		v, err := generateSecret()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: generate a value for %s: %w", key, s.Env, err))
			return ""
		}
		generated[s.Env] = v
		out.Generated = append(out.Generated, GeneratedSecret{Key: key, Env: s.Env, Value: v})
		return v
	}
	for i, s := range in.Okta.Secrets {
		out.OktaSecrets = append(out.OktaSecrets, resolve(fmt.Sprintf("ingress.okta.secrets[%d]", i), s))
	}
	for i, s := range in.ISPM.Keys {
		out.ISPMKeys = append(out.ISPMKeys, resolve(fmt.Sprintf("ingress.ispm.keys[%d]", i), s))
	}
	for i, t := range in.Tokens {
		out.Tokens = append(out.Tokens, ResolvedToken{Value: resolve(fmt.Sprintf("ingress.tokens[%d]", i), t.Secret), Principal: t.Principal})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Announce prints each generated secret once, with the variable that would set it, so that it
// can be pasted into Okta. Write it to the terminal, not to a log shipped elsewhere.
func (s *IngressSecrets) Announce(w io.Writer) error {
	if s == nil {
		return nil
	}
	for _, g := range s.Generated {
		if _, err := fmt.Fprintf(w, "ingress: generated %s for this run (%s is unset): %s\n", g.Key, g.Env, g.Value); err != nil {
			return err
		}
	}
	return nil
}

// generateSecret returns 32 random bytes, base64url without padding (43 characters).
func generateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
