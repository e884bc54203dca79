package publish_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/telemetry"
)

func TestMain(m *testing.M) {
	brokertest.VerifyTestMain(m)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDetectSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		want    string
		wantErr bool
	}{
		{"ISPM on-demand", `{"eventId":"e1","issueId":"Alert_1","issueTitle":"Unused Admin Account"}`, event.SubjectISPM, false},
		{"ISPM on-demand, title only", `{"issueTitle":"Old Password"}`, event.SubjectISPM, false},
		{"ISPM webhook", `{"id":"e2","type":"issue.created","eventData":{"id":"Alert_2"}}`, event.SubjectISPM, false},
		{"entity risk", `{"eventId":"e3","userId":"00u1","riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK"}`, event.SubjectITP, false},
		{"entity risk, detection type only", `{"detectionType":"BRUTE_FORCE_ATTACK"}`, event.SubjectITP, false},
		{"leading whitespace", "\n  {\"riskLevel\":\"LOW\"}\n", event.SubjectITP, false},
		{"Okta risk LogEvent", `{"uuid":"u1","eventType":"user.risk.detect","published":"2026-01-01T00:00:00Z"}`, event.SubjectITP, false},
		{"Okta risk change LogEvent", `{"uuid":"u2","eventType":"user.risk.change"}`, event.SubjectITP, false},
		{"other Okta LogEvent", `{"uuid":"u3","eventType":"user.session.start"}`, "", true},
		{"event-hook delivery", `{"eventType":"com.okta.event_hook","data":{"events":[]}}`, "", true},
		{"not JSON", `this is not json`, "", true},
		{"truncated JSON", `{"issueId":"Alert_1"`, "", true},
		{"JSON array", `[{"issueId":"Alert_1"}]`, "", true},
		{"JSON string", `"issueId"`, "", true},
		{"empty", ``, "", true},
		{"JSON with neither", `{"eventId":"e4","hello":"world"}`, "", true},
		{"empty object", `{}`, "", true},
	}
	for _, tt := range tests {
		got, err := publish.DetectSubject([]byte(tt.doc))
		if tt.wantErr {
			if !errors.Is(err, publish.ErrUnknownKind) {
				t.Errorf("%s: DetectSubject = %q, %v; want an error wrapping ErrUnknownKind", tt.name, got, err)
			}
			if got != "" {
				t.Errorf("%s: DetectSubject returned subject %q with its error", tt.name, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: DetectSubject = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestDetectSubjectExamples(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"ispm-unused-admin.json":          event.SubjectISPM,
		"ispm-compromised-account.json":   event.SubjectISPM,
		"ispm-webhook-issue-created.json": event.SubjectISPM,
		"itp-high-risk.json":              event.SubjectITP,
		"itp-low-risk.json":               event.SubjectITP,
		"okta-user-risk-detect.json":      event.SubjectITP,
	}
	for file, want := range tests {
		if got, err := publish.DetectSubject(example(t, file)); err != nil || got != want {
			t.Errorf("DetectSubject(examples/%s) = %q, %v; want %q", file, got, err, want)
		}
	}
}

// newPublisher connects to a fresh embedded JetStream and returns a publisher whose spans
// are recorded.
func newPublisher(t *testing.T) (*publish.Publisher, *broker.Broker, *tracetest.SpanRecorder) {
	t.Helper()
	b := brokertest.Connect(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("tracer provider shutdown: %v", err)
		}
	})
	return publish.New(b, tp), b, rec
}

func TestPublish(t *testing.T) {
	t.Parallel()
	p, b, rec := newPublisher(t)

	t.Run("stores the exact bytes with the event id and trace context", func(t *testing.T) {
		ctx := testCtx(t)
		data := example(t, "ispm-unused-admin.json")
		const id = "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
		res, err := p.Publish(ctx, data, publish.Options{Header: map[string][]string{"X-Origin": {"test"}}})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if res.Subject != event.SubjectISPM || res.Stream != broker.StreamEvents || res.EventID != id || res.Duplicate || res.Sequence == 0 {
			t.Errorf("Result = %+v, want subject %s, stream %s, event id %s, a sequence, not duplicate",
				res, event.SubjectISPM, broker.StreamEvents, id)
		}
		if len(res.TraceID) != 32 {
			t.Fatalf("TraceID = %q, want 32 hex digits", res.TraceID)
		}
		msg, err := b.GetMessage(ctx, broker.StreamEvents, res.Sequence)
		if err != nil {
			t.Fatalf("GetMessage: %v", err)
		}
		if !bytes.Equal(msg.Data, data) {
			t.Errorf("stored payload differs from the published bytes:\n got %q\nwant %q", msg.Data, data)
		}
		if msg.Subject != event.SubjectISPM {
			t.Errorf("stored on %q, want %q", msg.Subject, event.SubjectISPM)
		}
		if got := msg.Header["Nats-Msg-Id"]; len(got) != 1 || got[0] != id {
			t.Errorf("Nats-Msg-Id = %v, want [%s]", got, id)
		}
		if got := msg.Header["X-Origin"]; len(got) != 1 || got[0] != "test" {
			t.Errorf("X-Origin = %v, want [test] (caller's header kept)", got)
		}
		if telemetry.Headers(msg.Header).Get("traceparent") == "" {
			t.Fatalf("no traceparent header in %v", msg.Header)
		}
		sc := trace.SpanContextFromContext(telemetry.Extract(context.Background(), msg.Header))
		if !sc.IsValid() || sc.TraceID().String() != res.TraceID {
			t.Errorf("traceparent carries trace %s, Result.TraceID is %s", sc.TraceID(), res.TraceID)
		}
		span := findSpan(rec, res.TraceID)
		if span == nil {
			t.Fatalf("no span recorded for trace %s", res.TraceID)
		}
		if span.Name() != "send "+event.SubjectISPM || span.SpanKind() != trace.SpanKindProducer {
			t.Errorf("span %q kind %v, want %q, producer", span.Name(), span.SpanKind(), "send "+event.SubjectISPM)
		}
		if span.SpanContext().SpanID() != sc.SpanID() {
			t.Errorf("traceparent names span %s, the publish span is %s", sc.SpanID(), span.SpanContext().SpanID())
		}
	})

	t.Run("the same event twice is stored once", func(t *testing.T) {
		ctx := testCtx(t)
		data := example(t, "itp-high-risk.json")
		first, err := p.Publish(ctx, data, publish.Options{})
		if err != nil {
			t.Fatalf("first Publish: %v", err)
		}
		if first.Duplicate || first.Subject != event.SubjectITP {
			t.Errorf("first Result = %+v, want not duplicate, subject %s", first, event.SubjectITP)
		}
		second, err := p.Publish(ctx, data, publish.Options{})
		if err != nil {
			t.Fatalf("second Publish: %v", err)
		}
		if !second.Duplicate {
			t.Errorf("second Result = %+v, want Duplicate", second)
		}
		if second.Sequence != first.Sequence {
			t.Errorf("second publish reports sequence %d, the original is %d", second.Sequence, first.Sequence)
		}
	})

	t.Run("explicit subject and message id", func(t *testing.T) {
		ctx := testCtx(t)
		data := example(t, "not-json.txt")
		res, err := p.Publish(ctx, data, publish.Options{Subject: event.SubjectITP, MsgID: "replay-1"})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if res.Subject != event.SubjectITP || res.EventID != "" {
			t.Errorf("Result = %+v, want subject %s and no event id", res, event.SubjectITP)
		}
		msg, err := b.GetMessage(ctx, broker.StreamEvents, res.Sequence)
		if err != nil {
			t.Fatalf("GetMessage: %v", err)
		}
		if msg.Subject != event.SubjectITP || !bytes.Equal(msg.Data, data) {
			t.Errorf("stored %q on %s, want the original bytes on %s", msg.Data, msg.Subject, event.SubjectITP)
		}
		if got := msg.Header["Nats-Msg-Id"]; len(got) != 1 || got[0] != "replay-1" {
			t.Errorf("Nats-Msg-Id = %v, want [replay-1]", got)
		}
	})

	t.Run("an explicit message id replaces the event id", func(t *testing.T) {
		ctx := testCtx(t)
		data := example(t, "ispm-compromised-account.json")
		first, err := p.Publish(ctx, data, publish.Options{})
		if err != nil {
			t.Fatal(err)
		}
		again, err := p.Publish(ctx, data, publish.Options{MsgID: first.EventID + "-replay"})
		if err != nil {
			t.Fatal(err)
		}
		if again.Duplicate || again.Sequence == first.Sequence {
			t.Errorf("republish with a new message id: %+v, want a new message (first was #%d)", again, first.Sequence)
		}
		if again.EventID != first.EventID || again.EventID == "" {
			t.Errorf("EventID = %q, want the document's %q", again.EventID, first.EventID)
		}
	})

	t.Run("a caller's span is the parent", func(t *testing.T) {
		tp := sdktrace.NewTracerProvider()
		defer tp.Shutdown(context.Background())
		ctx, parent := tp.Tracer("test").Start(testCtx(t), "cli")
		defer parent.End()
		res, err := p.Publish(ctx, []byte(`{"eventId":"parented-1","riskLevel":"LOW"}`), publish.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want := parent.SpanContext().TraceID().String(); res.TraceID != want {
			t.Errorf("TraceID = %s, want the caller's %s", res.TraceID, want)
		}
	})

	t.Run("undetectable document", func(t *testing.T) {
		before, err := b.StreamInfo(testCtx(t), broker.StreamEvents, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Publish(testCtx(t), []byte(`{"hello":"world"}`), publish.Options{})
		if !errors.Is(err, publish.ErrUnknownKind) {
			t.Errorf("Publish = %v, want ErrUnknownKind", err)
		}
		after, err := b.StreamInfo(testCtx(t), broker.StreamEvents, false)
		if err != nil {
			t.Fatal(err)
		}
		if after.Messages != before.Messages {
			t.Errorf("stream went from %d to %d messages; nothing should be stored", before.Messages, after.Messages)
		}
	})

	t.Run("subject no stream captures", func(t *testing.T) {
		_, err := p.Publish(testCtx(t), []byte(`{"eventId":"x"}`), publish.Options{Subject: "remediation.nowhere"})
		if !errors.Is(err, broker.ErrStreamNotFound) {
			t.Errorf("Publish = %v, want an error wrapping broker.ErrStreamNotFound", err)
		}
	})
}

func findSpan(rec *tracetest.SpanRecorder, traceID string) sdktrace.ReadOnlySpan {
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() == traceID {
			return s
		}
	}
	return nil
}

// A nil tracer provider falls back to the global one; publishing still works and the
// message still carries its id.
func TestPublishDefaultTracerProvider(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	p := publish.New(b, nil)
	res, err := p.Publish(testCtx(t), []byte(`{"eventId":"global-1","issueId":"Alert_1"}`), publish.Options{})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	msg, err := b.GetMessage(testCtx(t), broker.StreamEvents, res.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header["Nats-Msg-Id"]; len(got) != 1 || got[0] != "global-1" {
		t.Errorf("Nats-Msg-Id = %v, want [global-1]", got)
	}
}
