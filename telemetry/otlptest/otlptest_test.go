package otlptest_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/remediator/remediator/telemetry/otlptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// TestReceiverWithRealExporter sends spans with the real OTLP/HTTP exporter, gzip-compressed
// and not, and reads them back as a tree.
func TestReceiverWithRealExporter(t *testing.T) {
	t.Parallel()
	for _, compression := range []otlptracehttp.Compression{otlptracehttp.NoCompression, otlptracehttp.GzipCompression} {
		recv := otlptest.Start(t)
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(recv.URL+otlptest.TracesPath), otlptracehttp.WithCompression(compression))
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
		tr := tp.Tracer("otlptest")
		ctx, root := tr.Start(context.Background(), "send subject", trace.WithSpanKind(trace.SpanKindProducer))
		_, child := tr.Start(ctx, "process subject", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(trace.Link{SpanContext: root.SpanContext()}),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.Int("attempt", 2), attribute.StringSlice("list", []string{"a", "b"})))
		child.AddEvent("flow", trace.WithAttributes(attribute.String("flow", "suspend")))
		child.End()
		root.End()
		spans := recv.WaitFor(t, 10*time.Second, "two spans", func() { _ = tp.ForceFlush(context.Background()) },
			func(s []otlptest.Span) bool { return len(s) == 2 })
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		traceID := root.SpanContext().TraceID().String()
		roots := otlptest.Tree(recv.Trace(traceID))
		if len(roots) != 1 || roots[0].Name != "send subject" || roots[0].Kind != "producer" || len(roots[0].Children) != 1 {
			t.Fatalf("tree = %v (from %v), want send subject → process subject", roots, spans)
		}
		c := roots[0].Child(otlptest.Named("process *"))
		if c == nil || c.Kind != "consumer" || c.Attr("messaging.system") != "nats" || c.Attr("attempt") != "2" || c.Scope != "otlptest" {
			t.Fatalf("child = %+v", c)
		}
		if len(c.Links) != 1 || c.Links[0].SpanID != root.SpanContext().SpanID().String() || c.Links[0].TraceID != traceID {
			t.Errorf("links = %+v, want the root", c.Links)
		}
		if len(c.Events) != 1 || c.Events[0].Attributes["flow"] != "suspend" {
			t.Errorf("events = %+v", c.Events)
		}
		if c.Service == "" || c.Resource["service.name"] != c.Service {
			t.Errorf("service %q, resource %v", c.Service, c.Resource)
		}
		if !recv.Contains("process subject") || recv.Contains("no-such-text") {
			t.Error("Contains is wrong")
		}
		total, gz := recv.Requests()
		if total == 0 || (compression == otlptracehttp.GzipCompression) != (gz == total) {
			t.Errorf("compression %v: %d requests, %d gzipped", compression, total, gz)
		}
		if want := "send subject [producer]\n  process subject [consumer]\n"; roots[0].String() != want {
			t.Errorf("String() = %q, want %q", roots[0].String(), want)
		}
	}
}

func TestReceiverRefusesOtherEncodings(t *testing.T) {
	t.Parallel()
	recv := otlptest.Start(t)
	for _, tc := range []struct {
		method, ctype string
		body          string
		want          int
	}{
		{http.MethodPost, "application/json", "{}", http.StatusUnsupportedMediaType},
		{http.MethodPost, "application/x-protobuf", "\xff\xff\xff", http.StatusBadRequest},
		{http.MethodGet, "", "", http.StatusMethodNotAllowed},
	} {
		req, err := http.NewRequest(tc.method, recv.URL+otlptest.TracesPath, bytes.NewBufferString(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.ctype, resp.StatusCode, tc.want)
		}
	}
	if len(recv.Spans()) != 0 {
		t.Error("spans stored from refused requests")
	}
	http.DefaultClient.CloseIdleConnections()
}
