package flow

import (
	"context"
	"net/http"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrument wraps base so that every call is an OpenTelemetry HTTP client span (and counts in
// the http.client.* metrics), following the HTTP semantic conventions, with the W3C trace
// context of that span sent to the flow in traceparent.
//
// The instrumentation never sees the URL's query string or user info: a ?clientToken= (or any
// other credential in the URL) must not end up in url.full. hideQuery hands otelhttp a copy of
// the request whose URL has neither; restoreQuery, between otelhttp and the network, puts the
// real URL back.
func instrument(base http.RoundTripper, tp trace.TracerProvider, mp metric.MeterProvider) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	opts := []otelhttp.Option{
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		// The semantic conventions' name for a client span without a URL template: the method.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	}
	if tp != nil {
		opts = append(opts, otelhttp.WithTracerProvider(tp))
	}
	if mp != nil {
		opts = append(opts, otelhttp.WithMeterProvider(mp))
	}
	return hideQuery{next: otelhttp.NewTransport(restoreQuery{base}, opts...), base: base}
}

// fullURLKey carries the request's real URL past the instrumentation.
type fullURLKey struct{}

// hideQuery strips the query, fragment and user info from the URL that the next round tripper
// sees, remembering the real URL in the request's context.
type hideQuery struct {
	next http.RoundTripper
	base http.RoundTripper
}

func (h hideQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL == nil || (r.URL.RawQuery == "" && !r.URL.ForceQuery && r.URL.User == nil && r.URL.Fragment == "") {
		return h.next.RoundTrip(r)
	}
	shown := *r.URL
	shown.RawQuery, shown.ForceQuery, shown.User, shown.Fragment, shown.RawFragment = "", false, nil, "", ""
	r2 := r.WithContext(context.WithValue(r.Context(), fullURLKey{}, r.URL)) // a shallow copy: r is not modified
	r2.URL = &shown
	return h.next.RoundTrip(r2)
}

// CloseIdleConnections closes the base transport's idle connections (otelhttp's transport does
// not pass the call on).
func (h hideQuery) CloseIdleConnections() {
	if c, ok := h.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// restoreQuery puts back the URL that hideQuery hid.
type restoreQuery struct{ base http.RoundTripper }

func (rq restoreQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	if u, ok := r.Context().Value(fullURLKey{}).(*url.URL); ok {
		r2 := r.WithContext(r.Context())
		r2.URL = u
		return rq.base.RoundTrip(r2)
	}
	return rq.base.RoundTrip(r)
}
