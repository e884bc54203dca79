package okta

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Action is one of Okta's native remediation actions: a single management API call on a
// user, named the way remediator's configuration names it (flows[].action).
type Action struct {
	// Name is the configuration's name: clearSessions, suspend, expirePassword,
	// removeFromGroup or setUserRisk.
	Name string
	// Method and Path are the call; Path has {userId} and, for removeFromGroup, {groupId}.
	Method, Path string
	// Scope is the OAuth 2.0 scope the call needs.
	Scope string
	// CheckScope is the scope of the read that tells "already in effect" from a refusal
	// (GET /api/v1/users/{id}); empty when the call's own answer says it.
	CheckScope string
	// Params are the parameters the action requires (flows[].params).
	Params []string
	// Does says what the action does, for documentation and messages.
	Does string
}

// The actions' names.
const (
	ActionClearSessions   = "clearSessions"
	ActionSuspend         = "suspend"
	ActionExpirePassword  = "expirePassword"
	ActionRemoveFromGroup = "removeFromGroup"
	ActionSetUserRisk     = "setUserRisk"
)

// Parameters of the actions.
const (
	ParamGroupID   = "groupId"
	ParamRiskLevel = "riskLevel"
)

// Actions lists every native action, in the order the README documents them.
var Actions = []Action{
	{Name: ActionClearSessions, Method: http.MethodDelete, Path: "/api/v1/users/{userId}/sessions?oauthTokens=true",
		Scope: ScopeUsersManage,
		Does:  "revokes the user's Okta sessions and their OpenID Connect and OAuth tokens (Okta's TERMINATE_ALL_SESSIONS)"},
	{Name: ActionSuspend, Method: http.MethodPost, Path: "/api/v1/users/{userId}/lifecycle/suspend",
		Scope: ScopeUsersManage, CheckScope: ScopeUsersRead,
		Does: "suspends the user (ACTIVE → SUSPENDED): no sign-in; groups and app assignments kept"},
	{Name: ActionExpirePassword, Method: http.MethodPost, Path: "/api/v1/users/{userId}/lifecycle/expire_password",
		Scope: ScopeUsersManage, CheckScope: ScopeUsersRead,
		Does: "expires the password: the user must change it at the next sign-in (PASSWORD_EXPIRED)"},
	{Name: ActionRemoveFromGroup, Method: http.MethodDelete, Path: "/api/v1/groups/{groupId}/users/{userId}",
		Scope: ScopeGroupsManage, Params: []string{ParamGroupID},
		Does: "removes the user from an OKTA_GROUP group"},
	{Name: ActionSetUserRisk, Method: http.MethodPut, Path: "/api/v1/users/{userId}/risk",
		Scope: ScopeUserRiskManage, Params: []string{ParamRiskLevel},
		Does: "sets the user's risk level (HIGH, MEDIUM or LOW) as an admin override"},
}

// LookupAction finds an action by name.
func LookupAction(name string) (Action, bool) {
	i := slices.IndexFunc(Actions, func(a Action) bool { return a.Name == name })
	if i < 0 {
		return Action{}, false
	}
	return Actions[i], true
}

// ActionNames lists the actions' names.
func ActionNames() []string {
	out := make([]string, len(Actions))
	for i, a := range Actions {
		out[i] = a.Name
	}
	return out
}

// Scopes are the scopes the action needs: its call's and its check's.
func (a Action) Scopes() []string {
	if a.CheckScope == "" {
		return []string{a.Scope}
	}
	return []string{a.Scope, a.CheckScope}
}

// Response is a management API answer as it came: status, headers, the start of the body.
type Response struct {
	StatusCode int
	Header     http.Header
	// Body is the first maxBody bytes of the body.
	Body []byte
	// Truncated is true when the body was longer.
	Truncated bool
}

// RateLimit reads the response's X-Rate-Limit-* headers; ok is false without them.
func (r *Response) RateLimit() (RateLimit, bool) { return ParseRateLimit(r.Header) }

// Send calls the management API like [Client.Do] but returns the answer as it came (status,
// headers, at most maxBody bytes of body) instead of decoding it, for callers that keep
// Okta's output. A non-2xx answer is an [*Error] (with Header set); the Response is returned
// with it whenever one came.
func (c *Client) Send(ctx context.Context, method, path string, in any, maxBody int, scopes ...string) (*Response, error) {
	op := method + " " + pathOnly(path)
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return nil, &Error{Op: op, Kind: ErrRequest, Hint: "Send takes a path of the org, not a URL"}
	}
	resp, err := c.send(ctx, op, method, c.org.String()+path, in, scopes)
	if err != nil {
		return nil, err
	}
	out := &Response{StatusCode: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		out.Body, out.Truncated = capBody(b, maxBody)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		err := ResponseError(op, resp)
		var oe *Error
		if errors.As(err, &oe) {
			oe.Header = resp.Header
		}
		return out, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, int64(max(maxBody, 0))+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	out.Body, out.Truncated = capBody(b, maxBody)
	return out, nil
}

func capBody(b []byte, n int) ([]byte, bool) {
	n = max(n, 0)
	if len(b) > n {
		return b[:n], true
	}
	return b, false
}

// UserStatus reads the user's status (GET /api/v1/users/{id}, scope okta.users.read):
// ACTIVE, SUSPENDED, PASSWORD_EXPIRED, DEPROVISIONED, … It is how an action tells "already
// in effect" from a refusal.
func (c *Client) UserStatus(ctx context.Context, userID string) (string, error) {
	var u struct {
		Status string `json:"status"`
	}
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(userID), nil, &u, ScopeUsersRead); err != nil {
		return "", err
	}
	return u.Status, nil
}
