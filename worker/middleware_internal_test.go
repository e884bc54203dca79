package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/status"
)

func TestRecoverTurnsAPanicIntoADeadLetter(t *testing.T) {
	t.Parallel()
	w := fakeWorker(t, newFakeBroker(), nil)
	err := w.Recover(HandlerFunc(func(context.Context, *Delivery) error { panic("boom") })).Handle(context.Background(), &Delivery{})
	dl, ok := asDeadLetter(err)
	if !ok || dl.Reason != status.ReasonPermanentFailure || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Recover returned %v; want a permanent_failure dead letter naming the panic", err)
	}
}

func TestLogWritesOneLinePerDeliveryWithItsOutcome(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := fakeWorker(t, newFakeBroker(), func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	res := w.Log(StepFunc(func(context.Context, *Delivery) Result {
		return Result{Err: DeadLetter(status.ReasonNoRoute, errors.New("no rule")), Recorded: true}
	})).Handle(context.Background(), &Delivery{Stage: "intake", Subject: "s", Sequence: 4, Delivered: 2})
	if !res.Recorded {
		t.Errorf("Log changed the result: %+v", res)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("want one JSON line, got %q: %v", buf.String(), err)
	}
	for k, v := range map[string]any{"outcome": "dead_letter:no_route", "stage": "intake", "seq": 4.0, "delivered": 2.0, "recorded": true, "level": "WARN"} {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v (line %s)", k, line[k], v, buf.String())
		}
	}
}

