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
	seed := readExample(t, "ispm-unused-admin.json")
	pub := publish.New(s.b, nil)
	for i := range n {
		if _, err := pub.Publish(context.Background(), withFields(t, seed, "eventId", fmt.Sprintf("evt-kill-%02d", i)), publish.Options{Subject: event.SubjectISPM}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "flow calls in flight", func() bool { return s.sim.Stats("suspend-okta-account").Received >= 3 })
	victim.kill(t)
	killedAt := s.sim.Stats("suspend-okta-account")

	s.startWorker() // the survivor
	waitFor(t, 60*time.Second, "every event to reach a terminal state", func() bool { return len(s.terminal()) == n })
	for key, recs := range s.terminal() {
		if len(recs) != 1 || recs[0].Outcome != status.Succeeded {
			t.Errorf("%s: terminal records %+v; want exactly one success", key, recs)
		}
	}
	st := s.sim.Stats("suspend-okta-account")
	if st.MaxExecutionsPerKey != 1 {
		t.Errorf("a flow ran %d times for one event after the kill; retries must reuse the idempotency key", st.MaxExecutionsPerKey)
	}
	if st.Executed != n {
		t.Errorf("flow executed %d times for %d events", st.Executed, n)
	}
	t.Logf("at the kill the flow had received %d calls (%d executed); afterwards %d calls, %d duplicates answered from the flow's idempotency table",
		killedAt.Received, killedAt.Executed, st.Received, st.Duplicates)
}
