package worker

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/status"
)

// eventInputsRouter maps every flow's inputs as a flow without a mapping does: the event's
// inputs.
type eventInputsRouter struct{ nopRouter }

func (eventInputsRouter) Inputs(ev *event.Event, _ string) (map[string]any, error) {
	return ev.Inputs(), nil
}

// runDispatch runs w until m is settled and returns what the flow received (nil: not called).
func runDispatch(t *testing.T, b *fakeBroker, m *fakeMsg) *atomic.Pointer[flow.Request] {
	t.Helper()
	var got atomic.Pointer[flow.Request]
	w := fakeWorker(t, b, func(c *Config) {
		c.Router = eventInputsRouter{}
		c.Invoker = invokerFunc(func(_ context.Context, _ flow.Endpoint, req flow.Request) (*flow.Result, error) {
			got.Store(&req)
			return &flow.Result{StatusCode: 200, ExecutionID: "x1"}, nil
		})
	})
	t.Cleanup(runWorker(w))
	b.source(DispatchConsumer("f", event.Priorities[0])).msgs <- m
	waitFor(t, "the job to be settled", m.settled)
	return &got
}

// A job does not carry its inputs: dispatch reads its event back by sequence and the flow
// receives the inputs mapped from it.
func TestDispatchMapsTheInputsFromTheEventTheJobRefersTo(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	b.storeEvent(42, "e1")
	d, m := dispatchDelivery(t, 42, 1)
	var job Job
	if err := json.Unmarshal(d.Data, &job); err != nil || job.Inputs != nil {
		t.Fatalf("the job carries inputs %v (%v); want none", job.Inputs, err)
	}
	got := runDispatch(t, b, m)
	if m.outcome() != "ack" {
		t.Fatalf("settled %q, want ack", m.outcome())
	}
	req := got.Load()
	if req == nil {
		t.Fatal("the flow was not called")
	}
	if req.Inputs["eventId"] != "e1" || req.Inputs["issueTitle"] != "Unused Admin Account" || req.Inputs["entityIdInService"] != "00u1" {
		t.Errorf("the flow received %v; want the inputs of event e1", req.Inputs)
	}
}

// A job whose event is no longer stored (expired or deleted while it waited) cannot be
// called for: it is dead-lettered, saying why, and the flow is not called.
func TestDispatchDeadLettersAJobWhoseEventIsGone(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	_, m := dispatchDelivery(t, 42, 1)
	got := runDispatch(t, b, m)
	if got.Load() != nil {
		t.Error("the flow was called for a job whose event is gone")
	}
	if m.outcome() != "term" {
		t.Errorf("settled %q, want term (dead-lettered)", m.outcome())
	}
	dls := b.publishedTo("remediation.dlq." + string(status.ReasonPermanentFailure))
	if len(dls) != 1 || !strings.Contains(string(dls[0].data), "no longer stored") {
		t.Fatalf("dead letters %v; want one permanent_failure saying the event is no longer stored", dls)
	}
}

// A job naming another event than the one at its sequence is not called.
func TestDispatchRefusesAJobWhoseSequenceHoldsAnotherEvent(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	b.storeEvent(42, "someone-else")
	_, m := dispatchDelivery(t, 42, 1)
	got := runDispatch(t, b, m)
	if got.Load() != nil {
		t.Error("the flow was called with another event's inputs")
	}
	if dls := b.publishedTo("remediation.dlq."); len(dls) != 1 || !strings.Contains(string(dls[0].data), `not \"e1\"`) {
		t.Fatalf("dead letters %v; want one naming the mismatch", dls)
	}
}
