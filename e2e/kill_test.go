package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/status"
)

// A worker killed with SIGKILL in the middle of flow calls loses nothing: its unacked events
// are redelivered to another worker and each reaches exactly one terminal state, and no flow
// runs twice for one event (the retry carries the same idempotency key).
func TestKilledWorkerLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{faults: map[string]flowsim.Faults{"suspend-okta-account": {Latency: 400 * time.Millisecond}}})
	victim := s.startWorker()

	const n = 24
	s.publishEvents(t, n, "evt-kill")
	s.waitSim("flow calls in flight", 20*time.Second, func() bool { return s.sim.Stats("suspend-okta-account").Received >= 3 })
	victim.kill(t)
	killedAt := s.sim.Stats("suspend-okta-account")

	s.startWorker() // the survivor
	s.checkExactlyOnce(t, n, 60*time.Second)
	st := s.sim.Stats("suspend-okta-account")
	t.Logf("at the kill the flow had received %d calls (%d executed); afterwards %d calls, %d duplicates answered from the flow's idempotency table",
		killedAt.Received, killedAt.Executed, st.Received, st.Duplicates)
}

// publishEvents publishes n copies of the unused-admin example (routed to suspend-okta-account
// only) with event ids prefix-00 … prefix-(n-1).
func (s *stack) publishEvents(t testing.TB, n int, prefix string) {
	t.Helper()
	seed := readExample(t, "ispm-unused-admin.json")
	pub := publish.New(s.b, nil)
	for i := range n {
		if _, err := pub.Publish(context.Background(), withFields(t, seed, "eventId", fmt.Sprintf("%s-%02d", prefix, i)), publish.Options{Subject: event.SubjectISPM}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkExactlyOnce waits until n events for suspend-okta-account are terminal, and checks
// that each has exactly one terminal record, a success, and that the flow executed exactly
// once per event.
func (s *stack) checkExactlyOnce(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	for key, recs := range s.waitTerminal(n, timeout) {
		if len(recs) != 1 || recs[0].Outcome != status.Succeeded {
			t.Errorf("%s: terminal records %+v; want exactly one success", key, recs)
		}
	}
	st := s.sim.Stats("suspend-okta-account")
	if st.MaxExecutionsPerKey != 1 {
		t.Errorf("a flow ran %d times for one event; retries must reuse the idempotency key", st.MaxExecutionsPerKey)
	}
	if st.Executed != n {
		t.Errorf("flow executed %d times for %d events", st.Executed, n)
	}
}

// inFlight is how many calls the flow has received and not yet answered.
func inFlight(st flowsim.Stats) int {
	return st.Received - st.Succeeded - st.RateLimited - st.Unauthorized - st.Failed - st.TimedOut
}

// A worker killed while its jobs wait for a rate-budget slot far beyond AckWait (a 429 with
// Retry-After: 6 against an AckWait of 2 s) loses nothing and runs nothing twice: the waiting
// jobs were handed back (NakWithDelay) or heartbeated, and the survivor finishes them once
// the flow's penalty ends.
func TestWorkerKilledDuringBudgetWait(t *testing.T) {
	t.Parallel()
	const flowName = "suspend-okta-account"
	calm := flowsim.Faults{Latency: 200 * time.Millisecond}
	s := newStack(t, stackOptions{
		faults:     map[string]flowsim.Faults{flowName: calm},
		retryAfter: map[string]int{flowName: 6},
	})
	victim := s.startWorker()
	s.startWorker() // the survivor

	const n = 30
	s.publishEvents(t, n, "evt-budget-kill")
	s.waitSim("a few events done", 30*time.Second, func() bool { return s.sim.Stats(flowName).Succeeded >= 4 })
	// From now on the flow answers 429 with Retry-After: 6: the replicas penalise it and the
	// remaining jobs wait for a slot 6 s away.
	limited := calm
	limited.RateLimitRate = 1
	if err := s.sim.SetFaults(flowName, limited); err != nil {
		t.Fatal(err)
	}
	s.waitPenalty(t, flowName)
	if err := s.sim.SetFaults(flowName, calm); err != nil { // later calls succeed again
		t.Fatal(err)
	}
	waitingAt := s.sim.Stats(flowName)
	victim.kill(t)

	s.checkExactlyOnce(t, n, 60*time.Second)
	st := s.sim.Stats(flowName)
	var first429, lastSuccess time.Time
	for _, inv := range s.sim.Invocations(flowName) {
		if inv.Status == http.StatusTooManyRequests && first429.IsZero() {
			first429 = inv.At
		}
		if inv.Status == http.StatusOK && inv.At.After(lastSuccess) {
			lastSuccess = inv.At
		}
	}
	// The penalty held: nothing ran in the 6 s after the 429 but what was already in flight.
	if wait := lastSuccess.Sub(first429); wait < 5*time.Second {
		t.Errorf("the last event ran %s after the first 429 with Retry-After: 6; the penalty did not hold", wait)
	}
	t.Logf("at the kill %d of %d events were done and the flow had answered %d 429s; the last event ran %s after the first 429; afterwards %d calls, %d 429s, %d duplicates answered from the flow's idempotency table",
		waitingAt.Succeeded, n, waitingAt.RateLimited, lastSuccess.Sub(first429).Round(time.Millisecond), st.Received, st.RateLimited, st.Duplicates)
}

// A worker killed with SIGKILL in the middle of its staged shutdown (SIGTERM while flow calls
// are in flight, SIGKILL once one of them has been answered, before the others are) loses
// nothing and runs nothing twice: what it had not recorded is redelivered to the survivor,
// whose retry carries the same idempotency key.
func TestWorkerKilledDuringShutdown(t *testing.T) {
	t.Parallel()
	const flowName = "suspend-okta-account"
	s := newStack(t, stackOptions{
		faults: map[string]flowsim.Faults{flowName: {Latency: time.Second, LatencyJitter: 2 * time.Second}},
		adjust: func(c *config.Config) { c.Worker.ShutdownTimeout = 10 * time.Second },
	})
	victim := s.startWorker()

	const n = 24
	s.publishEvents(t, n, "evt-shutdown-kill")
	s.waitSim("calls in flight", 30*time.Second, func() bool { return inFlight(s.sim.Stats(flowName)) >= 3 })
	before := s.sim.Stats(flowName)
	if err := victim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The calls end one by one (their latencies differ by up to 2 s): once the first has been
	// answered, the victim is shutting down with the others still in flight.
	s.waitSim("a call answered during the shutdown", 30*time.Second, func() bool {
		return s.sim.Stats(flowName).Succeeded > before.Succeeded
	})
	select {
	case <-victim.exited:
		t.Fatalf("the victim finished its shutdown before the kill; the test did not kill it mid-shutdown")
	default:
	}
	killedAt := s.sim.Stats(flowName)
	victim.kill(t)

	s.startWorker() // the survivor
	s.checkExactlyOnce(t, n, 60*time.Second)
	st := s.sim.Stats(flowName)
	t.Logf("at the kill %d calls were in flight and %d events done; afterwards %d calls, %d duplicates answered from the flow's idempotency table",
		inFlight(killedAt), killedAt.Succeeded, st.Received, st.Duplicates)
}

// waitPenalty waits until the shared rate budget of flow (worker's remediation_budgets KV,
// one key per flow) holds every replica away from it: a replica has recorded a 429. It is
// woken by a watch on the key.
func (s *stack) waitPenalty(t testing.TB, flow string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := s.b.OpenKeyValue(ctx, budgetsBucket)
	if err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		_ = kv.Watch(ctx, flow, func(string, []byte, bool) { signal(wake) }, nil)
	}()
	defer func() { cancel(); <-watching }()
	testwait.UntilNil(t, "a 429 recorded in the shared budget of "+flow, func() error {
		data, _, err := kv.Get(ctx, flow)
		if err != nil {
			return err
		}
		var st struct {
			Until int64 `json:"until"` // unix nanoseconds; no slot before it
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		if time.Unix(0, st.Until).Before(time.Now()) {
			return fmt.Errorf("no penalty: until %s", time.Unix(0, st.Until))
		}
		return nil
	}, testwait.WakeOn(wake))
}

// budgetsBucket is the KV bucket of the shared rate budgets (package worker).
const budgetsBucket = "remediation_budgets"
