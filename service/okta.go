package service

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
)

// This file wires the okta block: one org client per process, whose token cache every flow
// with auth: oauth2 shares (one token, fetched once and refreshed for all of them), and the
// simulator's org, which registers the configured app with the public half of its key.

// OktaClient returns the process's org client for the okta block, with the private key read
// and checked (okta.privateKey through lookupEnv), or nil when the block is not configured.
// It sends nothing. log gets the client's token lines (never a token).
func OktaClient(cfg *config.Config, lookupEnv func(string) (string, bool), log *slog.Logger) (*okta.Client, *okta.Key, error) {
	key, err := cfg.OktaKey(lookupEnv)
	if err != nil || key == nil {
		return nil, nil, err
	}
	o := cfg.Okta
	oc, err := okta.New(okta.Config{
		OrgURL: o.OrgURL, ClientID: o.ClientID, Key: key,
		Logger:            log.With("component", "okta"),
		AssertionLifetime: o.AssertionLifetime, RefreshBefore: o.RefreshBefore, TokenTimeout: o.TokenTimeout,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: okta: %w", cfg.Source(), err)
	}
	return oc, key, nil
}

// flowAuth is the credentials of one configured flow: a Bearer token from the shared org
// client for auth: oauth2, else its client token from src.
func flowAuth(f config.Flow, oc *okta.Client, src flow.TokenSource) (flow.Authorizer, error) {
	if f.Auth != config.FlowAuthOAuth2 {
		return flow.ClientToken{Source: src}, nil
	}
	if oc == nil {
		return nil, fmt.Errorf("flow %q has auth: oauth2 but the okta block is not configured", f.Name)
	}
	return flow.OAuth2{Source: oc.TokenSource(okta.ScopeWorkflowsInvoke)}, nil
}

// SimulatorOrg is the org the simulator plays for the okta block: the configured app (client
// id) with the public half of key registered and every scope the configuration needs granted.
// Nil when the block is not configured.
func SimulatorOrg(cfg *config.Config, key *okta.Key) (*flowsim.OrgConfig, error) {
	if !cfg.Okta.Enabled() || key == nil {
		return nil, nil
	}
	jwk, err := key.PublicJWK()
	if err != nil {
		return nil, fmt.Errorf("okta: public key: %w", err)
	}
	keys, err := flowsim.ParseJWKS(jwk)
	if err != nil {
		return nil, fmt.Errorf("okta: public key: %w", err)
	}
	return &flowsim.OrgConfig{Clients: []flowsim.OAuthClient{{ID: cfg.Okta.ClientID, Keys: keys, Scopes: cfg.OktaScopes()}}}, nil
}

// simulatorOAuthAliases are the simulator flows secured with OAuth 2.0: those a flow with
// auth: oauth2 invokes (its URL's path is /api/flo/{alias}/invoke). A simulated flow has one
// security setting, as in Okta, so the same alias cannot also be called with a client token.
func simulatorOAuthAliases(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	if !cfg.Okta.Enabled() {
		return out
	}
	for _, f := range cfg.Flows {
		if f.Auth != config.FlowAuthOAuth2 {
			continue
		}
		u, err := url.Parse(f.URL)
		if err != nil {
			continue
		}
		if alias, ok := strings.CutPrefix(u.Path, "/api/flo/"); ok {
			if alias, ok = strings.CutSuffix(alias, "/invoke"); ok {
				out[alias] = true
			}
		}
	}
	return out
}
