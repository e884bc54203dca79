package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flowsim"
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
