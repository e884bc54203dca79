package flowsim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/flowsim"
)

// receiver answers event-hook deliveries with the given statuses in turn and records them.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	bodies   []map[string]any
	auth     []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var body map[string]any
	data, _ := io.ReadAll(req.Body)
	_ = json.Unmarshal(data, &body)
	r.bodies = append(r.bodies, body)
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	st := http.StatusNoContent
	if len(r.statuses) > 0 {
		st, r.statuses = r.statuses[0], r.statuses[1:]
	}
	w.WriteHeader(st)
}

func logEvent(uuid, typ string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"uuid":%q,"published":%q,"eventType":%q}`, uuid, time.Now().UTC().Format(time.RFC3339Nano), typ))
}

// The org's event hook delivers the subscribed events it logs in one com.okta.event_hook
// POST, retries once on a 5xx and not on a 4xx, and counts what it lost.
func TestEventHook(t *testing.T) {
	t.Parallel()
	sim, err := flowsim.New(flowsim.Config{Org: &flowsim.OrgConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	rc := &receiver{statuses: []int{http.StatusNoContent, 503, 503, 503, 204, 400}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	if err := sim.SetEventHook(&flowsim.EventHook{URL: srv.URL, Authorization: "hook-secret"}); err != nil {
		t.Fatal(err)
	}
	add := func(events ...json.RawMessage) {
		t.Helper()
		if err := sim.AddLogEvents(events...); err != nil {
			t.Fatal(err)
		}
	}
	add(logEvent("a", "user.risk.detect"), logEvent("b", "user.session.start"), logEvent("c", "user.risk.change")) // 204
	add(logEvent("d", "user.risk.detect"))                                                                         // 503, 503: lost
	add(logEvent("e", "user.risk.detect"))                                                                         // 503, 204
	add(logEvent("f", "user.risk.detect"))                                                                         // 400: lost, no retry
	add(logEvent("g", "user.session.start"))                                                                       // not subscribed: no POST

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) != 6 {
		t.Fatalf("%d POSTs, want 6 (1, 2, 2, 1)", len(rc.bodies))
	}
	first := rc.bodies[0]
	events, _ := first["data"].(map[string]any)["events"].([]any)
	if first["eventType"] != "com.okta.event_hook" || len(events) != 2 || rc.auth[0] != "hook-secret" {
		t.Errorf("first delivery %v (auth %q), want an event hook envelope with the two risk events", first, rc.auth[0])
	}
	if st := sim.OrgStats(); st.HookDeliveries != 2 || st.HookFailures != 2 || st.HookEventsLost != 2 {
		t.Errorf("stats %+v, want 2 deliveries taken, 2 lost with 2 events", st)
	}
}

// The org evaluates its own ENTITY_RISK policy: the first ACTIVE matching rule by priority,
// the catch-all when none.
func TestEvaluateEntityRisk(t *testing.T) {
	t.Parallel()
	sim, err := flowsim.New(flowsim.Config{Org: &flowsim.OrgConfig{
		Groups: []flowsim.Group{{ID: "00gBreakGlass"}},
		Users:  []flowsim.User{{ID: "00uJane"}, {ID: "00uBreak", Groups: []string{"00gBreakGlass"}}},
		EntityRiskRules: []json.RawMessage{
			json.RawMessage(`{"id":"r2","name":"second","priority":2,"status":"ACTIVE","conditions":{"entityRisk":{"level":"ANY"}},"actions":{"entityRisk":{"actions":[]}}}`),
			json.RawMessage(`{"id":"r1","name":"first","priority":1,"status":"ACTIVE","conditions":{"entityRisk":{"level":"HIGH"},"people":{"groups":{"exclude":["00gBreakGlass"]}}},
			  "actions":{"entityRisk":{"actions":[{"action":"RUN_WORKFLOW","workflow":{"id":42}}]}}}`),
			json.RawMessage(`{"id":"r0","name":"off","priority":0,"status":"INACTIVE","actions":{"entityRisk":{"actions":[{"action":"TERMINATE_ALL_SESSIONS"}]}}}`),
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	for _, c := range []struct {
		user, level, rule, action string
		workflow                  int64
	}{
		{"00uJane", "HIGH", "first", "RUN_WORKFLOW", 42},
		{"00uBreak", "HIGH", "second", "", 0},
		{"00uJane", "LOW", "second", "", 0},
		{"00uJane", "NONE", "Catch-all rule", "", 0},
	} {
		v, err := sim.EvaluateEntityRisk(c.user, c.level, "BRUTE_FORCE_ATTACK")
		if err != nil || v.RuleName != c.rule || v.Action != c.action || v.WorkflowID != c.workflow {
			t.Errorf("%s %s: %+v, %v; want rule %q, action %q, workflow %d", c.user, c.level, v, err, c.rule, c.action, c.workflow)
		}
	}
}
