package flow_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/flow"
)

// tracedClient returns a client whose HTTP spans go to the returned recorder, and a parent span
// context standing for the worker's "invoke <flow>" span.
func tracedClient(t *testing.T) (*flow.Client, *tracetest.SpanRecorder, context.Context, trace.Span) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := flow.NewClient(flow.ClientConfig{TracerProvider: tp})
	t.Cleanup(c.CloseIdleConnections)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "invoke suspend-user", trace.WithSpanKind(trace.SpanKindClient))
	t.Cleanup(func() { parent.End() })
	return c, rec, ctx, parent
}

// spanText is everything a span would export, for secret scans.
func spanText(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %s\n", s.Name(), s.Status(), s.SpanKind())
	for _, a := range s.Attributes() {
		fmt.Fprintf(&b, "%s=%s\n", a.Key, a.Value.Emit())
	}
	for _, e := range s.Events() {
		fmt.Fprintf(&b, "event %s\n", e.Name)
		for _, a := range e.Attributes {
			fmt.Fprintf(&b, "  %s=%s\n", a.Key, a.Value.Emit())
		}
	}
	return b.String()
}

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestInvokeHTTPClientSpan: each call is an HTTP client span (HTTP semantic conventions), child
// of the caller's span, whose context the flow receives in traceparent; the URL it records
// has no query string, while the flow still receives the query.
func TestInvokeHTTPClientSpan(t *testing.T) {
	t.Parallel()
	const secret = "tok-SECRET-8c1f"
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int64
		wantError  bool
	}{
		{"success", 200, `{"ok":true}`, 200, false},
		{"401", 401, `{"errorSummary":"Invalid token"}`, 401, true},
		{"error body echoes the token", 500, `{"error":"token ` + secret + ` is not valid here"}`, 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec, ctx, parent := tracedClient(t)
			srv, ch := recordingServer(t, tt.status, tt.body)
			ep := endpoint(srv)
			ep.URL += "?clientToken=" + secret + "&other=1"
			ep.Auth = flow.ClientToken{Source: flow.StaticToken(secret)}
			_, err := c.Invoke(ctx, ep, flow.Request{Inputs: map[string]any{"eventId": "e1"}, IdempotencyKey: "rmd-1"})
			if (err != nil) != tt.wantError {
				t.Fatalf("Invoke error = %v, want error %v", err, tt.wantError)
			}
			got := <-ch
			if got.query != "clientToken="+secret+"&other=1" {
				t.Errorf("the flow received query %q; the client must pass it on", got.query)
			}
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans ended, want the 1 HTTP client span", len(spans))
			}
			s := spans[0]
			if s.SpanKind() != trace.SpanKindClient || s.Name() != "POST" {
				t.Errorf("span %q kind %v, want \"POST\" client", s.Name(), s.SpanKind())
			}
			if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("HTTP span parent %v, want the caller's span %v", s.Parent().SpanID(), parent.SpanContext().SpanID())
			}
			wantTP := fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID())
			if tp := got.header.Get("Traceparent"); tp != wantTP {
				t.Errorf("traceparent = %q, want %q (the HTTP client span)", tp, wantTP)
			}
			if v, _ := attrOf(s, "url.full"); v.AsString() != srv.URL+"/api/flo/0123456789abcdef0123456789abcdef/invoke" {
				t.Errorf("url.full = %q, want the URL without its query", v.AsString())
			}
			if v, _ := attrOf(s, "http.request.method"); v.AsString() != "POST" {
				t.Errorf("http.request.method = %q", v.AsString())
			}
			if v, _ := attrOf(s, "http.response.status_code"); v.AsInt64() != tt.wantStatus {
				t.Errorf("http.response.status_code = %d, want %d", v.AsInt64(), tt.wantStatus)
			}
			if _, ok := attrOf(s, "server.address"); !ok {
				t.Error("no server.address")
			}
			if text := spanText(s); strings.Contains(text, secret) || strings.Contains(text, "clientToken") {
				t.Errorf("the span shows the token or its query:\n%s", text)
			}
		})
	}
}

// TestInvokeHTTPClientSpanConnectionError: a failed connection ends the span in error, and
// neither the status message nor the attributes show the query.
func TestInvokeHTTPClientSpanConnectionError(t *testing.T) {
	t.Parallel()
	c, rec, ctx, _ := tracedClient(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	ep := endpoint(srv)
	srv.Close()
	ep.URL += "?clientToken=tok-SECRET-8c1f"
	if _, err := c.Invoke(ctx, ep, flow.Request{}); err == nil {
		t.Fatal("Invoke to a closed server succeeded")
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	if spans[0].Status().Code.String() != "Error" {
		t.Errorf("status = %v, want Error", spans[0].Status())
	}
	if text := spanText(spans[0]); strings.Contains(text, "tok-SECRET-8c1f") {
		t.Errorf("the span shows the token:\n%s", text)
	}
}

// TestInvokeUntracedCallerStillPropagates: without a caller span the HTTP span is a root, and
// the flow still receives its traceparent.
func TestInvokeUntracedCallerStillPropagates(t *testing.T) {
	t.Parallel()
	c, rec, _, _ := tracedClient(t)
	srv, ch := recordingServer(t, 200, "{}")
	if _, err := c.Invoke(context.Background(), endpoint(srv), flow.Request{}); err != nil {
		t.Fatal(err)
	}
	got := <-ch
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Parent().IsValid() {
		t.Fatalf("spans = %d (parent valid: %v), want 1 root span", len(spans), len(spans) == 1 && spans[0].Parent().IsValid())
	}
	if !strings.Contains(got.header.Get("Traceparent"), spans[0].SpanContext().TraceID().String()) {
		t.Errorf("traceparent %q does not carry the span's trace", got.header.Get("Traceparent"))
	}
}
