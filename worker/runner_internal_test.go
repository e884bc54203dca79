package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/schema"
)

// fakeGate books the slot slotIn from now when it is within reach.
type fakeGate struct {
	slotIn time.Duration
	mu     sync.Mutex
	within []time.Duration
}

func (g *fakeGate) ready(context.Context) error { return nil }
func (g *fakeGate) held() bool                  { return false }

func (g *fakeGate) admit(_ context.Context, within time.Duration) (time.Time, bool, error) {
	g.mu.Lock()
	g.within = append(g.within, within)
	g.mu.Unlock()
	return time.Now().Add(g.slotIn), g.slotIn <= within, nil
}

// runLoop runs r's fetch loop until the test ends.
func runLoop(t *testing.T, r *runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.fetchLoop(ctx, context.Background())
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A job waiting for its rate-budget slot is kept alive by heartbeats from the moment it is
// fetched: JetStream must not give it to another replica meanwhile.
func TestJobWaitingForItsSlotHasAHeartbeat(t *testing.T) {
	t.Parallel()
	w := fakeWorker(t, newFakeBroker(), func(c *Config) { c.AckWait = time.Second }) // beats every 333ms
	src := newFakeSource("s")
	handled := make(chan int, 1)
	r := w.newRunner("dispatch/f", []*binding{{src: src}}, 1, 100, StepFunc(func(_ context.Context, d *Delivery) Result {
		handled <- d.Msg.(*fakeMsg).heartbeats()
		return Result{Recorded: true}
	}))
	r.gate = &fakeGate{slotIn: 450 * time.Millisecond} // within AckWait/2: held for it
	m := newFakeMsg("remediation.dispatch.f.high", nil, 1, 1)
	src.msgs <- m
	runLoop(t, r)
	select {
	case beats := <-handled:
		if beats == 0 {
			t.Error("the job waited 450ms for its slot with AckWait 1s and no heartbeat was sent")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("job never handled")
	}
}

// A job whose slot is further away than half the ack wait is handed back with a delay of
// about the wait, not held; on its last delivery it is held (with heartbeats) instead.
func TestJobWhoseSlotIsFarIsHandedBack(t *testing.T) {
	t.Parallel()
	w := fakeWorker(t, newFakeBroker(), func(c *Config) { c.AckWait = time.Second })
	src := newFakeSource("s")
	r := w.newRunner("dispatch/f", []*binding{{src: src}}, 1, 3, StepFunc(func(context.Context, *Delivery) Result {
		t.Error("a job whose slot is 10s away was handled")
		return Result{Recorded: true}
	}))
	g := &fakeGate{slotIn: 10 * time.Second}
	r.gate = g
	m := newFakeMsg("remediation.dispatch.f.high", nil, 1, 1)
	src.msgs <- m
	runLoop(t, r)
	waitFor(t, "the job handed back", m.settled)
	m.mu.Lock()
	naks := m.naks
	m.mu.Unlock()
	if len(naks) != 1 || naks[0] < 9*time.Second || naks[0] > 10*time.Second {
		t.Errorf("naks %v; want one with a delay of about 10s", naks)
	}
	if g.within[0] != 500*time.Millisecond {
		t.Errorf("slot asked within %s, want half the ack wait", g.within[0])
	}
	if !r.waitSlotWithin(newFakeMsg("", nil, 3, 2)) {
		t.Error("on its last delivery a job must wait for its slot, however far")
	}
}

// waitSlotWithin reports whether waitSlot would hold msg for a slot at any distance.
func (r *runner) waitSlotWithin(msg Message) bool { return r.lastDelivery(msg) }

// The budget books a slot only within reach; one further away is not booked (no slot is
// wasted) and holds this replica's fetching until then.
func TestBudgetBooksOnlySlotsWithinReach(t *testing.T) {
	t.Parallel()
	kv := newFakeKV()
	now := time.Unix(1000, 0)
	b := newBudget(kv, "f", 1) // one per second
	b.now = func() time.Time { return now }
	ctx := context.Background()
	first, booked, err := b.reserveWithin(ctx, 0)
	if err != nil || !booked || !first.Equal(now) {
		t.Fatalf("first slot %v booked %v err %v; want now", first, booked, err)
	}
	// An idle flow gets no burst: the next call comes one interval later, not at once.
	second, booked, _ := b.reserveWithin(ctx, time.Second)
	if !booked || !second.Equal(now.Add(time.Second)) {
		t.Fatalf("second slot %v booked %v; want 1s after the first", second, booked)
	}
	_, rev, _ := kv.Get(ctx, "f")
	next, booked, err := b.reserveWithin(ctx, 500*time.Millisecond)
	if err != nil || booked || !next.Equal(now.Add(2*time.Second)) {
		t.Fatalf("third slot %v booked %v err %v; want 2s away, not booked", next, booked, err)
	}
	if _, after, _ := kv.Get(ctx, "f"); after != rev {
		t.Error("a slot that was not booked was written to the shared budget")
	}
	if !b.heldUntil().Equal(next) {
		t.Errorf("heldUntil %v, want the next slot %v", b.heldUntil(), next)
	}
}

// A replica a little late for its slot still gets it (a busy flow keeps its full rate), but a
// flow idle for longer than an interval starts afresh at now: no two calls in one instant.
func TestBudgetCatchUpOnlyWithinOneInterval(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	b := newBudget(newFakeKV(), "f", 2) // an interval of 500ms
	b.now = func() time.Time { return now }
	ctx := context.Background()
	if _, _, err := b.reserveWithin(ctx, 0); err != nil { // TAT = now+500ms
		t.Fatal(err)
	}
	now = now.Add(700 * time.Millisecond) // 200ms late for the slot at +500ms
	late, _, _ := b.reserveWithin(ctx, 0)
	if want := time.Unix(1000, 0).Add(500 * time.Millisecond); !late.Equal(want) {
		t.Errorf("late replica's slot %v, want its missed slot %v", late, want)
	}
	now = now.Add(10 * time.Second) // idle
	a, _, _ := b.reserveWithin(ctx, time.Second)
	c, _, _ := b.reserveWithin(ctx, time.Second)
	if !a.Equal(now) || c.Sub(a) != 500*time.Millisecond {
		t.Errorf("after idling, slots at %v and %v; want now and one interval later", a, c)
	}
}

// After a 429, the flow's jobs are not fetched until its Retry-After has passed.
func TestPenalisedFlowIsNotFetched(t *testing.T) {
	t.Parallel()
	w := fakeWorker(t, newFakeBroker(), nil)
	fr := w.flows["f"]
	fr.budget = newBudget(newFakeKV(), "f", 10)
	if err := fr.budget.penalize(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := fr.ready(ctx); err == nil {
		t.Error("ready let the runner fetch a flow penalised for 10s")
	}
}

// Readiness follows the fetches: false while they fail, true again once one succeeds.
func TestReadyFollowsFetches(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	w := fakeWorker(t, b, nil)
	defer runWorker(w)()
	testwait.Until(t, "ready", w.Ready)
	src := b.source(IntakeConsumer)
	src.setFail(errors.New("nats: connection reconnecting"))
	testwait.Until(t, "not ready while fetches fail", func() bool { return !w.Ready() })
	src.setFail(nil)
	testwait.Until(t, "ready again once a fetch succeeds", w.Ready)
}

// A deleted durable consumer is created again from its configuration.
func TestDeletedConsumerIsCreatedAgain(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	w := fakeWorker(t, b, nil)
	defer runWorker(w)()
	testwait.Until(t, "ready", w.Ready)
	deleted := b.source(IntakeConsumer)
	b.mu.Lock()
	delete(b.sources, IntakeConsumer) // the next Consumer call makes a new one
	bound := len(b.consumers)
	b.mu.Unlock()
	deleted.setFail(broker.ErrConsumerNotFound)
	testwait.Until(t, "intake consumer created again", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.consumers) > bound && b.consumers[len(b.consumers)-1].Durable == IntakeConsumer
	})
	testwait.Until(t, "ready again", w.Ready)
	if got := b.consumers[len(b.consumers)-1]; got.MaxDeliver != w.cfg.IntakeMaxDeliver || got.AckWait != w.cfg.AckWait {
		t.Errorf("recreated with %+v; want the original configuration", got)
	}
}

// Every consumer caps its deliveries, as configured.
func TestEveryConsumerCapsDeliveries(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	w := fakeWorker(t, b, func(c *Config) { c.IntakeMaxDeliver, c.DispatchMaxDeliver = 5, 50 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	testwait.Until(t, "ready", w.Ready)
	cancel()
	<-done
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.consumers) != 1+len(event.Priorities) {
		t.Fatalf("%d consumers bound", len(b.consumers))
	}
	for _, c := range b.consumers {
		want := 50
		if c.Durable == IntakeConsumer {
			want = 5
		}
		if c.MaxDeliver != want {
			t.Errorf("consumer %s MaxDeliver %d, want %d", c.Durable, c.MaxDeliver, want)
		}
	}
}

// lateSource returns one message as its fetch is cancelled (as broker.Consumer.Fetch may:
// messages received before the cancellation are returned and must be handled).
type lateSource struct {
	msg  Message
	once sync.Once
}

func (s *lateSource) Name() string                            { return IntakeConsumer }
func (s *lateSource) Pending(context.Context) (uint64, error) { return 0, nil }
func (s *lateSource) Fetch(ctx context.Context, _ int, _ time.Duration) ([]Message, error) {
	var out []Message
	s.once.Do(func() {
		<-ctx.Done()
		out = []Message{s.msg}
	})
	if out == nil {
		return nil, ctx.Err()
	}
	return out, nil
}

// blockingValidator signals when called, then waits for finish.
type blockingValidator struct{ started, finish chan struct{} }

func (v blockingValidator) Validate(event.Kind, []byte) (event.Shape, error) {
	close(v.started)
	<-v.finish
	return "", &schema.SyntaxError{}
}

// Run returns only once nothing runs: a delivery the fetch loop started while shutdown began
// is waited for and settled before Run says it stopped.
func TestRunReturnsOnlyWhenNothingRuns(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	m := newFakeMsg(event.SubjectISPM, []byte(`{}`), 1, 1)
	b.custom[IntakeConsumer] = &lateSource{msg: m}
	v := blockingValidator{started: make(chan struct{}), finish: make(chan struct{})}
	w := fakeWorker(t, b, func(c *Config) { c.Validator = v; c.ShutdownTimeout = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	testwait.Until(t, "ready", w.Ready)
	cancel()
	waitFor(t, "the handler to start", v.started)
	// Absence check: a handler is running, so Run must not return. A window, not a
	// synchronisation: a Run that wrongly returns does so at once.
	select {
	case <-done:
		t.Fatal("Run returned while a handler was still running")
	case <-time.After(300 * time.Millisecond):
	}
	close(v.finish)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the handler finished")
	}
	if got := m.outcome(); got != "term" {
		t.Errorf("when Run returned the message was settled %q; want term (dead-lettered)", got)
	}
}

// A call that succeeded just as shutdown cancelled the work is recorded as succeeded and
// acked, not nak'ed and run again.
func TestSuccessJustBeforeCancellationIsRecorded(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	invoked := make(chan struct{})
	var calls int
	w := fakeWorker(t, b, func(c *Config) {
		c.ShutdownTimeout = 50 * time.Millisecond
		c.Invoker = invokerFunc(func(ctx context.Context, _ flow.Endpoint, _ flow.Request) (*flow.Result, error) {
			calls++
			close(invoked)
			<-ctx.Done() // the flow answers as the work is cancelled
			return &flow.Result{StatusCode: 200, ExecutionID: "x1"}, nil
		})
	})
	b.storeEvent(42, "e1")
	_, m := dispatchDelivery(t, 42, 1)
	b.source(DispatchConsumer("f", event.Priorities[0])).msgs <- m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor(t, "the flow to be invoked", invoked)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if got := m.outcome(); got != "ack" {
		t.Errorf("message settled %q; want ack (the flow succeeded)", got)
	}
	if n := len(b.publishedTo("remediation.status.succeeded")); n != 1 {
		t.Errorf("%d succeeded statuses, want 1", n)
	}
	st, _, err := w.loadJob(context.Background(), testJobKey)
	if err != nil || st.Terminal == nil || st.Terminal.ExecutionID != "x1" {
		t.Errorf("job state %+v, %v; want the terminal success", st, err)
	}
	if calls != 1 {
		t.Errorf("%d calls", calls)
	}
}

// fakeAdvisories reports one advisory of the intake consumer.
type fakeAdvisories struct{}

func (fakeAdvisories) WatchMaxDeliveries(ctx context.Context, fn func(stream, consumer string, streamSeq uint64, deliveries int)) error {
	fn(broker.StreamEvents, IntakeConsumer, 9, 20)
	<-ctx.Done()
	return nil
}

// A MAX_DELIVERIES advisory is an error log and a metric.
func TestMaxDeliveriesAdvisoryIsCounted(t *testing.T) {
	t.Parallel()
	reader := metric.NewManualReader()
	mp := metric.NewMeterProvider(metric.WithReader(reader))
	b := newFakeBroker()
	w := fakeWorker(t, b, func(c *Config) {
		c.MeterProvider = mp
		c.Advisories = fakeAdvisories{}
	})
	defer runWorker(w)()
	testwait.Until(t, "remediator.max_deliveries counted", func() bool {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == metricMaxDeliveries {
					for _, dp := range sum.DataPoints {
						if v, _ := dp.Attributes.Value(labelConsumer); v.AsString() == IntakeConsumer && dp.Value == 1 {
							return true
						}
					}
				}
			}
		}
		return false
	})
}

// At light load urgent work does not wait for a poll of less urgent work: every priority is
// long-polled together, and a job arriving on the most urgent one during the poll is taken.
func TestIdleRunnerLongPollsEveryPriority(t *testing.T) {
	t.Parallel()
	w := fakeWorker(t, newFakeBroker(), nil)
	high, low := newFakeSource("high"), newFakeSource("low")
	handled := make(chan string, 1)
	r := w.newRunner("dispatch/f", []*binding{{src: high}, {src: low}}, 1, 100, StepFunc(func(_ context.Context, d *Delivery) Result {
		handled <- d.Subject
		return Result{Recorded: true}
	}))
	runLoop(t, r)
	waitFor(t, "a long poll of the most urgent source", high.polled)
	high.msgs <- newFakeMsg("urgent", nil, 1, 1)
	select {
	case got := <-handled:
		if got != "urgent" {
			t.Errorf("handled %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("urgent job not handled")
	}
}

// The budget wait: it sleeps only for a slot within reach, never books one it would not use,
// and stops waiting when its context ends.
func TestBudgetWaitWithin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBudget(newFakeKV(), "f", 2) // a slot every 500ms
	if _, booked, _, err := b.waitWithin(ctx, time.Second); err != nil || !booked {
		t.Fatalf("first slot: booked %v, %v", booked, err)
	}
	if err := b.penalize(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waited, booked, next, err := b.waitWithin(ctx, time.Second)
	if err != nil || booked || waited != 0 || next.Before(start.Add(59*time.Minute)) {
		t.Errorf("behind an hour's penalty: waited %s booked %v next %v err %v; want no booking, no wait, the penalty's end", waited, booked, next, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, booked, _, err := b.waitWithin(cancelled, 2*time.Hour); err == nil || booked {
		t.Errorf("a cancelled wait returned booked %v, err %v", booked, err)
	}
}

// runWorker runs w until the returned stop is called; stop waits for Run to return.
func runWorker(w *Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		cancel()
		<-done
	}
}
