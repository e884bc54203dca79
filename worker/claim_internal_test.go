package worker

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/seal"
)

// Two jobs for one (event, flow) — the event was published twice — handled at the same
// moment: only one delivery calls the flow; the other, finding the job claimed, is handed
// back, and when it comes again it finds the success and calls nothing.
func TestConcurrentDeliveriesOfOneJobCallTheFlowOnce(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	var calls atomic.Int32
	inCall, release := make(chan struct{}), make(chan struct{})
	w := fakeWorker(t, b, func(c *Config) {
		c.Invoker = invokerFunc(func(context.Context, flow.Endpoint, flow.Request) (*flow.Result, error) {
			if calls.Add(1) == 1 {
				close(inCall)
				<-release // the flow is slow: the second delivery arrives meanwhile
			}
			return &flow.Result{StatusCode: 200, ExecutionID: "x1"}, nil
		})
	})
	b.storeEvent(42, "e1")
	b.storeEvent(43, "e1")
	_, first := dispatchDelivery(t, 42, 1)
	_, second := dispatchDelivery(t, 43, 1) // the same job from the event's second copy
	second.seq = 8
	src := b.source(DispatchConsumer("f", event.Priorities[0]))
	t.Cleanup(runWorker(w))

	src.msgs <- first
	waitFor(t, "the first delivery to call the flow", inCall)
	src.msgs <- second
	waitFor(t, "the second delivery to be settled", second.settled)
	if got := second.outcome(); got != "nak" {
		t.Errorf("the second delivery was settled %q while the first called the flow; want nak (handed back)", got)
	}
	close(release)
	waitFor(t, "the first delivery to be settled", first.settled)
	if got := first.outcome(); got != "ack" {
		t.Errorf("the first delivery was settled %q; want ack", got)
	}

	// The second job comes back after the claim: the success is found, nothing is called.
	again := newFakeMsg(second.subject, second.data, 2, 8)
	again.header = map[string][]string{seal.Header: second.header[seal.Header]}
	src.msgs <- again
	waitFor(t, "the second job's redelivery to be settled", again.settled)
	if got := again.outcome(); got != "ack" {
		t.Errorf("the redelivery was settled %q; want ack (a duplicate of a success)", got)
	}
	if n := calls.Load(); n != 1 {
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
	var calls atomic.Int32
	inCall, release := make(chan struct{}), make(chan struct{})
	w := fakeWorker(t, b, func(c *Config) {
		c.Invoker = invokerFunc(func(context.Context, flow.Endpoint, flow.Request) (*flow.Result, error) {
			if calls.Add(1) == 1 {
				close(inCall)
				<-release
			}
			return &flow.Result{StatusCode: 200, ExecutionID: "x1"}, nil
		})
	})
	_, first := dispatchDelivery(t, 42, 1)
	src := b.source(DispatchConsumer("f", event.Priorities[0]))
	t.Cleanup(runWorker(w))

	src.msgs <- first
	waitFor(t, "the first delivery to call the flow", inCall)
	again := newFakeMsg(first.subject, first.data, 2, first.seq) // the same message, delivery 2
	again.header = map[string][]string{seal.Header: first.header[seal.Header]}
	src.msgs <- again
	waitFor(t, "the redelivery to be settled", again.settled)
	if got := again.outcome(); got != "nak" {
		t.Errorf("the redelivery during the call was settled %q; want nak (handed back)", got)
	}
	close(release)
	waitFor(t, "the first delivery to be settled", first.settled)

	third := newFakeMsg(first.subject, first.data, 3, first.seq)
	third.header = map[string][]string{seal.Header: first.header[seal.Header]}
	src.msgs <- third
	waitFor(t, "the third delivery to be settled", third.settled)
	if got := third.outcome(); got != "ack" {
		t.Errorf("the delivery after the call was settled %q; want ack (its success found)", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the flow was called %d times; want 1", n)
	}
}
