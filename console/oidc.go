package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDC signs people in with an OpenID Connect provider (the org's Okta): the authorization
// code flow with PKCE, state and nonce. The signed-in principal is the email (or
// preferred_username) claim, with the groups claim, checked against the resource sets.
type OIDC struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

// OIDCConfig is the web app registered with the provider.
type OIDCConfig struct {
	Issuer, ClientID, ClientSecret, RedirectURL string
	// HTTPClient reaches the provider. Default http.DefaultClient.
	HTTPClient *http.Client
}

// NewOIDC discovers the provider (its /.well-known/openid-configuration).
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("console: OIDC provider %s: %w", cfg.Issuer, err)
	}
	return &OIDC{
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email", "groups"}},
	}, nil
}

// The round trip's state, nonce and PKCE verifier wait in a short-lived cookie, bound to the
// browser that started the sign-in.
const (
	oidcCookie = "remediator_console_oidc"
	oidcWait   = 10 * time.Minute
)

func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := c.cfg.OIDC
	if o == nil {
		http.NotFound(w, r)
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	next := nextPath(r.URL.Query().Get("next"))
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: strings.Join([]string{state, nonce, verifier, next}, " "), Path: "/ui/auth/",
		HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteLaxMode, MaxAge: int(oidcWait.Seconds())})
	http.Redirect(w, r, o.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := c.cfg.OIDC
	if o == nil {
		http.NotFound(w, r)
		return
	}
	ck, err := r.Cookie(oidcCookie)
	parts := []string{}
	if err == nil {
		parts = strings.Split(ck.Value, " ")
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: "/ui/auth/", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteLaxMode})
	if len(parts) != 4 || !equal(r.URL.Query().Get("state"), parts[0]) {
		c.render(w, r, "login", page{Title: "Sign in", Status: http.StatusBadRequest, Error: "The sign-in could not be completed (its state does not match): start again.", Data: loginData{Next: Prefix}})
		return
	}
	if e := r.URL.Query().Get("error"); e != "" {
		c.render(w, r, "login", page{Title: "Sign in", Status: http.StatusUnauthorized, Error: "The identity provider refused the sign-in: " + e, Data: loginData{Next: Prefix}})
		return
	}
	id, err := o.exchange(r.Context(), r.URL.Query().Get("code"), parts[1], parts[2])
	if err != nil {
		c.log.WarnContext(r.Context(), "console: OIDC sign-in failed", "error", err)
		c.render(w, r, "login", page{Title: "Sign in", Status: http.StatusUnauthorized, Error: "The sign-in failed: " + err.Error(), Data: loginData{Next: Prefix}})
		return
	}
	c.startSession(w, r, id, nextPath(parts[3]))
}

// exchange trades the code for tokens and reads who signed in from the verified ID token.
func (o *OIDC) exchange(ctx context.Context, code, nonce, verifier string) (*Identity, error) {
	tok, err := o.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, err
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return nil, errors.New("the provider sent no ID token")
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if idt.Nonce != nonce {
		return nil, errors.New("the ID token's nonce does not match")
	}
	var claims struct {
		Email             string   `json:"email"`
		PreferredUsername string   `json:"preferred_username"`
		Groups            []string `json:"groups"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	login := claims.PreferredUsername
	if login == "" {
		login = claims.Email
	}
	if login == "" {
		login = idt.Subject
	}
	return &Identity{Principal: login, Groups: claims.Groups, Via: "oidc", Name: login}, nil
}
