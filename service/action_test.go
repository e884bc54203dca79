package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// The native action flows the tests configure, each run by the ISPM issue titled "Act <name>".
var testActions = []config.Flow{
	{Name: "okta-clear-sessions", Action: config.ActionClearSessions},
	{Name: "okta-suspend", Action: config.ActionSuspend},
	{Name: "okta-expire-password", Action: config.ActionExpirePassword},
	{Name: "okta-remove-admin", Action: config.ActionRemoveFromGroup, Params: map[string]string{"groupId": "00g-admins"}},
	{Name: "okta-risk-high", Action: config.ActionSetUserRisk, Params: map[string]string{"riskLevel": "HIGH"}},
}

// actionService starts the service with the native action flows on a simulated org of its
// own (over real HTTP) holding users; the entity-risk rule for HIGH risk is Okta's
// TERMINATE_ALL_SESSIONS, which names no flow and so runs the clearSessions one.
func actionService(t *testing.T, concurrency int, org func(*flowsim.OrgConfig), users ...flowsim.User) (*servicetest.Running, *flowsim.Simulator, *broker.Broker) {
	t.Helper()
	dir := t.TempDir()
	keyFile, _ := writeOktaKey(t, dir)
	cfg := servicetest.Config(t, filepath.Join(dir, "nats"))
	cfg.Okta = config.OktaConfig{OrgURL: "http://127.0.0.1:1", ClientID: testClientID, KeyID: testKeyID, PrivateKey: config.Secret{File: keyFile}}
	var names []string
	for _, f := range testActions {
		f.Timeout, f.Concurrency = 5*time.Second, concurrency
		cfg.Flows = append(cfg.Flows, f)
		cfg.Routes = append(cfg.Routes, config.Route{Name: f.Name, Match: config.IssueMatch{Titles: []string{"Act " + f.Name}}, Flows: []string{f.Name}})
		names = append(names, f.Name)
	}
	for i := range cfg.RiskRules {
		if cfg.RiskRules[i].Conditions.Level == "HIGH" {
			cfg.RiskRules[i].Flow, cfg.RiskRules[i].Action = "", config.RiskActionTerminateAllSessions
		}
	}
	for i := range cfg.ResourceSets {
		cfg.ResourceSets[i].Flows = append(cfg.ResourceSets[i].Flows, names...)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	key, err := cfg.OktaKey(os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := service.SimulatorOrg(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	oc.Users = users
	oc.Groups = []flowsim.Group{{ID: "00g-admins", Name: "Admins"}}
	if org != nil {
		org(oc)
	}
	sim, err := flowsim.New(flowsim.Config{Org: oc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	cfg.Okta.OrgURL = srv.URL
	svc := servicetest.Start(t, cfg, nil)
	return svc, sim, connect(t, svc)
}

// publishAs publishes doc (an event document) with its eventId set to id, as delivery n of
// the event: each delivery has its own message id, so JetStream stores all of them, as it
// would a detector's (or an event hook's) redelivery.
func publishAs(t *testing.T, b *broker.Broker, doc map[string]any, id string, n int) {
	t.Helper()
	doc["eventId"] = id
	data, _ := json.Marshal(doc)
	if _, err := publish.New(b, nil).Publish(context.Background(), data, publish.Options{MsgID: fmt.Sprintf("%s#%d", id, n)}); err != nil {
		t.Fatal(err)
	}
}

var pendingRE = regexp.MustCompile(`(?m)^remediator_consumer_pending\{[^}]*\} ([0-9.e+]+)$`)

// drained waits until every consumer has no message left: each delivery of each event has
// been handled (a duplicate leaves no new status to wait for).
func drained(t *testing.T, svc *servicetest.Running) {
	t.Helper()
	testwait.Until(t, "every consumer drained", func() bool {
		_, m := get(t, "http://"+svc.Addrs.HTTP+"/metrics")
		series := pendingRE.FindAllStringSubmatch(m, -1)
		if len(series) == 0 {
			return false
		}
		for _, s := range series {
			if s[1] != "0" {
				return false
			}
		}
		return true
	})
}

// TestNativeActionsRunOnce is issue 10's acceptance for native actions: each action, run
// through the whole service over real HTTP against the simulated org, changes the user once
// although its event is delivered three times (an entity-risk event for clearSessions, ISPM
// issues for the others), succeeds with Okta's answer kept in the status (output, headers,
// X-Okta-Request-Id as the execution id), and an action already in effect (suspending a
// suspended user) succeeds with a note.
func TestNativeActionsRunOnce(t *testing.T) {
	// One user per action, so that no action stands in another's way (a suspended user's
	// password cannot be expired), and one already suspended.
	users := []flowsim.User{{ID: "00u-already", Status: "SUSPENDED"}}
	for _, f := range testActions {
		users = append(users, flowsim.User{ID: "00u-" + f.Name, Status: "ACTIVE", Sessions: 2, Groups: []string{"00g-admins"}})
	}
	svc, sim, b := actionService(t, 2, nil, users...)
	statuses := servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)

	var ispm, itp map[string]any
	if err := json.Unmarshal(readSeed(t), &ispm); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../examples/itp-high-risk.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &itp); err != nil {
		t.Fatal(err)
	}
	itp["userId"] = "00u-okta-clear-sessions"
	var ids []string
	for _, f := range testActions {
		ids = append(ids, "act-"+f.Name)
	}
	for n := 1; n <= 3; n++ {
		publishAs(t, b, itp, "act-okta-clear-sessions", n)
		for _, f := range testActions[1:] {
			ispm["issueTitle"], ispm["entityIdInService"] = "Act "+f.Name, "00u-"+f.Name
			publishAs(t, b, ispm, "act-"+f.Name, n)
		}
	}
	ispm["entityIdInService"], ispm["issueTitle"] = "00u-already", "Act okta-suspend"
	publishAs(t, b, ispm, "act-already-suspended", 1)
	ids = append(ids, "act-already-suspended")

	testwait.Until(t, "every event's final status", func() bool {
		recs := statusRecords(t, b)
		for _, id := range ids {
			if _, ok := terminal(recs, id); !ok {
				return false
			}
		}
		return true
	}, testwait.WakeOn(statuses))
	drained(t, svc)

	recs := statusRecords(t, b)
	for _, id := range ids {
		r, _ := terminal(recs, id)
		if r.Outcome != status.Succeeded {
			t.Errorf("%s: %s %s (%s), want succeeded", id, r.Outcome, r.Reason, r.Error)
			continue
		}
		if r.ExecutionID == "" || r.ResponseHeaders["X-Okta-Request-Id"] == nil || r.ResponseHeaders["X-Rate-Limit-Remaining"] == nil {
			t.Errorf("%s: execution id %q, headers %v; want Okta's request id and rate-limit headers kept", id, r.ExecutionID, r.ResponseHeaders)
		}
	}
	if r, _ := terminal(recs, "act-already-suspended"); !strings.HasPrefix(r.Why, "already in effect: the user is already SUSPENDED") ||
		r.HTTPStatus != 400 || !strings.Contains(r.Output, "Cannot suspend a user that is not active") {
		t.Errorf("already suspended: why %q, HTTP %d, output %q; want success noting the effect held, with Okta's answer", r.Why, r.HTTPStatus, r.Output)
	}
	if r, _ := terminal(recs, "act-okta-risk-high"); r.HTTPStatus != 201 || !strings.Contains(r.Output, `"riskLevel":"HIGH"`) {
		t.Errorf("setUserRisk: HTTP %d, output %q; want Okta's 201 answer as output", r.HTTPStatus, r.Output)
	}

	after := map[string]func(u flowsim.User) bool{
		"okta-clear-sessions":  func(u flowsim.User) bool { return u.Sessions == 0 && u.SessionClears == 1 },
		"okta-suspend":         func(u flowsim.User) bool { return u.Status == "SUSPENDED" && u.Suspends == 1 },
		"okta-expire-password": func(u flowsim.User) bool { return u.Status == "PASSWORD_EXPIRED" },
		"okta-remove-admin":    func(u flowsim.User) bool { return len(u.Groups) == 0 },
		"okta-risk-high":       func(u flowsim.User) bool { return u.RiskLevel == "HIGH" },
	}
	for name, ok := range after {
		if u, _ := sim.User("00u-" + name); !ok(u) {
			t.Errorf("%s: user after the action: %+v", name, u)
		}
	}
	// Each action's call reached Okta exactly once for its three deliveries.
	calls := map[string]int{}
	for _, c := range sim.OrgCalls() {
		if c.Method != http.MethodGet {
			calls[c.Method+" "+c.Path]++
		}
	}
	for _, want := range []string{
		"DELETE /api/v1/users/00u-okta-clear-sessions/sessions",
		"POST /api/v1/users/00u-okta-suspend/lifecycle/suspend",
		"POST /api/v1/users/00u-okta-expire-password/lifecycle/expire_password",
		"DELETE /api/v1/groups/00g-admins/users/00u-okta-remove-admin",
		"PUT /api/v1/users/00u-okta-risk-high/risk",
	} {
		if calls[want] != 1 {
			t.Errorf("%s: %d calls for three deliveries, want 1 (all calls: %v)", want, calls[want], calls)
		}
	}
}

// TestSpentOktaWindowHoldsTheAction: when Okta's answer says the endpoint's window is spent
// (X-Rate-Limit-Remaining: 0), the action's next call waits for X-Rate-Limit-Reset, although
// its own rateLimit would allow it at once: Okta is never called past its limit (no 429), and
// the simulator's recorded call times show no call before the reset its header announced.
func TestSpentOktaWindowHoldsTheAction(t *testing.T) {
	// Concurrency 1: a call starts only once the one before it has answered, so that the
	// answer's headers can keep it from being made (calls already in flight when a window is
	// spent get Okta's 429, which waits for the same reset).
	_, sim, b := actionService(t, 1, func(o *flowsim.OrgConfig) { o.APIRateLimit, o.APIRateWindow = 1, 2*time.Second },
		flowsim.User{ID: "00u-a", Status: "ACTIVE", Sessions: 1}, flowsim.User{ID: "00u-b", Status: "ACTIVE", Sessions: 1})
	statuses := servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)
	data, err := os.ReadFile("../examples/itp-high-risk.json")
	if err != nil {
		t.Fatal(err)
	}
	var itp map[string]any
	if err := json.Unmarshal(data, &itp); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"00u-a", "00u-b"} {
		itp["userId"] = user
		publishAs(t, b, itp, "hold-"+user, 1)
	}
	testwait.Until(t, "both events' final status", func() bool {
		recs := statusRecords(t, b)
		_, a := terminal(recs, "hold-00u-a")
		_, bb := terminal(recs, "hold-00u-b")
		return a && bb
	}, testwait.WakeOn(statuses))
	var calls []flowsim.OrgCall
	for _, c := range sim.OrgCalls() {
		if c.Endpoint == "users.sessions" {
			calls = append(calls, c)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("session calls: %+v; want 2 (one per event, none refused)", calls)
	}
	first, second := calls[0], calls[1]
	if first.Status != http.StatusNoContent || second.Status != http.StatusNoContent || first.Remaining != 0 {
		t.Fatalf("calls: %+v; want two 204s, the first spending the window", calls)
	}
	if reset := time.Unix(first.Reset, 0); second.At.Before(reset) {
		t.Errorf("second call at %s, before the reset %s the first answer announced", second.At.Format(time.RFC3339Nano), reset.Format(time.RFC3339Nano))
	}
}
