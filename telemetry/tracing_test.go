package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/remediator/remediator/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestHeadersGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    telemetry.Headers
		key  string
		want string
	}{
		{"exact", telemetry.Headers{"traceparent": {traceparent}}, "traceparent", traceparent},
		{"foreign lower case asked canonical", telemetry.Headers{"traceparent": {traceparent}}, "Traceparent", traceparent},
		{"canonical asked lower case", telemetry.Headers{"Traceparent": {traceparent}}, "traceparent", traceparent},
		{"upper case", telemetry.Headers{"TRACEPARENT": {traceparent}}, "traceparent", traceparent},
		{"first value", telemetry.Headers{"Tracestate": {"a=1", "b=2"}}, "tracestate", "a=1"},
		{"absent", telemetry.Headers{"Nats-Msg-Id": {"e1"}}, "traceparent", ""},
		{"empty value list", telemetry.Headers{"traceparent": {}}, "traceparent", ""},
		{"nil headers", nil, "traceparent", ""},
	}
	for _, tt := range tests {
		if got := tt.h.Get(tt.key); got != tt.want {
			t.Errorf("%s: Get(%q) = %q, want %q", tt.name, tt.key, got, tt.want)
		}
	}
}

func TestHeadersSetKeys(t *testing.T) {
	t.Parallel()
	h := telemetry.Headers{"traceparent": {"old", "older"}, "Nats-Msg-Id": {"e1"}}
	h.Set("traceparent", traceparent)
	if got := h["traceparent"]; !slices.Equal(got, []string{traceparent}) {
		t.Errorf("after Set: %v, want [%s]", got, traceparent)
	}
	keys := h.Keys()
	slices.Sort(keys)
	if want := []string{"Nats-Msg-Id", "traceparent"}; !slices.Equal(keys, want) {
		t.Errorf("Keys = %v, want %v", keys, want)
	}
}

// newSpan starts a span on an SDK tracer provider, ended and shut down with the test.
func newSpan(t *testing.T) (context.Context, trace.Span) {
	t.Helper()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(t.Context(), "op")
	t.Cleanup(func() { span.End() })
	return ctx, span
}

func TestInjectExtract(t *testing.T) {
	t.Parallel()
	ctx, span := newSpan(t)
	want := span.SpanContext()

	h := map[string][]string{"Nats-Msg-Id": {"e1"}}
	telemetry.Inject(ctx, h)
	tp := telemetry.Headers(h).Get("traceparent")
	if !strings.Contains(tp, want.TraceID().String()) || !strings.Contains(tp, want.SpanID().String()) {
		t.Errorf("traceparent %q does not carry trace %s span %s", tp, want.TraceID(), want.SpanID())
	}
	if got := h["Nats-Msg-Id"]; !slices.Equal(got, []string{"e1"}) {
		t.Errorf("Inject changed another header: %v", got)
	}

	got := trace.SpanContextFromContext(telemetry.Extract(context.Background(), h))
	if !got.IsRemote() {
		t.Error("extracted span context is not marked remote")
	}
	if got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() || got.TraceFlags() != want.TraceFlags() {
		t.Errorf("round trip: %v, want %v", got, want)
	}
	if id := telemetry.TraceID(telemetry.Extract(context.Background(), h)); id != want.TraceID().String() {
		t.Errorf("TraceID of the extracted context = %q, want %s", id, want.TraceID())
	}
}

// A foreign publisher (the nats CLI, another language's client) may send the header in any case.
func TestExtractForeignHeaderCase(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		ctx := telemetry.Extract(context.Background(), map[string][]string{key: {traceparent}})
		if got := telemetry.TraceID(ctx); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("header %q: TraceID = %q, want 4bf92f3577b34da6a3ce929d0e0e4736", key, got)
		}
	}
}

func TestExtractWithoutTraceContext(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]map[string][]string{
		"none":      nil,
		"unrelated": {"Nats-Msg-Id": {"e1"}},
		"malformed": {"traceparent": {"not-a-traceparent"}},
	} {
		if got := telemetry.TraceID(telemetry.Extract(context.Background(), h)); got != "" {
			t.Errorf("%s: TraceID = %q, want empty", name, got)
		}
	}
}

func TestInjectWithoutSpan(t *testing.T) {
	t.Parallel()
	h := map[string][]string{}
	telemetry.Inject(context.Background(), h)
	if _, ok := h["traceparent"]; ok {
		t.Errorf("Inject without a span wrote %v", h)
	}
}

