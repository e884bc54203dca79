package ingress

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names.
const (
	metricRequests        = "remediator.ingress.requests"
	metricRequestDuration = "remediator.ingress.request.duration"
	metricOktaEvents      = "remediator.ingress.okta.events"
)

// maxEventTypes bounds the distinct event.type values of remediator.ingress.okta.events;
// past it, types are counted as "other".
const maxEventTypes = 64

type metrics struct {
	requests metric.Int64Counter
	duration metric.Float64Histogram
	okta     metric.Int64Counter
	types    *onceSet
}

func newMetrics(m metric.Meter) (*metrics, error) {
	out := &metrics{types: newOnceSet(maxEventTypes)}
	var err error
	if out.requests, err = m.Int64Counter(metricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Ingress requests, by source (okta, ispm, api-ispm, api-itp) and HTTP status code.")); err != nil {
		return nil, err
	}
	if out.duration, err = m.Float64Histogram(metricRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Time to answer an ingress request, including JetStream's acks.")); err != nil {
		return nil, err
	}
	if out.okta, err = m.Int64Counter(metricOktaEvents, metric.WithUnit("{event}"),
		metric.WithDescription("LogEvents in Okta event hook deliveries, by event type and outcome (published, duplicate, skipped, too_large).")); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *metrics) request(ctx context.Context, source string, status int, took time.Duration) {
	attrs := metric.WithAttributes(attribute.String("source", source), attribute.Int("http.response.status_code", status))
	m.requests.Add(ctx, 1, attrs)
	m.duration.Record(ctx, took.Seconds(), attrs)
}

func (m *metrics) oktaEvent(ctx context.Context, eventType, outcome string) {
	if !m.types.add(eventType) && !m.types.has(eventType) {
		eventType = "other"
	}
	m.okta.Add(ctx, 1, metric.WithAttributes(attribute.String("event.type", eventType), attribute.String("outcome", outcome)))
}