// At info, a success writes no line unless the event asks for it with Remediator-Debug: 1.
func TestLogWritesSuccessesAtInfoOnlyWhenTheEventAsks(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := fakeWorker(t, newFakeBroker(), func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	ok := w.Log(StepFunc(func(context.Context, *Delivery) Result { return Result{Recorded: true} }))
	ok.Handle(context.Background(), &Delivery{Stage: "intake", Subject: "s", Sequence: 1})
	if buf.Len() != 0 {
		t.Errorf("a success was logged at info: %s", buf.String())
	}
	ok.Handle(context.Background(), &Delivery{Stage: "intake", Subject: "s", Sequence: 2, Header: map[string][]string{DebugHeader: {"1"}}})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["level"] != "INFO" || line["seq"] != 2.0 {
		t.Errorf("want one info line for the delivery asking for it, got %q (%v)", buf.String(), err)
	}
}

// Remediator-Debug on an event travels with its dispatch jobs, so that their dispatch lines
// are at info too; an event without it gives jobs without it.
func TestDebugHeaderTravelsWithTheJobs(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../examples/ispm-unused-admin.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := schema.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	b := newFakeBroker()
	w := fakeWorker(t, b, func(c *Config) {
		c.Validator, c.Router = v, policy.New(cfg)
		c.Flows = nil
		for _, f := range cfg.Flows {
			c.Flows = append(c.Flows, Flow{Endpoint: flow.Endpoint{Name: f.Name}, RateLimit: 10, Concurrency: 1, Breaker: breakerForTests()})
		}
	})
	for seq, header := range map[uint64]map[string][]string{1: {DebugHeader: {"1"}}, 2: {}} {
		d := &Delivery{Msg: newFakeMsg(event.SubjectISPM, data, 1, seq), Subject: event.SubjectISPM, Data: data, Header: header, Delivered: 1, Sequence: seq, Stage: "intake"}
		if res := w.intakeStep().Handle(context.Background(), d); res.Err != nil || !res.Recorded {
			t.Fatalf("intake: %+v", res)
		}
	}
	jobs := b.publishedTo(DispatchSubjectPrefix)
	if len(jobs) != 2 {
		t.Fatalf("%d jobs published, want one per event", len(jobs))
	}
	for _, j := range jobs {
		var job Job
		if err := json.Unmarshal(j.data, &job); err != nil {
			t.Fatal(err)
		}
		if got, want := debugRequested(j.header), job.EventSequence == 1; got != want {
			t.Errorf("job of event #%d carries the debug header: %v, want %v", job.EventSequence, got, want)
		}
	}
}

func TestTraceStartsAConsumerSpanWithTheOutcome(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	w := fakeWorker(t, newFakeBroker(), func(c *Config) { c.TracerProvider = tp })
	w.Trace(StepFunc(func(context.Context, *Delivery) Result {
		return Result{Err: Retry(time.Second, "503", errors.New("HTTP 503"))}
	})).Handle(context.Background(), &Delivery{Subject: "remediation.dispatch.f.high", Job: &Job{EventID: "e1", Flow: "f"}})
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	attrs := map[string]string{}
	for _, a := range spans[0].Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["outcome"] != "retry" || attrs["event.id"] != "e1" || attrs["flow"] != "f" {
		t.Errorf("span attributes %v; want outcome retry, event.id e1, flow f", attrs)
	}
}

// intakeDelivery is a delivery of data to intake.
func intakeDelivery(data []byte, delivered int) (*Delivery, *fakeMsg) {
	m := newFakeMsg(event.SubjectISPM, data, delivered, 42)
	return &Delivery{Msg: m, Subject: m.subject, Data: data, Header: map[string][]string{"X-Trace": {"t"}},
		Delivered: delivered, Sequence: 42, Stage: "intake"}, m
}

func deadLetters(t *testing.T, b *fakeBroker) []status.DeadLetter {
	t.Helper()
	var out []status.DeadLetter
	for _, p := range b.publishedTo(status.DLQSubjectPrefix) {
		var dl status.DeadLetter
		if err := json.Unmarshal(p.data, &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

func TestRecordIntakeStoresTheDeadLetterBeforeSayingRecorded(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	w := fakeWorker(t, b, nil)
	step := w.recordIntake(HandlerFunc(func(context.Context, *Delivery) error {
		return DeadLetter(status.ReasonInvalidJSON, errors.New("not JSON"))
	}))
	d, _ := intakeDelivery([]byte("nope"), 1)
	res := step.Handle(context.Background(), d)
	if !res.Recorded {
		t.Fatalf("result %+v not recorded", res)
	}
	dls := deadLetters(t, b)
	if len(dls) != 1 || string(dls[0].Payload) != "nope" || dls[0].EventSequence != 42 || dls[0].Stream != broker.StreamEvents {
		t.Errorf("dead letters %+v; want one with the payload and the event's reference", dls)
	}
	if len(b.publishedTo(status.Rejected.Subject())) != 1 {
		t.Errorf("no rejected status")
	}

	// The DLQ refuses: not recorded, so the runner hands the event back.
	b2 := newFakeBroker()
	b2.publishFn = func(string, []byte) error { return errors.New("DLQ unavailable") }
	w2 := fakeWorker(t, b2, nil)
	res = w2.recordIntake(HandlerFunc(func(context.Context, *Delivery) error {
		return DeadLetter(status.ReasonInvalidJSON, errors.New("not JSON"))
	})).Handle(context.Background(), d)
	if _, ok := asRetry(res.Err); !ok || res.Recorded {
		t.Errorf("result with the DLQ down = %+v; want an unrecorded retry", res)
	}
}

func TestLastDeliveryTurnsARetryIntoADeadLetter(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	w := fakeWorker(t, b, nil)
	step := w.recordIntake(HandlerFunc(func(context.Context, *Delivery) error {
		return Retry(0, "could not store the dispatch job", errors.New("stream unavailable"))
	}))
	d, _ := intakeDelivery([]byte(`{"id":"e1"}`), 5)
	if res := step.Handle(context.Background(), d); res.Recorded {
		t.Fatalf("a retry on an ordinary delivery was recorded as final: %+v", res)
	}
	d.LastDelivery = true
	res := step.Handle(context.Background(), d)
	dl, ok := asDeadLetter(res.Err)
	if !ok || !res.Recorded || dl.Reason != status.ReasonRetriesExhausted {
		t.Fatalf("last delivery result = %+v; want a recorded retries_exhausted dead letter", res)
	}
	if dls := deadLetters(t, b); len(dls) != 1 || !strings.Contains(dls[0].Error, "stream unavailable") {
		t.Errorf("dead letters %+v; want one saying why", dls)
	}
}

func TestTooLargeEventIsDeadLetteredByReferenceOnly(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	w := fakeWorker(t, b, func(c *Config) { c.MaxEventBytes = 10 })
	d, _ := intakeDelivery([]byte(`{"id":"a-bit-too-long"}`), 1)
	res := w.intakeStep().Handle(context.Background(), d)
	dl, ok := asDeadLetter(res.Err)
	if !ok || !res.Recorded || dl.Reason != status.ReasonTooLarge {
		t.Fatalf("result %+v; want a recorded too_large dead letter", res)
	}
	dls := deadLetters(t, b)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters", len(dls))
	}
	got := dls[0]
	if len(got.Payload) != 0 || len(got.Headers) != 0 || got.EventSequence != 42 || got.Stream != broker.StreamEvents {
		t.Errorf("too_large dead letter %+v; want no payload or headers, and the event's stream and sequence", got)
	}
	if !strings.Contains(got.Error, "23 bytes") || !strings.Contains(got.Error, "limit of 10 bytes") {
		t.Errorf("error %q should name the size and the limit", got.Error)
	}
}

func TestDeadLetterTooLargeToStoreBecomesAReference(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	b.publishFn = func(subject string, data []byte) error {
		if strings.HasPrefix(subject, status.DLQSubjectPrefix) && len(data) > 700 {
			return fmt.Errorf("publish: %w", ErrPayloadTooLarge)
		}
		return nil
	}
	w := fakeWorker(t, b, nil)
	d, _ := intakeDelivery(bytes.Repeat([]byte("x"), 800), 1)
	res := w.recordIntake(HandlerFunc(func(context.Context, *Delivery) error {
		return DeadLetter(status.ReasonInvalidJSON, errors.New("not JSON"))
	})).Handle(context.Background(), d)
	if !res.Recorded {
		t.Fatalf("result %+v not recorded", res)
	}
	dls := deadLetters(t, b)
	if len(dls) != 1 || len(dls[0].Payload) != 0 || dls[0].EventSequence != 42 {
		t.Errorf("dead letters %+v; want one reference-only", dls)
	}
}

func TestJobTooLargeToStoreIsPermanent(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrPayloadTooLarge} {
		if !payloadTooLarge(fmt.Errorf("publish to x: %w", err)) {
			t.Errorf("%v is not seen as too large", err)
		}
	}
	if payloadTooLarge(errors.New("stream unavailable")) {
		t.Error("an ordinary error is seen as too large")
	}
}

// testJobKey is the key of the job of dispatchDelivery: event e1, flow f.
var testJobKey = jobKey(keysForTests(), event.KindISPMIssue, "e1", "f")

// dispatchDelivery is a delivery of a job of flow f for event sequence seq.
func dispatchDelivery(t *testing.T, seq uint64, delivered int) (*Delivery, *fakeMsg) {
	t.Helper()
	key := testJobKey
	job := Job{Version: jobVersion, Key: key, IdempotencyKey: idempotencyKeyPrefix + key, EventID: "e1", EventKind: event.KindISPMIssue,
		Flow: "f", Rule: "r", Priority: event.Priorities[0], Subject: event.SubjectISPM, EventSequence: seq}
	data, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMsg(DispatchSubject("f", job.Priority), data, delivered, 7)
	// signed as intake signs it, with the tests' record key
	m.header = map[string][]string{seal.Header: {keysForTests().SignRecord(m.subject, data)}}
	return &Delivery{Msg: m, Subject: m.subject, Data: data, Header: m.header, Delivered: delivered, Sequence: 7, Stage: "dispatch/f"}, m
}

func TestDispatchDeadLetterEmbedsTheEventLoadedBySequence(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	b.events[42] = &broker.StoredMessage{Stream: broker.StreamEvents, Sequence: 42, Data: []byte(`{"id":"e1"}`), Header: map[string][]string{"Remediator-Principal": {"p"}}}
	w := fakeWorker(t, b, nil)
	w.jobs = newFakeKV()
	step := w.recordDispatch(func(context.Context, *Delivery) (*dispatchState, error) {
		return nil, DeadLetter(status.ReasonPermanentFailure, errors.New("HTTP 400"))
	})
	for _, seq := range []uint64{42, 43} { // 43: no longer in the stream
		d, _ := dispatchDelivery(t, seq, 1)
		d.Job, _ = decodeJob(d.Data)
		if res := step.Handle(context.Background(), d); !res.Recorded {
			t.Fatalf("seq %d: result %+v not recorded", seq, res)
		}
	}
	dls := deadLetters(t, b)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	if string(dls[0].Payload) != `{"id":"e1"}` || dls[0].Headers["Remediator-Principal"][0] != "p" || dls[0].EventSequence != 42 {
		t.Errorf("dead letter %+v; want the event's bytes and headers embedded", dls[0])
	}
	if len(dls[1].Payload) != 0 || dls[1].EventSequence != 43 || !strings.Contains(dls[1].Error, "reference only") {
		t.Errorf("dead letter of a missing event %+v; want a reference that says so", dls[1])
	}
}
