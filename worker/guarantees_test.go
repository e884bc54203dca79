package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

// countingFlow is a flow that answers 429 (Retry-After 4s) to its first call, then runs every
// call after a little work, counting executions per idempotency key.
type countingFlow struct {
	mu       sync.Mutex
	calls    int
	executed map[string]int
}

func (f *countingFlow) Invoke(ctx context.Context, _ flow.Endpoint, req flow.Request) (*flow.Result, error) {
	f.mu.Lock()
	f.calls++
	first := f.calls == 1
	f.mu.Unlock()
	if first {
		return &flow.Result{StatusCode: 429}, &flow.Error{Class: flow.ClassRetryable, StatusCode: 429, RetryAfter: 4 * time.Second, Err: fmt.Errorf("HTTP 429")}
	}
	select { // the flow's own work: long enough for a second replica to start the same job
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		return nil, &flow.Error{Class: flow.ClassRetryable, Err: ctx.Err()}
	}
	f.mu.Lock()
	f.executed[req.IdempotencyKey]++
	f.mu.Unlock()
	return &flow.Result{StatusCode: 200, ExecutionID: "x-" + req.IdempotencyKey}, nil
}

func (f *countingFlow) twice() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k, n := range f.executed {
		if n > 1 {
			keys = append(keys, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	return keys
}

// Issue 11, defect 1: with AckWait 1s and a 429 carrying Retry-After 4s, jobs wait for the
// flow's budget far longer than their ack deadline. They must never be held past it without
// progress, so no job is redelivered to another replica while one still holds it: every
// idempotency key is executed exactly once.
func TestRateBudgetWaitNeverRunsAJobTwice(t *testing.T) {
	t.Parallel()
	fl := &countingFlow{executed: map[string]int{}}
	h := start(t, options{workerConfig: func(c *worker.Config) {
		c.AckWait = time.Second
		c.Invoker = fl
	}})
	h.run() // a second replica
	seed := readFixture(t, "ispm-unused-admin.json")
	const n = 6
	for i := range n {
		h.publish(event.SubjectISPM, withID(t, seed, fmt.Sprintf("evt-budget-%d", i)))
	}
	for i := range n {
		h.waitStatus(fmt.Sprintf("evt-budget-%d", i), status.Succeeded, "suspend-okta-account")
	}
	if twice := fl.twice(); len(twice) > 0 {
		t.Errorf("jobs executed more than once: %v", twice)
	}
}

// paddedEvent is the seed event with id, padded to exactly size bytes.
func paddedEvent(t *testing.T, seed []byte, id string, size int) []byte {
	t.Helper()
	doc := bytes.TrimSpace(withID(t, seed, id))
	doc = bytes.TrimSuffix(doc, []byte("}"))
	const open, end = `,"padding":"`, `"}`
	n := size - len(doc) - len(open) - len(end)
	if n < 0 {
		t.Fatalf("seed is larger than %d bytes", size)
	}
	out := append(append(append([]byte{}, doc...), open...), strings.Repeat("x", n)...)
	return append(out, end...)
}

// Issue 11, defect 2: every event up to the size limit reaches a terminal record; one above
// it is dead-lettered as too_large — once, by reference, not copied — and the worker carries
// on.
func TestEventsUpToTheSizeLimitEndInATerminalRecord(t *testing.T) {
	t.Parallel()
	const limit = 256 << 10
	h := start(t, options{workerConfig: func(c *worker.Config) { c.MaxEventBytes = limit }})
	seed := readFixture(t, "ispm-unused-admin.json")
	for _, size := range []int{2 << 10, 64 << 10, 200 << 10, limit} {
		id := fmt.Sprintf("evt-size-%d", size)
		h.publish(event.SubjectISPM, paddedEvent(t, seed, id, size))
		h.waitStatus(id, status.Succeeded, "suspend-okta-account")
	}

	big := paddedEvent(t, seed, "evt-size-900k", 900<<10)
	ack, err := h.b.Publish(context.Background(), event.SubjectISPM, big, broker.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dl, subject := h.waitDeadLetter("too_large dead letter", func(d status.DeadLetter) bool { return d.Reason == status.ReasonTooLarge })
	if subject != "remediation.dlq.too_large" || len(dl.Payload) != 0 || len(dl.Headers) != 0 ||
		dl.Stream != broker.StreamEvents || dl.EventSequence != ack.Sequence {
		t.Errorf("too_large dead letter on %s = %+v; want no payload or headers, a reference to #%d", subject, dl, ack.Sequence)
	}
	if !strings.Contains(dl.Error, fmt.Sprint(len(big))) || !strings.Contains(dl.Error, fmt.Sprint(limit)) {
		t.Errorf("error %q should name the size %d and the limit %d", dl.Error, len(big), limit)
	}
	// Delivered once: terminated, nothing pending or redelivered, a single dead letter.
	testwait.Until(t, "intake consumer settled", func() bool {
		infos, err := h.b.ConsumerInfos(context.Background(), broker.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range infos {
			if ci.Name == worker.IntakeConsumer {
				return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0
			}
		}
		return false
	})
	if dls, _ := h.deadLetters(); len(dls) != 1 {
		t.Errorf("%d dead letters, want the one too_large", len(dls))
	}
	h.publish(event.SubjectISPM, withID(t, seed, "evt-after-big"))
	h.waitStatus("evt-after-big", status.Succeeded, "suspend-okta-account")
}

// Issue 11, defect 5: a durable consumer deleted under a running worker makes it unready
// until it is created again, and events flow after.
func TestDeletedConsumersAreCreatedAgain(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	seed := readFixture(t, "ispm-unused-admin.json")
	h.publish(event.SubjectISPM, withID(t, seed, "evt-before-delete"))
	h.waitStatus("evt-before-delete", status.Succeeded, "suspend-okta-account")

	brokertest.DeleteConsumer(t, h.url, broker.StreamEvents, worker.IntakeConsumer)
	for _, p := range event.Priorities {
		brokertest.DeleteConsumer(t, h.url, broker.StreamDispatch, worker.DispatchConsumer("suspend-okta-account", p))
	}
	h.publish(event.SubjectISPM, withID(t, seed, "evt-after-delete"))
	h.waitStatus("evt-after-delete", status.Succeeded, "suspend-okta-account")
	if !brokertest.ConsumerExists(t, h.url, broker.StreamEvents, worker.IntakeConsumer) {
		t.Error("intake consumer not there again")
	}
	testwait.Until(t, "ready again", h.workers[0].w.Ready)
}

// slowToAnswerFlow succeeds, but answers only once the worker's work is cancelled (the
// answer arrives just as the shutdown timeout ends); it counts calls per idempotency key.
type slowToAnswerFlow struct {
	mu      sync.Mutex
	calls   map[string]int
	invoked chan struct{}
}

func (f *slowToAnswerFlow) Invoke(ctx context.Context, _ flow.Endpoint, req flow.Request) (*flow.Result, error) {
	f.mu.Lock()
	f.calls[req.IdempotencyKey]++
	first := len(f.calls) == 1 && f.calls[req.IdempotencyKey] == 1
	f.mu.Unlock()
	if first {
		close(f.invoked)
		<-ctx.Done()
	}
	return &flow.Result{StatusCode: 200, ExecutionID: "x-" + req.IdempotencyKey}, nil
}

// Issue 11, defect 4: a call that succeeded as the shutdown timeout cancelled the work is
// recorded as succeeded and acked — not nak'ed and run again by the next worker.
func TestSuccessAtShutdownTimeoutIsRecordedNotRunAgain(t *testing.T) {
	t.Parallel()
	fl := &slowToAnswerFlow{calls: map[string]int{}, invoked: make(chan struct{})}
	h := start(t, options{workerConfig: func(c *worker.Config) {
		c.Invoker = fl
		c.ShutdownTimeout = 100 * time.Millisecond
	}})
	seed := readFixture(t, "ispm-unused-admin.json")
	h.publish(event.SubjectISPM, withID(t, seed, "evt-at-shutdown"))
	select {
	case <-fl.invoked:
	case <-time.After(15 * time.Second):
		t.Fatal("flow never invoked")
	}
	h.stop()
	rec := h.waitStatus("evt-at-shutdown", status.Succeeded, "suspend-okta-account")
	if rec.ExecutionID == "" {
		t.Errorf("succeeded record %+v lacks the execution id", rec)
	}
	if n := h.dispatchBacklog(); n != 0 {
		t.Errorf("%d jobs left in the dispatch stream after the worker stopped; the succeeded job must be acked", n)
	}
	// A new worker takes over; a later event goes through, and the first is not run again.
	h.run()
	h.publish(event.SubjectISPM, withID(t, seed, "evt-after-restart"))
	h.waitStatus("evt-after-restart", status.Succeeded, "suspend-okta-account")
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for key, n := range fl.calls {
		if n != 1 {
			t.Errorf("key %s invoked %d times, want once", key, n)
		}
	}
}
