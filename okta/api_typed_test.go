package okta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
)

func TestTypedCalls(t *testing.T) {
	t.Parallel()
	o := startOrg(t, publicJWK(testRSA(t, 0), kid), func(cfg *flowsim.Config) { cfg.Org.LogsRateLimit = 4 })
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	ctx := context.Background()

	groups, err := c.UserGroups(ctx, "00u-alice")
	if err != nil || len(groups) != 2 || groups[1] != (okta.Group{ID: "00g-all", Type: "OKTA_GROUP", Name: "Everyone"}) {
		t.Errorf("UserGroups() = %+v, %v", groups, err)
	}
	for range 3 { // the same event delivered three times
		if err := c.ClearSessions(ctx, "00u-alice"); err != nil {
			t.Fatal(err)
		}
	}
	if u, _ := o.sim.User("00u-alice"); u.SessionClears != 1 {
		t.Errorf("sessions cleared %d times, want once", u.SessionClears)
	}
	if err := c.SetUserRisk(ctx, "00u-bob", "high"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUserRisk(ctx, "00u-bob", "SEVERE"); err == nil {
		t.Error("SetUserRisk accepted SEVERE")
	}

	base := o.clock.Now().Add(-time.Hour)
	var events []json.RawMessage
	for i := range 7 {
		events = append(events, mustJSON(t, map[string]any{"uuid": fmt.Sprintf("u%d", i), "eventType": "user.risk.detect",
			"published": base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)}))
	}
	if err := o.sim.AddLogEvents(events...); err != nil {
		t.Fatal(err)
	}
	next := okta.LogsPath(okta.LogQuery{Since: base, Filter: `eventType eq "user.risk.detect"`, Limit: 3})
	var got int
	var rl okta.RateLimit
	for range 3 {
		page, n, r, err := c.LogPage(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		got += len(page)
		next, rl = n, r
	}
	if got != 7 || next == "" || rl.Limit != 4 || rl.Remaining != 1 {
		t.Errorf("paged %d events, next %q, rate limit %+v; want 7, a next link to poll, 1 of 4 left", got, next, rl)
	}
	// The poll link returns nothing new, then the endpoint is exhausted: a retryable error
	// whose rate limit says how long to wait, measured from Okta's Date.
	if page, _, _, err := c.LogPage(ctx, next); err != nil || len(page) != 0 {
		t.Fatalf("poll = %d events, %v", len(page), err)
	}
	_, _, _, err = c.LogPage(ctx, next)
	var oe *okta.Error
	if !errors.As(err, &oe) || !errors.Is(err, okta.ErrRateLimited) || oe.RateLimit == nil {
		t.Fatalf("LogPage() error = %v, want ErrRateLimited with a RateLimit", err)
	}
	if w := oe.RateLimit.Wait(time.Now()); w <= 0 || w > 61*time.Second {
		t.Errorf("Wait() = %v, want the rest of the 60 s window", w)
	}
	if oe.StatusCode != http.StatusTooManyRequests || oe.Code != "E0000047" {
		t.Errorf("error = %v", oe)
	}
}

func TestTokenEndpointAnswersThatAreNotTokens(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		status int
		body   string
		kind   error
	}{
		"200 without a token": {200, `{"token_type":"Bearer"}`, okta.ErrTokenResponse},
		"HTML error page":     {404, `<html>no</html>`, okta.ErrTokenResponse},
		"Okta error object":   {400, `{"errorCode":"E0000021","errorSummary":"Bad request. Accept and/or Content-Type headers likely do not match supported values."}`, okta.ErrTokenResponse},
		"rate limited":        {429, `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`, okta.ErrRateLimited},
		"unavailable":         {503, ``, okta.ErrUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			hc := &http.Client{Transport: &http.Transport{}}
			defer hc.CloseIdleConnections()
			c, err := okta.New(okta.Config{OrgURL: srv.URL, ClientID: clientID, Key: mustKey(t, pemPKCS8(t, newECKey(t)), kid), HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.AccessToken(context.Background(), okta.ScopeWorkflowsInvoke)
			if !errors.Is(err, tc.kind) {
				t.Errorf("AccessToken() error = %v, want kind %v", err, tc.kind)
			}
		})
	}
}

func TestNativeActionsAndPolicy(t *testing.T) {
	t.Parallel()
	rule := `{"id":"rul1","name":"High risk","priority":1,"status":"ACTIVE","type":"ENTITY_RISK",` +
		`"conditions":{"people":{"groups":{"exclude":["00g-admins"]}},"entityRisk":{"level":"HIGH"}},` +
		`"actions":{"entityRisk":{"actions":[{"action":"TERMINATE_ALL_SESSIONS"}]}}}`
	o := startOrg(t, publicJWK(testRSA(t, 0), kid), func(cfg *flowsim.Config) {
		cfg.Org.Clients[0].Scopes = append(cfg.Org.Clients[0].Scopes, okta.ScopeGroupsManage, okta.ScopePoliciesRead)
		cfg.Org.EntityRiskRules = []json.RawMessage{json.RawMessage(rule)}
	})
	c := o.client(t, mustKey(t, pemPKCS8(t, testRSA(t, 0)), kid), nil)
	ctx := context.Background()

	if err := c.RemoveFromGroup(ctx, "00g-admins", "00u-alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.ExpirePassword(ctx, "00u-alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.Suspend(ctx, "00u-bob"); err != nil {
		t.Fatal(err)
	}
	if err := c.ExpirePassword(ctx, "00u-bob"); !errors.Is(err, okta.ErrForbidden) {
		t.Errorf("ExpirePassword(suspended) error = %v, want ErrForbidden", err)
	}
	if u, _ := o.sim.User("00u-alice"); u.Status != "PASSWORD_EXPIRED" || len(u.Groups) != 1 {
		t.Errorf("alice = %+v", u)
	}

	id, rules, err := c.EntityRiskRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" || len(rules) != 2 || string(rules[0]) != rule || !strings.Contains(string(rules[1]), `"priority":99`) {
		t.Errorf("EntityRiskRules() = %q, %s", id, rules)
	}
}
