package action_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/remediator/remediator/action"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
)

const (
	clientID = "0oa-actions"
	kid      = "kid-actions"
)

// fakeClock is the clock the simulator, the org client and the invoker share, so that rate
// windows, Date headers and holds are exact.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type org struct {
	sim   *flowsim.Simulator
	clock *fakeClock
	inv   *action.Invoker
	// refuseAll revokes every token of the app before each API call reaches the org, as if
	// the app had lost its grants: even a fresh token is refused.
	refuseAll atomic.Bool
}

// startOrg serves a simulated org over real HTTP, with users in every status the actions
// care about, and returns an action invoker on it.
func startOrg(t *testing.T, apiLimit int, users ...flowsim.User) *org {
	t.Helper()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	key, err := okta.ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), kid)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := flowsim.New(flowsim.Config{Seed: 1, Now: clock.Now, Org: &flowsim.OrgConfig{
		Clients: []flowsim.OAuthClient{{ID: clientID, Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}},
			Scopes: []string{okta.ScopeUsersRead, okta.ScopeUsersManage, okta.ScopeGroupsManage, okta.ScopeUserRiskManage}}},
		Groups:       []flowsim.Group{{ID: "00g-admins", Name: "Admins", Type: "OKTA_GROUP"}, {ID: "00g-ad", Name: "AD", Type: "APP_GROUP"}},
		Users:        users,
		APIRateLimit: apiLimit,
	}})
	if err != nil {
		t.Fatal(err)
	}
	o := &org{sim: sim, clock: clock}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.refuseAll.Load() && r.URL.Path != okta.TokenPath {
			sim.RevokeTokens(clientID)
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	oc, err := okta.New(okta.Config{OrgURL: srv.URL, ClientID: clientID, Key: key, HTTPClient: hc, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := action.New(action.Config{Client: oc, MaxOutputBytes: 64, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	o.inv = inv
	return o
}

// run invokes the action on user, as a new job (an idempotency key of its own).
func (o *org) run(t *testing.T, act, user string, params map[string]string) (*flow.Result, error) {
	t.Helper()
	return o.runKey(t, act, user, params, fmt.Sprintf("job-%d", jobs.Add(1)))
}

var jobs atomic.Int64

func (o *org) runKey(t *testing.T, act, user string, params map[string]string, key string) (*flow.Result, error) {
	t.Helper()
	return o.inv.Invoke(context.Background(), flow.Endpoint{Name: "okta-" + act, Action: act, Params: params},
		flow.Request{Inputs: map[string]any{"userId": user}, IdempotencyKey: key})
}

// TestActionsTakeEffect: each action changes the simulated user as Okta would, and answers
// with Okta's own status and X-Okta-Request-Id.
func TestActionsTakeEffect(t *testing.T) {
	t.Parallel()
	o := startOrg(t, 0, flowsim.User{ID: "00u1", Status: "ACTIVE", Sessions: 3, Groups: []string{"00g-admins"}})
	for _, tt := range []struct {
		act    string
		params map[string]string
		status int
		check  func(u flowsim.User) bool
	}{
		{okta.ActionClearSessions, nil, 204, func(u flowsim.User) bool { return u.Sessions == 0 && u.SessionClears == 1 }},
		{okta.ActionRemoveFromGroup, map[string]string{"groupId": "00g-admins"}, 204, func(u flowsim.User) bool { return len(u.Groups) == 0 }},
		{okta.ActionSetUserRisk, map[string]string{"riskLevel": "high"}, 201, func(u flowsim.User) bool { return u.RiskLevel == "HIGH" }},
		{okta.ActionExpirePassword, nil, 200, func(u flowsim.User) bool { return u.Status == "PASSWORD_EXPIRED" }},
	} {
		res, err := o.run(t, tt.act, "00u1", tt.params)
		if err != nil {
			t.Fatalf("%s: %v", tt.act, err)
		}
		u, _ := o.sim.User("00u1")
		if res.StatusCode != tt.status || !tt.check(u) || res.Note != "" || !strings.HasPrefix(res.ExecutionID, "simreq") {
			t.Errorf("%s: HTTP %d note %q request id %q, user %+v; want HTTP %d, the change made, no note", tt.act, res.StatusCode, res.Note, res.ExecutionID, u, tt.status)
		}
	}
}

// TestAlreadyInEffectSucceeds: an action whose effect already holds is a success with a note,
// whatever Okta answers for it (a refusal for suspend, 204 for sessions and groups); a
// refusal whose effect does not hold stays a permanent failure naming Okta's code.
func TestAlreadyInEffectSucceeds(t *testing.T) {
	t.Parallel()
	o := startOrg(t, 0,
		flowsim.User{ID: "00u-suspended", Status: "SUSPENDED"},
		flowsim.User{ID: "00u-expired", Status: "PASSWORD_EXPIRED"},
		flowsim.User{ID: "00u-gone", Status: "DEPROVISIONED"},
		flowsim.User{ID: "00u-quiet", Status: "ACTIVE"},
	)
	res, err := o.run(t, okta.ActionSuspend, "00u-suspended", nil)
	if err != nil || !strings.Contains(res.Note, "already in effect: the user is already SUSPENDED") || res.StatusCode != 400 {
		t.Errorf("suspend a suspended user: %v, %+v; want success with an already-in-effect note over Okta's 400", err, res)
	}
	// The output keeps Okta's answer, cut at MaxOutputBytes (64 here).
	if !strings.HasPrefix(string(res.Body), `{"errorCode":"E0000001"`) || len(res.Body) != 64 || !res.BodyTruncated {
		t.Errorf("output %q (%d bytes, truncated %v); want Okta's answer cut at 64 bytes", res.Body, len(res.Body), res.BodyTruncated)
	}
	if res, err := o.run(t, okta.ActionExpirePassword, "00u-expired", nil); err != nil {
		t.Errorf("expire an expired password: %v, %+v; want success", err, res)
	}
	if res, err := o.run(t, okta.ActionClearSessions, "00u-quiet", nil); err != nil {
		t.Errorf("clear the sessions of a user without any: %v, %+v; want success", err, res)
	}
	if res, err := o.run(t, okta.ActionRemoveFromGroup, "00u-quiet", map[string]string{"groupId": "00g-admins"}); err != nil {
		t.Errorf("remove from a group the user is not in: %v, %+v; want success", err, res)
	}
	// Suspending a deactivated user is refused and not in effect: permanent, Okta's code kept.
	_, err = o.run(t, okta.ActionSuspend, "00u-gone", nil)
	var fe *flow.Error
	if !errors.As(err, &fe) || fe.Class != flow.ClassPermanent || fe.StatusCode != 400 || fe.Okta == nil || fe.Okta.Code != "E0000001" {
		t.Errorf("suspend a deprovisioned user: %v; want a permanent HTTP 400 carrying E0000001", err)
	}
	// An APP_GROUP membership cannot be removed: permanent 403 E0000006.
	_, err = o.run(t, okta.ActionRemoveFromGroup, "00u-quiet", map[string]string{"groupId": "00g-ad"})
	if !errors.As(err, &fe) || fe.Class != flow.ClassPermanent || fe.Okta == nil || fe.Okta.Code != "E0000006" {
		t.Errorf("remove from an APP_GROUP: %v; want a permanent E0000006", err)
	}
}

// TestSpentWindowHolds: the answer that spends an endpoint's window (X-Rate-Limit-Remaining:
// 0) asks the dispatcher to hold until X-Rate-Limit-Reset (from the answer's Date, plus a
// second, as Okta's SDK waits); a 429 past it is retryable with the same wait, and Okta's
// E0000047.
func TestSpentWindowHolds(t *testing.T) {
	t.Parallel()
	o := startOrg(t, 2, flowsim.User{ID: "00u1", Status: "ACTIVE"}, flowsim.User{ID: "00u2", Status: "ACTIVE"}, flowsim.User{ID: "00u3", Status: "ACTIVE"})
	res, err := o.run(t, okta.ActionClearSessions, "00u1", nil)
	if err != nil || res.Hold != 0 {
		t.Fatalf("first call: %v, hold %v; want success and no hold (1 call left)", err, res.Hold)
	}
	o.clock.Advance(10 * time.Second)
	res, err = o.run(t, okta.ActionClearSessions, "00u2", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The window opened at the first call and lasts a minute: 50 s are left, plus Okta's second.
	if want := 51 * time.Second; res.Hold != want {
		t.Errorf("hold after the window's last call = %v, want %v", res.Hold, want)
	}
	calls := o.sim.OrgCalls()
	if last := calls[len(calls)-1]; last.Remaining != 0 || time.Unix(last.Reset, 0).Sub(o.clock.Now())+time.Second != res.Hold {
		t.Errorf("hold %v does not follow the answer's headers (remaining %d, reset %d)", res.Hold, last.Remaining, last.Reset)
	}
	_, err = o.run(t, okta.ActionClearSessions, "00u3", nil)
	var fe *flow.Error
	if !errors.As(err, &fe) || fe.Class != flow.ClassRetryable || fe.StatusCode != 429 || fe.RetryAfter != 51*time.Second || fe.Okta == nil || fe.Okta.Code != "E0000047" {
		t.Errorf("call past the limit: %v (retry after %v); want retryable 429 E0000047 after 51s", err, fe.RetryAfter)
	}
}

// TestRevokedTokenOneRefreshThenPermanent: a revoked token is refreshed once; when Okta still
// refuses (the app lost its grant), the action fails permanently with Okta's E0000011.
func TestRevokedTokenOneRefreshThenPermanent(t *testing.T) {
	t.Parallel()
	o := startOrg(t, 0, flowsim.User{ID: "00u1", Status: "ACTIVE", Sessions: 1})
	if _, err := o.run(t, okta.ActionClearSessions, "00u1", nil); err != nil {
		t.Fatal(err)
	}
	o.sim.RevokeTokens(clientID)
	if _, err := o.run(t, okta.ActionClearSessions, "00u1", nil); err != nil {
		t.Fatalf("after a revocation: %v; want success after one refresh", err)
	}
	if st := o.sim.OrgStats(); st.TokensIssued != 2 || st.TokensRefused != 1 {
		t.Errorf("tokens issued %d, refused %d; want 2 and 1", st.TokensIssued, st.TokensRefused)
	}
	o.refuseAll.Store(true)
	_, err := o.run(t, okta.ActionClearSessions, "00u1", nil)
	var fe *flow.Error
	if !errors.As(err, &fe) || fe.Class != flow.ClassPermanent || fe.StatusCode != 401 || fe.Okta == nil || fe.Okta.Code != "E0000011" {
		t.Fatalf("refused token: %v; want a permanent 401 carrying E0000011", err)
	}
	if st := o.sim.OrgStats(); st.TokensIssued != 3 || st.TokensRefused != 3 {
		t.Errorf("tokens issued %d, refused %d; want 3 and 3 (exactly one refresh)", st.TokensIssued, st.TokensRefused)
	}
}

// TestOneCallPerIdempotencyKey: the deliveries of one job (one idempotency key) make one call
// to Okta, whether they come at the same time or one after the other; the repeats succeed
// with the first call's answer and a note.
func TestOneCallPerIdempotencyKey(t *testing.T) {
	t.Parallel()
	o := startOrg(t, 0, flowsim.User{ID: "00u1", Status: "ACTIVE", Sessions: 1})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			_, err := o.runKey(t, okta.ActionSuspend, "00u1", nil, "event-1:okta-suspend")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent delivery: %v", err)
		}
	}
	res, err := o.runKey(t, okta.ActionSuspend, "00u1", nil, "event-1:okta-suspend")
	if err != nil || !strings.HasPrefix(res.Note, "duplicate: the action already succeeded for this idempotency key") || res.StatusCode != 200 {
		t.Errorf("later delivery: %v, %+v; want the first call's 200 with a duplicate note", err, res)
	}
	n := 0
	for _, c := range o.sim.OrgCalls() {
		if strings.HasSuffix(c.Path, "/lifecycle/suspend") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d suspend calls for four deliveries of one job, want 1", n)
	}
}
