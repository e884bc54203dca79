package worker

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/seal"
)

// slowFlow is a flow whose first call blocks until release is closed, so that another
// delivery arrives while it is being called.
type slowFlow struct {
	calls           atomic.Int32
	inCall, release chan struct{}
}

// slowFlowWorker runs a fake worker whose flow f is a slowFlow, until the test ends.
func slowFlowWorker(t *testing.T, b *fakeBroker) (*slowFlow, *fakeSource) {
	t.Helper()
	sf := &slowFlow{inCall: make(chan struct{}), release: make(chan struct{})}
	w := fakeWorker(t, b, func(c *Config) {
		c.Invoker = invokerFunc(func(context.Context, flow.Endpoint, flow.Request) (*flow.Result, error) {
			if sf.calls.Add(1) == 1 {
				close(sf.inCall)
				<-sf.release
			}
			return &flow.Result{StatusCode: 200, ExecutionID: "x1"}, nil
		})
	})
	src := b.source(DispatchConsumer("f", event.Priorities[0]))
	t.Cleanup(runWorker(w))
	return sf, src
}

// deliver hands m to the worker and checks how it was settled.
func deliver(t *testing.T, src *fakeSource, m *fakeMsg, what, want string) {
	t.Helper()
	src.msgs <- m
	waitFor(t, what+" to be settled", m.settled)
	if got := m.outcome(); got != want {
		t.Errorf("%s was settled %q; want %s", what, got, want)
	}
}

// redelivered is m delivered again (the same stream message, signature and all), as its
// delivery number delivered.
func redelivered(m *fakeMsg, delivered int) *fakeMsg {
	again := newFakeMsg(m.subject, m.data, delivered, m.seq)
	again.header = map[string][]string{seal.Header: m.header[seal.Header]}
	return again
}

// Two jobs for one (event, flow) — the event was published twice — handled at the same
// moment: only one delivery calls the flow; the other, finding the job claimed, is handed
// back, and when it comes again it finds the success and calls nothing.
func TestConcurrentDeliveriesOfOneJobCallTheFlowOnce(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	b.storeEvent(42, "e1")
	b.storeEvent(43, "e1")
	sf, src := slowFlowWorker(t, b)
	_, first := dispatchDelivery(t, 42, 1)
	_, second := dispatchDelivery(t, 43, 1) // the same job from the event's second copy
	second.seq = 8

	src.msgs <- first
	waitFor(t, "the first delivery to call the flow", sf.inCall)
	deliver(t, src, second, "the second delivery, made while the first called the flow (to be handed back),", "nak")
	close(sf.release)
	waitFor(t, "the first delivery to be settled", first.settled)
	if got := first.outcome(); got != "ack" {
		t.Errorf("the first delivery was settled %q; want ack", got)
	}

	// The second job comes back after the claim: the success is found, nothing is called.
	deliver(t, src, redelivered(second, 2), "the second job's redelivery (a duplicate of a success)", "ack")
	if n := sf.calls.Load(); n != 1 {
		t.Errorf("the flow was called %d times for one (event, flow); want 1", n)
	}
	if n := len(b.publishedTo("remediation.status.succeeded")); n != 1 {
		t.Errorf("%d succeeded statuses; want 1", n)
	}
}

// The same job message delivered again while its first delivery is still calling the flow
// (JetStream redelivers when heartbeats are lost, as in a stream leader's election) is handed
// back, not run alongside: the flow is called once.
func TestRedeliveryDuringTheCallDoesNotCallAgain(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	b.storeEvent(42, "e1")
	sf, src := slowFlowWorker(t, b)
	_, first := dispatchDelivery(t, 42, 1)

	src.msgs <- first
	waitFor(t, "the first delivery to call the flow", sf.inCall)
	deliver(t, src, redelivered(first, 2), "the redelivery during the call (to be handed back)", "nak")
	close(sf.release)
	waitFor(t, "the first delivery to be settled", first.settled)

	deliver(t, src, redelivered(first, 3), "the delivery after the call (its success found)", "ack")
	if n := sf.calls.Load(); n != 1 {
		t.Errorf("the flow was called %d times; want 1", n)
	}
}
