package okta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
)

func TestManagementAPI(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	ctx := context.Background()

	var groups []struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	}
	h, err := c.Do(ctx, http.MethodGet, "/api/v1/users/00u-alice/groups", nil, &groups, okta.ScopeUsersRead)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].ID != "00g-admins" || groups[0].Profile.Name != "Admins" || groups[0].Type != "OKTA_GROUP" {
		t.Errorf("groups = %+v", groups)
	}
	if h.Get("X-Rate-Limit-Limit") == "" || h.Get("X-Rate-Limit-Remaining") == "" || h.Get("X-Rate-Limit-Reset") == "" {
		t.Errorf("rate-limit headers missing: %v", h)
	}

	// Clearing sessions is 204 every time; the user's sessions are cleared once.
	for range 3 {
		if _, err := c.Do(ctx, http.MethodDelete, "/api/v1/users/00u-alice/sessions?oauthTokens=true", nil, nil, okta.ScopeUsersManage); err != nil {
			t.Fatal(err)
		}
	}
	if u, _ := o.sim.User("00u-alice"); u.Sessions != 0 || u.SessionClears != 1 {
		t.Errorf("alice = %+v, want sessions cleared once", u)
	}

	if _, err := c.Do(ctx, http.MethodPost, "/api/v1/users/00u-bob/lifecycle/suspend", nil, nil, okta.ScopeUsersManage); err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(ctx, http.MethodPost, "/api/v1/users/00u-bob/lifecycle/suspend", nil, nil, okta.ScopeUsersManage)
	var oe *okta.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusBadRequest || oe.Code != "E0000001" || oe.ID == "" || len(oe.Causes) != 1 {
		t.Errorf("second suspend error = %#v, want 400 E0000001 with a cause and an errorId", err)
	}

	var risk struct {
		RiskLevel string `json:"riskLevel"`
	}
	h, err = c.Do(ctx, http.MethodPut, "/api/v1/users/00u-bob/risk", map[string]string{"riskLevel": "HIGH"}, &risk, okta.ScopeUserRiskManage)
	if err != nil || risk.RiskLevel != "HIGH" {
		t.Errorf("PUT risk = %+v, %v", risk, err)
	}
	if u, _ := o.sim.User("00u-bob"); u.RiskLevel != "HIGH" || u.Status != "SUSPENDED" {
		t.Errorf("bob = %+v", u)
	}

	_, err = c.Do(ctx, http.MethodGet, "/api/v1/users/00u-nobody/groups", nil, nil, okta.ScopeUsersRead)
	if !errors.Is(err, okta.ErrNotFound) || !strings.Contains(err.Error(), "E0000007") {
		t.Errorf("unknown user error = %v, want ErrNotFound with E0000007", err)
	}

	// A token without the needed scope: 403, and the error names the scope.
	_, err = c.Do(ctx, http.MethodPut, "/api/v1/users/00u-bob/risk", map[string]string{"riskLevel": "LOW"}, nil, okta.ScopeUsersRead)
	if !errors.Is(err, okta.ErrScopeNotGranted) || !strings.Contains(err.Error(), okta.ScopeUserRiskManage) {
		t.Errorf("missing-scope error = %v, want ErrScopeNotGranted naming %s", err, okta.ScopeUserRiskManage)
	}

	// A link to another host never gets the token.
	if _, err := c.Do(ctx, http.MethodGet, "https://evil.example/api/v1/logs", nil, nil, okta.ScopeLogsRead); err == nil {
		t.Error("Do() sent a request to another host")
	}
}

func TestTransportRefreshesOnceOn401(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid))
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	ctx := context.Background()
	put := func() error {
		_, err := c.Do(ctx, http.MethodPut, "/api/v1/users/00u-alice/risk", map[string]string{"riskLevel": "MEDIUM"}, nil, okta.ScopeUserRiskManage)
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	o.sim.RevokeTokens(clientID)
	if err := put(); err != nil { // the body is replayed on the second send
		t.Fatalf("after revocation: %v, want success after one refresh", err)
	}
	if got := o.sim.OrgStats().TokenRequests; got != 2 {
		t.Errorf("token requests = %d, want 2", got)
	}
	// Past the token's expiry the cache fetches a new one before calling.
	o.clock.Advance(2 * time.Hour)
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if got := o.sim.OrgStats().TokenRequests; got != 3 {
		t.Errorf("token requests = %d, want 3", got)
	}
}

func TestSystemLogPaging(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid), func(cfg *flowsim.Config) { cfg.Org.LogsRateLimit = 5 })
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	ctx := context.Background()
	base := o.clock.Now().Add(-time.Hour)
	var events []json.RawMessage
	for i := range 25 {
		et := "user.risk.detect"
		if i%5 == 4 {
			et = "user.session.start"
		}
		events = append(events, mustJSON(t, map[string]any{
			"uuid": fmt.Sprintf("uuid-%02d", i), "eventType": et,
			"published": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano)}))
	}
	if err := o.sim.AddLogEvents(events...); err != nil {
		t.Fatal(err)
	}
	next := "/api/v1/logs?limit=8&filter=" + urlQuery(`eventType sw "user.risk"`) + "&since=" + urlQuery(base.Format(time.RFC3339))
	var seen []string
	var lastRemaining int
	for page := 0; page < 4; page++ {
		var got []struct {
			UUID string `json:"uuid"`
		}
		h, err := c.Do(ctx, http.MethodGet, next, nil, &got, okta.ScopeLogsRead)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			seen = append(seen, e.UUID)
		}
		lastRemaining, _ = strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
		next = nextLink(h)
		if next == "" {
			t.Fatal("a polling request (no until) must always get a next link")
		}
	}
	if len(seen) != 20 || seen[0] != "uuid-00" || seen[19] != "uuid-23" {
		t.Errorf("paged through %d events %v, want the 20 user.risk events in order", len(seen), seen)
	}
	if lastRemaining != 1 {
		t.Errorf("X-Rate-Limit-Remaining = %d after 4 of 5 calls, want 1", lastRemaining)
	}
	if _, err := c.Do(ctx, http.MethodGet, next, nil, nil, okta.ScopeLogsRead); err != nil {
		t.Fatal(err)
	}
	h, err := c.Do(ctx, http.MethodGet, next, nil, nil, okta.ScopeLogsRead)
	var oe *okta.Error
	if !errors.As(err, &oe) || oe.Code != "E0000047" || !oe.Retryable() || h.Get("X-Rate-Limit-Reset") == "" {
		t.Errorf("6th call error = %v, headers %v; want a retryable 429 E0000047 with X-Rate-Limit-Reset", err, h)
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer(" ", "%20", `"`, "%22", ":", "%3A", "+", "%2B")
	return r.Replace(s)
}

func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			if strings.Contains(part, `rel="next"`) {
				u := strings.TrimSpace(part)
				return u[strings.Index(u, "<")+1 : strings.Index(u, ">")]
			}
		}
	}
	return ""
}