func TestTraceID(t *testing.T) {
	t.Parallel()
	if got := telemetry.TraceID(context.Background()); got != "" {
		t.Errorf("TraceID without a span = %q, want empty", got)
	}
	ctx, span := newSpan(t)
	if got, want := telemetry.TraceID(ctx), span.SpanContext().TraceID().String(); got != want || len(got) != 32 {
		t.Errorf("TraceID = %q, want %q", got, want)
	}
}

// logLine logs one record through LogHandler on a JSON handler and decodes it.
func logLine(t *testing.T, ctx context.Context, wrap func(*slog.Logger) *slog.Logger) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil)))
	if wrap != nil {
		logger = wrap(logger)
	}
	logger.InfoContext(ctx, "delivered", "event_id", "e1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	return rec
}

func TestLogHandler(t *testing.T) {
	t.Parallel()
	ctx, span := newSpan(t)
	sc := span.SpanContext()

	rec := logLine(t, ctx, nil)
	if rec["trace_id"] != sc.TraceID().String() || rec["span_id"] != sc.SpanID().String() {
		t.Errorf("with a span: trace_id %v span_id %v, want %s %s", rec["trace_id"], rec["span_id"], sc.TraceID(), sc.SpanID())
	}
	if rec["event_id"] != "e1" || rec["msg"] != "delivered" {
		t.Errorf("record lost its own attributes: %v", rec)
	}

	rec = logLine(t, ctx, func(l *slog.Logger) *slog.Logger { return l.With("stage", "intake") })
	if rec["trace_id"] != sc.TraceID().String() || rec["stage"] != "intake" {
		t.Errorf("through With: %v, want trace_id %s and stage intake", rec, sc.TraceID())
	}

	for name, ctx := range map[string]context.Context{
		"no span": context.Background(),
		// A context holding a zero span context, as left by a message without traceparent.
		"invalid span context": trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}),
	} {
		rec := logLine(t, ctx, nil)
		if _, ok := rec["trace_id"]; ok {
			t.Errorf("%s: record has trace_id: %v", name, rec)
		}
		if _, ok := rec["span_id"]; ok {
			t.Errorf("%s: record has span_id: %v", name, rec)
		}
	}

	remote := telemetry.Extract(context.Background(), map[string][]string{"traceparent": {traceparent}})
	if rec := logLine(t, remote, nil); rec["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || rec["span_id"] != "00f067aa0ba902b7" {
		t.Errorf("with a remote span context: %v", rec)
	}
}

// SetupTracing reads the process environment, so these tests use t.Setenv and cannot be parallel.

func TestSetupTracingWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := telemetry.SetupTracing(t.Context(), "test")
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	if tr.Exporting || tr.Endpoint != "" {
		t.Errorf("Tracing = {Exporting: %v, Endpoint: %q}, want no export", tr.Exporting, tr.Endpoint)
	}
	if tr.Provider == nil {
		t.Fatal("no tracer provider")
	}
	// SetupTracing is a library call: the process-wide provider is not touched.
	if otel.GetTracerProvider() == trace.TracerProvider(tr.Provider) {
		t.Error("SetupTracing installed its provider globally")
	}
	// Spans are still real, so trace ids still appear in logs and status records.
	ctx, span := tr.Provider.Tracer("test").Start(t.Context(), "op")
	defer span.End()
	if telemetry.TraceID(ctx) == "" {
		t.Error("a span of the provider has no trace id")
	}
}

func TestSetupTracingUnknownProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus")
	tr, err := telemetry.SetupTracing(t.Context(), "test")
	if err == nil {
		_ = tr.Shutdown(context.Background())
		t.Fatal("SetupTracing accepted OTEL_EXPORTER_OTLP_PROTOCOL=bogus")
	}
	for _, want := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", `"bogus"`, "http/protobuf", "grpc"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %s", err, want)
		}
	}
}

func TestShutdownNil(t *testing.T) {
	t.Parallel()
	var tr *telemetry.Tracing
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("nil Tracing Shutdown: %v", err)
	}
}

// TestInstallGlobal: installing globally is an explicit call, for main.
func TestInstallGlobal(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	before, beforeProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(before)
		otel.SetTextMapPropagator(beforeProp)
	})
	tr, err := telemetry.SetupTracing(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	tr.InstallGlobal()
	if otel.GetTracerProvider() != trace.TracerProvider(tr.Provider) {
		t.Error("InstallGlobal did not install the provider")
	}
	if f := otel.GetTextMapPropagator().Fields(); !slices.Contains(f, "traceparent") {
		t.Errorf("global propagator fields %v, want traceparent", f)
	}
}
