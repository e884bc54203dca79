package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Kinds of failure, wrapped by [Error] so callers can test them with errors.Is.
var (
	// ErrInvalidClient: Okta did not accept the client assertion (wrong client id, key id,
	// or a private key that does not match the public key registered with the app).
	ErrInvalidClient = errors.New("okta: client authentication failed")
	// ErrScopeNotGranted: a requested scope is not granted to the app (token request), or
	// the token lacks the scope an API call needs.
	ErrScopeNotGranted = errors.New("okta: scope not granted")
	// ErrDPoPRequired: the app requires DPoP-bound tokens, which remediator does not send.
	ErrDPoPRequired = errors.New("okta: app requires DPoP")
	// ErrTokenRejected: an API refused the access token (HTTP 401), even after one refresh.
	ErrTokenRejected = errors.New("okta: access token rejected")
	// ErrForbidden: the token is valid but the app may not do this (HTTP 403).
	ErrForbidden = errors.New("okta: forbidden")
	// ErrNotFound: HTTP 404.
	ErrNotFound = errors.New("okta: not found")
	// ErrRateLimited: HTTP 429.
	ErrRateLimited = errors.New("okta: rate limited")
	// ErrUnavailable: Okta could not be reached or answered 5xx.
	ErrUnavailable = errors.New("okta: unavailable")
	// ErrInvalidKey: the private key could not sign.
	ErrInvalidKey = errors.New("okta: private key unusable")
	// ErrTokenResponse: the token endpoint answered something unusable.
	ErrTokenResponse = errors.New("okta: bad token response")
	// ErrNoScopes: a token was asked for no scope.
	ErrNoScopes = errors.New("okta: no scopes requested")
	// ErrRequest: any other refused request (HTTP 4xx).
	ErrRequest = errors.New("okta: request refused")
)

const (
	dpopHint = `turn off "Require Demonstrating Proof of Possession (DPoP) header in token requests" ` +
		`in the Okta admin console under Applications > Applications > (the app) > General > General Settings`
	scopeHint = `: grant it on the app's "Okta API Scopes" tab in the Okta admin console, or remove it from remediator's configuration`
)

// Error is a failed token request or API call, in words an Okta admin can act on. Use
// errors.As to get it; errors.Is matches its Kind (ErrInvalidClient, ErrScopeNotGranted, …).
// It never carries a token, an assertion or key material.
type Error struct {
	// Op is what failed: "token request" or "GET /api/v1/users/{id}/groups".
	Op string
	// StatusCode is the HTTP status; 0 when no response came.
	StatusCode int
	// Kind is one of the Err* sentinels.
	Kind error

	// Okta API error object ({errorCode, errorSummary, errorId, errorCauses}).
	Code    string   // errorCode, such as E0000011
	Summary string   // errorSummary
	ID      string   // errorId, for Okta support
	Causes  []string // errorCauses[].errorSummary

	// OAuth 2.0 error ({error, error_description}), from the token endpoint or from a
	// WWW-Authenticate header.
	OAuthError       string
	OAuthDescription string

	// KeyID is the key id the assertion was signed with, on token-request errors.
	KeyID string
	// Scopes are the scopes concerned: requested but not granted, or required by the API.
	Scopes []string
	// RateLimit is the endpoint's X-Rate-Limit-* state, when the answer carried it; on a
	// 429, RateLimit.Wait says how long to back off.
	RateLimit *RateLimit
	// Header are the response's headers, on errors from [Client.Send] (nil otherwise).
	Header http.Header
	// Hint says what to change.
	Hint string
	// Err is the underlying cause for a failure without a response (network, timeout).
	Err error
}

// Error returns one line: what failed, what Okta said, and what to do.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("okta")
	if e.Op != "" {
		b.WriteString(": " + e.Op)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" || e.Summary != "" {
		b.WriteString(": " + strings.TrimSpace(e.Code+" "+e.Summary))
		if len(e.Causes) > 0 {
			b.WriteString(" (" + strings.Join(e.Causes, "; ") + ")")
		}
	}
	if e.OAuthError != "" {
		b.WriteString(": " + e.OAuthError)
		if e.OAuthDescription != "" {
			b.WriteString(" " + strings.TrimSpace(e.OAuthDescription))
		}
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" — " + e.Hint)
	}
	if e.ID != "" {
		b.WriteString(" [errorId " + e.ID + "]")
	}
	return b.String()
}

// Unwrap returns Kind and Err.
func (e *Error) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Kind, e.Err} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Retryable reports whether trying again later may succeed: rate limits, 5xx and network
// failures. Configuration errors (key, scope, DPoP, 4xx) are not.
func (e *Error) Retryable() bool {
	return e.Kind == ErrRateLimited || e.Kind == ErrUnavailable
}

