package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName is the default OpenTelemetry service name.
const ServiceName = "remediator"

// Tracing is a configured tracer provider and the means to flush it.
type Tracing struct {
	Provider *sdktrace.TracerProvider
	// Exporting reports whether spans leave the process (an OTLP endpoint is configured).
	Exporting bool
	// Endpoint is the configured OTLP endpoint, for logs.
	Endpoint string
}

// SetupTracing builds a tracer provider from the standard OTEL_* environment variables. It
// installs nothing globally: the caller passes Provider to what makes spans (the service, the
// publisher). A program's main may call [Tracing.InstallGlobal] for libraries that read the
// global provider; a library never does.
func SetupTracing(ctx context.Context, version string) (*Tracing, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(ServiceName), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override the above
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	t := &Tracing{}
	if ep := otlpEndpoint(); ep != "" {
		exp, err := newExporter(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		t.Exporting, t.Endpoint = true, ep
	}
	t.Provider = sdktrace.NewTracerProvider(opts...)
	return t, nil
}

// InstallGlobal makes t's provider and the W3C trace-context propagator OpenTelemetry's global
// ones, for third-party code that reads them. It is for a program's main only: process-wide
// state set from a library call leaks between tests and between services in one process.
func (t *Tracing) InstallGlobal() {
	otel.SetTracerProvider(t.Provider)
	otel.SetTextMapPropagator(Propagator())
}

// Shutdown flushes pending spans.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.Provider == nil {
		return nil
	}
	return t.Provider.Shutdown(ctx)
}

func otlpEndpoint() string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return ""
}

func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "", "http/protobuf":
		return otlptracehttp.New(ctx) // reads the OTEL_EXPORTER_OTLP_* variables itself
	case "grpc":
		return otlptracegrpc.New(ctx)
	}
	return nil, fmt.Errorf("telemetry: OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported (use http/protobuf or grpc)", proto)
}

// Propagator is the W3C trace-context and baggage propagator used on NATS headers.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Headers adapts NATS message headers to OpenTelemetry propagation. Lookups ignore case, as
// publishers such as the nats CLI send "traceparent" while others send "Traceparent".
type Headers map[string][]string

var _ propagation.TextMapCarrier = Headers(nil)

// Get returns the first value of key, matched case-insensitively.
func (h Headers) Get(key string) string {
	if v, ok := h[key]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Set replaces key's values.
func (h Headers) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header names.
func (h Headers) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// Inject writes ctx's trace context into h.
func Inject(ctx context.Context, h map[string][]string) {
	Propagator().Inject(ctx, Headers(h))
}

// Extract returns ctx with the remote span context found in h, if any.
func Extract(ctx context.Context, h map[string][]string) context.Context {
	return Propagator().Extract(ctx, Headers(h))
}

// TraceID returns the trace id of ctx's span, or "" when there is none.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// LogHandler wraps h so that records logged with a context holding a span carry trace_id and span_id.
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return t.Handler.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return traceHandler{t.Handler.WithAttrs(a)}
}

func (t traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{t.Handler.WithGroup(name)}
}
