package worker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/worker"
)

// orderedFlow records the order of its calls by event id and holds the first call until
// released.
type orderedFlow struct {
	mu      sync.Mutex
	order   []string
	release chan struct{}
}

func (f *orderedFlow) Invoke(ctx context.Context, _ flow.Endpoint, req flow.Request) (*flow.Result, error) {
	f.mu.Lock()
	f.order = append(f.order, fmt.Sprint(req.Inputs["eventId"]))
	first := len(f.order) == 1
	f.mu.Unlock()
	if first {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, &flow.Error{Class: flow.ClassRetryable, Err: ctx.Err()}
		}
	}
	return &flow.Result{StatusCode: 200}, nil
}

func (f *orderedFlow) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}

// Urgent first at low load: while the flow's only slot is busy, a Low event and, just after
// it, a Critical one arrive; when the slot frees, the Critical one is called first, although
// the Low one came first and the flow was otherwise idle.
func TestUrgentJobGoesBeforeALowOnePublishedJustBefore(t *testing.T) {
	t.Parallel()
	f := &orderedFlow{release: make(chan struct{})}
	h := start(t, options{workerConfig: func(c *worker.Config) {
		c.Invoker = f
		for i := range c.Flows {
			c.Flows[i].Concurrency = 1
		}
	}})
	seed := readFixture(t, "ispm-unused-admin.json")
	h.publish(event.SubjectISPM, withField(t, withID(t, seed, "evt-busy"), "issueSeverity", "Low"))
	testwait.Until(t, "the flow is busy", func() bool { return len(f.calls()) == 1 })
	h.publish(event.SubjectISPM, withField(t, withID(t, seed, "evt-low"), "issueSeverity", "Low"))
	h.publish(event.SubjectISPM, withField(t, withID(t, seed, "evt-critical"), "issueSeverity", "Critical"))
	testwait.Until(t, "both jobs wait in JetStream", func() bool { return h.dispatchBacklog() == 3 })
	close(f.release)
	testwait.Until(t, "every event called", func() bool { return len(f.calls()) == 3 })
	if got := f.calls(); got[1] != "evt-critical" {
		t.Errorf("calls in order %v; want the critical event right after the busy one", got)
	}
}
