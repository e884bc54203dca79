package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/seal"
)

// doorbellBroker is a fakeBroker with doorbells: the test rings them by hand.
type doorbellBroker struct {
	*fakeBroker
	ring chan func(subject string)
}

func (b *doorbellBroker) Doorbell(_ context.Context, _ string, ring func(subject string)) (func(), error) {
	b.ring <- ring
	return func() {}, nil
}

// idleDispatchRequests runs a worker with n idle flows and counts the fetch requests its
// dispatch runners make, and the fetches that wait, over a quiet second once every flow is
// idle.
func idleDispatchRequests(t *testing.T, n int) (requests, waits int64) {
	t.Helper()
	fb := newFakeBroker()
	b := &doorbellBroker{fakeBroker: fb, ring: make(chan func(string), 1)}
	var flows []Flow
	for i := range n {
		flows = append(flows, Flow{Endpoint: flow.Endpoint{Name: fmt.Sprintf("f%03d", i)}, RateLimit: 1000, Concurrency: 2, Breaker: breakerForTests()})
	}
	w := fakeWorker(t, fb, func(c *Config) { c.Broker, c.Flows = b, flows })
	t.Cleanup(runWorker(w))
	testwait.Until(t, "worker ready", w.Ready)
	dispatch := func() (requests, waits int64) {
		for _, r := range w.runners {
			if r.flow != "" {
				requests += r.sourceRequests()
				waits += r.polls.Load()
			}
		}
		return requests, waits
	}
	testwait.Until(t, "every flow idle", func() bool {
		for _, r := range w.runners {
			if r.flow != "" && r.idles.Load() == 0 {
				return false
			}
		}
		return true
	})
	r0, w0 := dispatch()
	window := time.NewTimer(time.Second) // a measurement window: what an idle second costs
	<-window.C
	r1, w1 := dispatch()
	return r1 - r0, w1 - w0
}

func (r *runner) sourceRequests() int64 {
	var n int64
	for _, b := range r.sources {
		if fs, ok := b.source().(*fakeSource); ok {
			n += fs.requests.Load()
		}
	}
	return n
}

// Idle flows cost JetStream nothing: with 200 flows as with 4, an idle second makes no
// fetch request for dispatch (a safety poll comes every 15–45 s), and no dispatch runner
// holds a waiting pull open — so urgent work never waits for a poll of less urgent work.
// (Long-polling every priority of every flow made about 12 requests per flow per second.)
func TestIdleDispatchCostIsFlatInTheNumberOfFlows(t *testing.T) {
	t.Parallel()
	for _, n := range []int{4, 200} {
		requests, waits := idleDispatchRequests(t, n)
		t.Logf("%d flows: %d dispatch fetch requests, %d waiting, in an idle second", n, requests, waits)
		if limit := int64(n) / 10; requests > limit || waits > 0 {
			t.Errorf("%d idle flows made %d dispatch fetch requests (limit %d) and %d waiting pulls in one second; want none",
				n, requests, limit, waits)
		}
	}
}

// A ring wakes an idle flow at once, and its round takes the most urgent work first: the
// high source is asked before the low one although the ring was for low.
func TestDoorbellWakesAnIdleFlowMostUrgentFirst(t *testing.T) {
	t.Parallel()
	fb := newFakeBroker()
	b := &doorbellBroker{fakeBroker: fb, ring: make(chan func(string), 1)}
	handled := make(chan string, 4)
	w := fakeWorker(t, fb, func(c *Config) {
		c.Broker = b
		c.Flows[0].Concurrency = 1
		c.Invoker = invokerFunc(func(_ context.Context, _ flow.Endpoint, req flow.Request) (*flow.Result, error) {
			handled <- req.IdempotencyKey
			return &flow.Result{StatusCode: 200}, nil
		})
	})
	t.Cleanup(runWorker(w))
	ring := <-b.ring
	testwait.Until(t, "worker ready", w.Ready)
	var r *runner
	for _, x := range w.runners {
		if x.flow == "f" {
			r = x
		}
	}
	testwait.Until(t, "the flow idle", func() bool { return r.idles.Load() > 0 })
	names := map[string]string{} // idempotency key → the job's name
	job := func(name string, p event.Priority, seq uint64) *fakeMsg {
		fb.storeEvent(seq, name)
		key := jobKey(keysForTests(), event.KindISPMIssue, name, "f")
		names[idempotencyKeyPrefix+key] = name
		data, err := json.Marshal(Job{Version: jobVersion, Key: key, IdempotencyKey: idempotencyKeyPrefix + key, EventID: name, EventKind: event.KindISPMIssue,
			Flow: "f", Rule: "r", Priority: p, Subject: event.SubjectISPM, EventSequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		m := newFakeMsg(DispatchSubject("f", p), data, 1, 1)
		m.header = map[string][]string{seal.Header: {keysForTests().SignRecord(m.subject, data)}} // as intake signs it
		return m
	}
	// Both wait in JetStream when the low one's ring comes: the high one goes first.
	fb.source(DispatchConsumer("f", event.PriorityLow)).msgs <- job("low", event.PriorityLow, 1)
	fb.source(DispatchConsumer("f", event.PriorityHigh)).msgs <- job("high", event.PriorityHigh, 2)
	ring(DispatchSubject("f", event.PriorityLow))
	var order []string
	for range 2 {
		select {
		case k := <-handled:
			order = append(order, names[k])
		case <-time.After(10 * time.Second):
			t.Fatalf("handled %v; the ring did not wake the idle flow", order)
		}
	}
	if strings.Join(order, ",") != "high,low" {
		t.Errorf("handled %v; want the high job before the low one", order)
	}
	if waits := r.polls.Load(); waits > 0 {
		t.Errorf("the idle flow held %d waiting pulls; want none (it sleeps on its doorbell)", waits)
	}
}
