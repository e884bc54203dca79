package worker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

// Two replicas share one flow's budget: the simulator enforcing the limit never answers 429.
func TestReplicasShareTheFlowRateLimit(t *testing.T) {
	t.Parallel()
	h := start(t, options{rate: 5})
	h.run() // a second replica
	seed := readFixture(t, "ispm-unused-admin.json")
	const n = 20
	for i := range n {
		h.publish(event.SubjectISPM, withID(t, seed, fmt.Sprintf("evt-rate-%02d", i)))
	}
	for i := range n {
		h.waitStatus(fmt.Sprintf("evt-rate-%02d", i), status.Succeeded, "suspend-okta-account")
	}
	st := h.sim.Stats("suspend-okta-account")
	if st.RateLimited != 0 {
		t.Errorf("two replicas drew %d 429s from a flow limited to 5/s; they must share its budget", st.RateLimited)
	}
	if st.Succeeded != n {
		t.Errorf("%d successes, want %d", st.Succeeded, n)
	}
}

// A 429 is retried after the flow's Retry-After, with the reason in the status.
func TestRateLimitedCallWaitsForRetryAfter(t *testing.T) {
	t.Parallel()
	h := start(t, options{faults: map[string]flowsim.Faults{"suspend-okta-account": {RateLimitRate: 1}}})
	id := "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	r := h.waitStatus(id, status.Retrying, "suspend-okta-account")
	if r.HTTPStatus != 429 || time.Duration(r.Delay) < time.Second || !strings.Contains(r.Why, "429") {
		t.Errorf("retrying status after a 429 = %+v; want HTTP 429, a delay of at least Retry-After (1s) and why", r)
	}
	if err := h.sim.SetFaults("suspend-okta-account", flowsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(id, status.Succeeded, "suspend-okta-account")
}

// A failing flow trips its breaker: its events wait in JetStream instead of hammering it, and
// another flow's events go through meanwhile. Once the flow heals, its events succeed.
func TestCircuitBreakerIsolatesASickFlow(t *testing.T) {
	t.Parallel()
	h := start(t, options{
		faults: map[string]flowsim.Faults{"suspend-okta-account": {ErrorRate: 1}},
		workerConfig: func(c *worker.Config) {
			c.MaxAttempts = 50
			for i := range c.Flows {
				c.Flows[i].Breaker = worker.BreakerConfig{ConsecutiveFailures: 3, Cooldown: time.Second}
			}
		},
	})
	seed := readFixture(t, "ispm-unused-admin.json")
	for i := range 5 {
		h.publish(event.SubjectISPM, withID(t, seed, fmt.Sprintf("evt-sick-%d", i)))
	}
	testwait.Until(t, "breaker opened", func() bool {
		for _, r := range h.statuses() {
			if strings.Contains(r.Why, "circuit breaker") {
				return true
			}
		}
		return false
	})
	// While it rests, another flow is served at once.
	h.publish(event.SubjectISPM, readFixture(t, "ispm-compromised-account.json"))
	h.waitStatus("7c4e1b9d-2a3f-4d8e-b6c5-0e1f2a3b4c5d", status.Succeeded, "clear-sessions")

	calls := h.sim.Stats("suspend-okta-account").Received
	if calls > 12 {
		t.Errorf("the sick flow received %d calls for 5 events; the breaker should have stopped the hammering", calls)
	}
	if err := h.sim.SetFaults("suspend-okta-account", flowsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		h.waitStatus(fmt.Sprintf("evt-sick-%d", i), status.Succeeded, "suspend-okta-account")
	}
}

// High-severity work for a flow goes ahead of the low-severity backlog of the same flow.
func TestHighSeverityOvertakesALowBacklog(t *testing.T) {
	t.Parallel()
	h := start(t, options{rate: 5})
	seed := readFixture(t, "ispm-unused-admin.json")
	const lows = 20
	for i := range lows {
		h.publish(event.SubjectISPM, withField(t, withID(t, seed, fmt.Sprintf("evt-low-%02d", i)), "issueSeverity", "Low"))
	}
	testwait.Until(t, "the backlog started", func() bool { return h.sim.Stats("suspend-okta-account").Received > 0 })
	h.publish(event.SubjectISPM, withField(t, withID(t, seed, "evt-high"), "issueSeverity", "Critical"))
	h.waitStatus("evt-high", status.Succeeded, "suspend-okta-account")
	before := 0
	for _, inv := range h.sim.Invocations("suspend-okta-account") {
		if inv.Inputs["eventId"] == "evt-high" {
			break
		}
		before++
	}
	if before > lows/2 {
		t.Errorf("the critical event was dispatched after %d of %d low ones; it should overtake the backlog", before, lows)
	}
}

func withField(t *testing.T, doc []byte, k, v string) []byte {
	t.Helper()
	return replaceJSON(t, doc, k, v)
}

// A call whose answer never comes (the flow ran; the answer was lost) is retried with the same
// idempotency key and marked outcome unknown; the flow recognises the key and does not run twice.
func TestTimeoutAfterSendIsRetriedWithTheSameKey(t *testing.T) {
	t.Parallel()
	h := start(t, options{
		faults: map[string]flowsim.Faults{"suspend-okta-account": {TimeoutRate: 1, Hang: 10 * time.Second}},
		workerConfig: func(c *worker.Config) {
			c.QuickRetries = 0
			for i := range c.Flows {
				c.Flows[i].Endpoint.Timeout = 500 * time.Millisecond
			}
		},
	})
	id := "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	r := h.waitStatus(id, status.Retrying, "suspend-okta-account")
	if !r.OutcomeUnknown || r.HTTPStatus != 0 || !strings.Contains(r.Why, "outcome unknown") {
		t.Errorf("retrying status after a lost answer = %+v; want outcomeUnknown and why", r)
	}
	if err := h.sim.SetFaults("suspend-okta-account", flowsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	ok := h.waitStatus(id, status.Succeeded, "suspend-okta-account")
	if ok.IdempotencyKey != r.IdempotencyKey {
		t.Errorf("the retry used key %q, the first attempt %q", ok.IdempotencyKey, r.IdempotencyKey)
	}
	st := h.sim.Stats("suspend-okta-account")
	if st.MaxExecutionsPerKey != 1 || st.Duplicates < 1 {
		t.Errorf("simulator stats %+v; want the flow run once and the retry answered as a duplicate", st)
	}
}
