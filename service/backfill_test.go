package service_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/backfill"
	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

const backfillSimToken = "backfill-sim-token"

// riskLogEvent is a user.risk.detect LogEvent of HIGH risk for user.
func riskLogEvent(uuid, user string, published time.Time) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"uuid":%q,"published":%q,"eventType":"user.risk.detect","version":"0","severity":"WARN",
		"displayMessage":"User risk detected","actor":{"id":"0oaSystem","type":"PublicClientApp"},
		"target":[{"id":%q,"type":"User","alternateId":"%s@example.com","displayName":"%s"}],
		"debugContext":{"debugData":{"risk":"{previousLevel=LOW, level=HIGH, detectionName=User reported suspicious activity, reasons=reported, issuer=OKTA}"}}}`,
		uuid, published.UTC().Format(time.RFC3339Nano), user, user, user))
}

// TestBackfillRecoversWhatTheHookLost is issue 10's backfill acceptance, with the service
// in-process and the org (event hook, System Log, groups) a simulator over real HTTP:
//
//   - while remediator runs, 5 events arrive by the hook and are also in the System Log: each
//     runs once;
//   - with remediator stopped, the org logs 52 more risk events and its hook deliveries fail;
//     after a restart the poller recovers them from the cursor it kept in JetStream, and each
//     runs exactly once (the simulator's invocations, by idempotency key);
//   - people.groups is decided on the org's groups: the break-glass user's HIGH event runs
//     nothing, the VIP user's runs the VIP rule's flow (issue 10, "A HIGH risk event for a user
//     in an excluded group runs nothing; for a user in an included group it runs the rule's
//     action").
func TestBackfillRecoversWhatTheHookLost(t *testing.T) {
	dir := t.TempDir()
	keyFile, _ := writeOktaKey(t, dir)
	cfg := servicetest.Config(t, filepath.Join(dir, "nats"))
	cfg.Simulator.Enabled = false
	cfg.Okta = config.OktaConfig{OrgURL: "http://127.0.0.1:1", ClientID: testClientID, KeyID: testKeyID, PrivateKey: config.Secret{File: keyFile},
		SystemLog: config.SystemLogConfig{Backfill: config.BackfillConfig{Enabled: true, Interval: time.Second, Lookback: time.Hour}}}
	cfg.RiskRules = []config.RiskRule{
		{Name: "vip-notify", Priority: 1, Conditions: config.RiskConditions{Level: "HIGH", Groups: config.IncludeExclude{Include: []string{"00gVIP"}}}, Flow: "notify-slack"},
		{Name: "high-risk-clear-sessions", Priority: 2, Conditions: config.RiskConditions{Level: "HIGH", Groups: config.IncludeExclude{Exclude: []string{"00gBreakGlass"}}}, Flow: "clear-sessions"},
	}
	for i := range cfg.ResourceSets {
		if cfg.ResourceSets[i].Name == "entity-risk-remediation" {
			cfg.ResourceSets[i].Rules = []string{"vip-notify", "high-risk-clear-sessions"}
		}
	}

	key, err := cfg.OktaKey(os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	org, err := service.SimulatorOrg(cfg, key) // the app, granted the scopes the configuration needs
	if err != nil {
		t.Fatal(err)
	}
	org.Groups = []flowsim.Group{{ID: "00gEveryone"}, {ID: "00gVIP"}, {ID: "00gBreakGlass"}}
	org.Users = []flowsim.User{
		{ID: "00uJane", Groups: []string{"00gEveryone"}},
		{ID: "00uBreak", Groups: []string{"00gEveryone", "00gBreakGlass"}},
		{ID: "00uVIP", Groups: []string{"00gVIP"}},
	}
	var simFlows []flowsim.Flow
	for _, f := range cfg.Flows {
		simFlows = append(simFlows, flowsim.Flow{Alias: f.Name, Token: backfillSimToken, RateLimit: 1000})
	}
	sim, err := flowsim.New(flowsim.Config{Flows: simFlows, Org: org})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	cfg.Okta.OrgURL = srv.URL
	for i := range cfg.Flows {
		cfg.Flows[i].URL = srv.URL + "/api/flo/" + cfg.Flows[i].Name + "/invoke"
	}
	env := func(k string) (string, bool) {
		switch k {
		case cfg.Simulator.TokenEnv:
			return backfillSimToken, true
		case config.EnvOktaHookSecret:
			return servicetest.OktaHookSecret, true
		case config.EnvISPMWebhookKey:
			return servicetest.ISPMWebhookKey, true
		case config.EnvIngressToken:
			return servicetest.IngressToken, true
		}
		return os.LookupEnv(k)
	}
	hookTo := func(r *servicetest.Running) {
		if err := sim.SetEventHook(&flowsim.EventHook{URL: "http://" + r.Addrs.Ingress + "/hooks/okta", Authorization: servicetest.OktaHookSecret}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now().Add(-10 * time.Minute)
	next := func() time.Time { at = at.Add(time.Millisecond); return at }

	// 1. Running: five events arrive by the hook, and are in the System Log too.
	r1 := servicetest.StartWith(t, cfg, service.Options{LookupEnv: env})
	hookTo(r1)
	var hooked []json.RawMessage
	for i := range 5 {
		hooked = append(hooked, riskLogEvent(fmt.Sprintf("hooked-%02d", i), "00uJane", next()))
	}
	if err := sim.AddLogEvents(hooked...); err != nil {
		t.Fatal(err)
	}
	if st := sim.OrgStats(); st.HookDeliveries != 1 || st.HookFailures != 0 {
		t.Fatalf("org stats %+v: want the hook delivery taken", st)
	}
	testwait.Until(t, "5 clear-sessions runs", func() bool { return len(sim.Invocations("clear-sessions")) >= 5 })
	b1 := r1.Connect(t)
	waitCursorAt(t, b1, at) // the poller has read the hooked events as well
	if err := r1.Stop(); err != nil {
		t.Fatal(err)
	}

	// 2. Stopped: 52 events logged, the hook's deliveries fail.
	var lost []json.RawMessage
	for i := range 50 {
		lost = append(lost, riskLogEvent(fmt.Sprintf("lost-%02d", i), "00uJane", next()))
	}
	lost = append(lost, riskLogEvent("lost-break-glass", "00uBreak", next()), riskLogEvent("lost-vip", "00uVIP", next()))
	for _, e := range lost { // one delivery per event, as Okta sends events far apart
		if err := sim.AddLogEvents(e); err != nil {
			t.Fatal(err)
		}
	}
	if st := sim.OrgStats(); st.HookEventsLost != 52 {
		t.Fatalf("org stats %+v: want the 52 events lost by the hook", st)
	}

	// 3. Restarted: the poller resumes from its cursor.
	r2 := servicetest.StartWith(t, cfg, service.Options{LookupEnv: env})
	b := r2.Connect(t)
	testwait.Until(t, "55 clear-sessions runs and 1 notify-slack run", func() bool {
		return len(sim.Invocations("clear-sessions")) >= 55 && len(sim.Invocations("notify-slack")) >= 1
	}, testwait.Timeout(2*time.Minute))
	testwait.Until(t, "the break-glass user's event skipped", func() bool {
		return slices.ContainsFunc(decoded[status.Record](t, b, broker.StreamStatus, broker.SubjectsStatus), func(r status.Record) bool {
			return r.EventID == "lost-break-glass" && r.Outcome == status.Skipped
		})
	})
	waitCursorAt(t, b, at)
	waitIntakeIdle(t, b)

	perKey := map[string]int{}
	users := map[string]int{}
	for _, alias := range []string{"clear-sessions", "notify-slack"} {
		for _, inv := range sim.Invocations(alias) {
			perKey[inv.IdempotencyKey]++
			if u, ok := inv.Inputs["userId"].(string); ok {
				users[alias+" "+u]++
			}
		}
		if st := sim.Stats(alias); st.MaxExecutionsPerKey > 1 {
			t.Errorf("%s: an idempotency key ran %d times", alias, st.MaxExecutionsPerKey)
		}
	}
	if len(perKey) != 56 {
		t.Errorf("%d idempotency keys invoked, want 56 (5 hooked + 50 lost for Jane, 1 VIP)", len(perKey))
	}
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("idempotency key %s invoked %d times, want once", k, n)
		}
	}
	// The metrics say what the backfill recovered, and that this replica polls.
	_, metrics := get(t, "http://"+r2.Addrs.HTTP+"/metrics")
	for _, want := range []string{`remediator_backfill_events_total{outcome="published"} 52`, `remediator_backfill_leader 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grep(metrics, "remediator_backfill"))
		}
	}
	if users["clear-sessions 00uJane"] != 55 || users["notify-slack 00uVIP"] != 1 || users["clear-sessions 00uBreak"]+users["notify-slack 00uBreak"]+users["clear-sessions 00uVIP"] != 0 {
		t.Errorf("invocations by flow and user: %v; want Jane's 55 clear-sessions, the VIP's one notify-slack, nothing for the break-glass user", users)
	}
}

// waitCursorAt waits until the poller's cursor has reached the event published at last.
func waitCursorAt(t *testing.T, b *broker.Broker, last time.Time) {
	t.Helper()
	kv, err := b.OpenKeyValue(t.Context(), broker.KVBackfill)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the backfill cursor at the last event", func() bool {
		raw, _, err := kv.Get(t.Context(), backfill.CursorKey)
		if err != nil {
			return false
		}
		var c backfill.Cursor
		return json.Unmarshal(raw, &c) == nil && !c.Published.Before(last.Truncate(time.Millisecond))
	}, testwait.Timeout(2*time.Minute))
}

// waitIntakeIdle waits until the intake consumer has nothing pending or unacknowledged.
func waitIntakeIdle(t *testing.T, b *broker.Broker) {
	t.Helper()
	testwait.Until(t, "intake consumer idle", func() bool {
		infos, err := b.ConsumerInfos(t.Context(), broker.StreamEvents)
		if err != nil {
			return false
		}
		for _, ci := range infos {
			if ci.NumPending != 0 || ci.NumAckPending != 0 {
				return false
			}
		}
		return len(infos) > 0
	})
}
