package okta

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RateLimit is what Okta's X-Rate-Limit-* headers say about an endpoint's bucket.
type RateLimit struct {
	// Limit is the ceiling of the window; Remaining the calls left in it. Both are 0 on a
	// concurrency-limit 429.
	Limit, Remaining int
	// Reset is when the window resets (UTC epoch seconds on the wire).
	Reset time.Time
	// Date is the response's Date header, the reference for Reset (zero when absent).
	Date time.Time
}

// ParseRateLimit reads X-Rate-Limit-Limit, -Remaining and -Reset; ok is false when any is
// absent or malformed.
func ParseRateLimit(h http.Header) (rl RateLimit, ok bool) {
	lim, err1 := strconv.Atoi(strings.TrimSpace(h.Get("X-Rate-Limit-Limit")))
	rem, err2 := strconv.Atoi(strings.TrimSpace(h.Get("X-Rate-Limit-Remaining")))
	reset, err3 := strconv.ParseInt(strings.TrimSpace(h.Get("X-Rate-Limit-Reset")), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return RateLimit{}, false
	}
	rl = RateLimit{Limit: lim, Remaining: rem, Reset: time.Unix(reset, 0).UTC()}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		rl.Date = d
	}
	return rl, true
}

// Wait is how long to wait for the window to reset, measured from the response's Date when
// present (so the local clock's skew does not matter) plus one second, as Okta's own SDK
// does; 0 when the reset has passed.
func (rl RateLimit) Wait(now time.Time) time.Duration {
	ref := now
	if !rl.Date.IsZero() {
		ref = rl.Date
	}
	if d := rl.Reset.Sub(ref); d > 0 {
		return d + time.Second
	}
	return 0
}

// Group is a group the user belongs to.
type Group struct {
	ID string `json:"id"`
	// Type is OKTA_GROUP, APP_GROUP or BUILT_IN.
	Type string `json:"type"`
	// Name is profile.name.
	Name string `json:"-"`
}

// UserGroups lists the user's groups (GET /api/v1/users/{id}/groups, scope
// okta.users.read).
func (c *Client) UserGroups(ctx context.Context, userID string) ([]Group, error) {
	var raw []struct {
		Group
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	}
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(userID)+"/groups", nil, &raw, ScopeUsersRead); err != nil {
		return nil, err
	}
	out := make([]Group, 0, len(raw))
	for _, g := range raw {
		g.Group.Name = g.Profile.Name
		out = append(out, g.Group)
	}
	return out, nil
}

// ClearSessions revokes the user's Okta sessions and OAuth tokens (DELETE
// /api/v1/users/{id}/sessions?oauthTokens=true, scope okta.users.manage), Okta's
// TERMINATE_ALL_SESSIONS. A user without sessions is not an error: Okta answers 204 either way.
func (c *Client) ClearSessions(ctx context.Context, userID string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/api/v1/users/"+url.PathEscape(userID)+"/sessions?oauthTokens=true", nil, nil, ScopeUsersManage)
	return err
}

// SetUserRisk sets the user's risk level, HIGH, MEDIUM or LOW (PUT
// /api/v1/users/{id}/risk, scope okta.userRisk.manage).
func (c *Client) SetUserRisk(ctx context.Context, userID, level string) error {
	level = strings.ToUpper(level)
	switch level {
	case "HIGH", "MEDIUM", "LOW":
	default:
		return &Error{Op: "PUT /api/v1/users/{id}/risk", Kind: ErrRequest, Hint: fmt.Sprintf("risk level %q must be HIGH, MEDIUM or LOW", level)}
	}
	_, err := c.Do(ctx, http.MethodPut, "/api/v1/users/"+url.PathEscape(userID)+"/risk", map[string]string{"riskLevel": level}, nil, ScopeUserRiskManage)
	return err
}

// LogQuery selects System Log events.
type LogQuery struct {
	// Since is the first published time included. Required for polling.
	Since time.Time
	// Filter is a System Log filter, such as eventType sw "user.risk".
	Filter string
	// Limit is the page size (1–1000). Default 100.
	Limit int
}

// LogsPath is the first page's path for q, to pass to [Client.LogPage].
func LogsPath(q LogQuery) string {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	v.Set("sortOrder", "ASCENDING")
	return "/api/v1/logs?" + v.Encode()
}

// LogPage fetches one page of the System Log (scope okta.logs.read) from pathOrNext, the
// path LogsPath gives or the next link of the page before. It returns the events as Okta
// sent them, the next link ("" when Okta gave none: a polling query always gets one, to be
// polled again later), and the endpoint's rate limit so the caller can pace itself. The next
// link must point at the org: a link elsewhere is refused rather than given the token.
func (c *Client) LogPage(ctx context.Context, pathOrNext string) (events []json.RawMessage, next string, rl RateLimit, err error) {
	h, err := c.Do(ctx, http.MethodGet, pathOrNext, nil, &events, ScopeLogsRead)
	if h != nil {
		rl, _ = ParseRateLimit(h)
		next = linkNext(h)
	}
	return events, next, rl, err
}

// linkNext finds the rel="next" target in the Link headers.
func linkNext(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">")
		}
	}
	return ""
}

// ExpirePassword makes the user change the password at the next sign-in (POST
// /api/v1/users/{id}/lifecycle/expire_password, scope okta.users.manage).
func (c *Client) ExpirePassword(ctx context.Context, userID string) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(userID)+"/lifecycle/expire_password", nil, nil, ScopeUsersManage)
	return err
}

// Suspend suspends an ACTIVE user (POST /api/v1/users/{id}/lifecycle/suspend, scope
// okta.users.manage). Okta refuses a user in another status; whether that means "already
// in effect" is for the caller to decide (read the user's status).
func (c *Client) Suspend(ctx context.Context, userID string) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(userID)+"/lifecycle/suspend", nil, nil, ScopeUsersManage)
	return err
}

// RemoveFromGroup removes the user from an OKTA_GROUP group (DELETE
// /api/v1/groups/{groupId}/users/{userId}, scope okta.groups.manage).
func (c *Client) RemoveFromGroup(ctx context.Context, groupID, userID string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/api/v1/groups/"+url.PathEscape(groupID)+"/users/"+url.PathEscape(userID), nil, nil, ScopeGroupsManage)
	return err
}

// EntityRiskRules returns the id of the org's ENTITY_RISK policy and its rules as Okta
// sent them (EntityRiskPolicyRule objects, decoded by the policy package), in Okta's order
// (GET /api/v1/policies?type=ENTITY_RISK, then its rules; scope okta.policies.read). An
// org without the policy (no Identity Threat Protection) is ErrNotFound.
func (c *Client) EntityRiskRules(ctx context.Context) (policyID string, rules []json.RawMessage, err error) {
	var policies []struct {
		ID string `json:"id"`
	}
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/policies?type=ENTITY_RISK", nil, &policies, ScopePoliciesRead); err != nil {
		return "", nil, err
	}
	if len(policies) == 0 {
		return "", nil, &Error{Op: "GET /api/v1/policies", Kind: ErrNotFound,
			Hint: "the org has no ENTITY_RISK policy: is Identity Threat Protection enabled?"}
	}
	policyID = policies[0].ID
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/policies/"+url.PathEscape(policyID)+"/rules", nil, &rules, ScopePoliciesRead); err != nil {
		return "", nil, err
	}
	return policyID, rules, nil
}