// tokenError turns a failed token request into an *Error naming the key id and scopes.
func (c *Client) tokenError(err error, scopes []string) *Error {
	e := &Error{Op: "token request", KeyID: c.key.id}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ue *url.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			e.Kind, e.Err = ErrUnavailable, stripURL(err)
			e.Hint = "no answer from " + c.tokenURL + " within " + c.tokenTimeout.String()
		case errors.As(err, &ue):
			e.Kind, e.Err = ErrUnavailable, ue.Err
			e.Hint = "Okta's token endpoint " + c.tokenURL + " could not be reached"
		default:
			// A 2xx answer x/oauth2 could not use (no access_token, not JSON).
			e.Kind, e.Err = ErrTokenResponse, err
			e.Hint = fmt.Sprintf("unexpected answer from %s; is the org URL right?", c.tokenURL)
		}
		return e
	}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
	}
	e.OAuthError, e.OAuthDescription = re.ErrorCode, re.ErrorDescription
	if e.OAuthError == "" {
		// Not an OAuth error object: perhaps Okta's own error object, or an HTML page.
		decodeAPIError(re.Body, e)
	}
	desc := strings.ToLower(e.OAuthDescription)
	switch {
	case e.OAuthError == "invalid_dpop_proof" || e.OAuthError == "use_dpop_nonce" || strings.Contains(desc, "dpop"):
		e.Kind, e.Hint = ErrDPoPRequired, "the app requires DPoP-bound tokens, which remediator does not send: "+dpopHint
	case e.OAuthError == "invalid_client":
		e.Kind = ErrInvalidClient
		e.Hint = fmt.Sprintf("Okta refused the client assertion signed with key id %q for client id %s: "+
			"check that the app's Client Credentials use \"Public key / Private key\", that its public keys "+
			"list a key with KID %q, and that it is the public half of the configured private key", c.key.id, c.clientID, c.key.id)
	case e.OAuthError == "invalid_scope":
		e.Kind, e.Scopes = ErrScopeNotGranted, scopes
		e.Hint = "requested scopes " + strings.Join(scopes, ", ") + scopeHint
	case e.OAuthError == "unauthorized_client":
		e.Kind = ErrInvalidClient
		e.Hint = "the app may not use the client credentials grant: create an API Services app (not a web or native app)"
	case e.StatusCode == http.StatusTooManyRequests:
		e.Kind, e.Hint = ErrRateLimited, "the token endpoint's rate limit was reached; tokens are cached, so this should be rare"
	case e.StatusCode >= 500:
		e.Kind = ErrUnavailable
	default:
		e.Kind = ErrTokenResponse
		if e.OAuthError == "" && e.Code == "" {
			e.Hint = fmt.Sprintf("unexpected answer from %s; is the org URL right?", c.tokenURL)
		}
	}
	return e
}

// stripURL drops a *url.Error's URL, keeping its cause (the message quotes the URL).
func stripURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// apiErrorBody is Okta's error object.
type apiErrorBody struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
	ErrorID      string `json:"errorId"`
	ErrorCauses  []struct {
		ErrorSummary string `json:"errorSummary"`
	} `json:"errorCauses"`
	// OAuth-style errors appear on some endpoints.
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func decodeAPIError(body []byte, e *Error) bool {
	var b apiErrorBody
	if json.Unmarshal(body, &b) != nil {
		return false
	}
	e.Code, e.Summary, e.ID = b.ErrorCode, b.ErrorSummary, b.ErrorID
	for _, c := range b.ErrorCauses {
		if c.ErrorSummary != "" {
			e.Causes = append(e.Causes, c.ErrorSummary)
		}
	}
	if e.OAuthError == "" {
		e.OAuthError, e.OAuthDescription = b.Error, b.ErrorDescription
	}
	return e.Code != "" || e.OAuthError != ""
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// ResponseError reads a failed API response (status not 2xx) into an *Error: Okta's error
// object, the WWW-Authenticate header's OAuth error, and a hint. It consumes and closes the
// body. It returns nil for a 2xx response (leaving the body alone).
func ResponseError(op string, resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	e := &Error{Op: op, StatusCode: resp.StatusCode}
	if rl, ok := ParseRateLimit(resp.Header); ok {
		e.RateLimit = &rl
	}
	decodeAPIError(body, e)
	if werr, desc, scope := parseWWWAuthenticate(resp.Header.Get("WWW-Authenticate")); werr != "" {
		e.OAuthError, e.OAuthDescription = werr, desc
		if scope != "" {
			e.Scopes = strings.Fields(scope)
		}
	}
	switch s := resp.StatusCode; {
	case e.OAuthError == "invalid_dpop_proof" || e.OAuthError == "use_dpop_nonce":
		e.Kind, e.Hint = ErrDPoPRequired, dpopHint
	case e.OAuthError == "insufficient_scope":
		e.Kind = ErrScopeNotGranted
		e.Hint = "the access token lacks a scope this call needs"
		if len(e.Scopes) > 0 {
			e.Hint = "the access token lacks " + strings.Join(e.Scopes, ", ") + scopeHint
		}
	case s == http.StatusUnauthorized:
		e.Kind, e.Hint = ErrTokenRejected, "Okta refused the access token even after a fresh one was fetched: check that the app is active and its scopes are granted"
	case s == http.StatusForbidden:
		e.Kind, e.Hint = ErrForbidden, "the app's token is valid but not allowed to do this: check the app's admin role (Admin roles tab) and granted scopes"
	case s == http.StatusNotFound:
		e.Kind = ErrNotFound
	case s == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
	case s >= 500:
		e.Kind = ErrUnavailable
	default:
		e.Kind = ErrRequest
	}
	return e
}

// parseWWWAuthenticate reads error, error_description and scope from a Bearer challenge,
// such as: Bearer realm="IdpMyAccountAPI", error="insufficient_scope", error_description="…".
func parseWWWAuthenticate(h string) (errCode, desc, scope string) {
	if h == "" {
		return "", "", ""
	}
	_, params, _ := strings.Cut(h, " ")
	for params != "" {
		params = strings.TrimLeft(params, " ,")
		name, rest, ok := strings.Cut(params, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				val, rest = rest[1:], ""
			} else {
				val, rest = rest[1:1+end], rest[2+end:]
			}
		} else {
			val, rest, _ = strings.Cut(rest, ",")
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "error":
			errCode = val
		case "error_description":
			desc = val
		case "scope":
			scope = val
		}
		params = rest
	}
	return errCode, desc, scope
}
