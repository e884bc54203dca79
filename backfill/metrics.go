package backfill

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Metric names (Prometheus: remediator_backfill_events_total, remediator_backfill_polls_total,
// remediator_backfill_leader).
const (
	metricEvents = "remediator.backfill.events"
	metricPolls  = "remediator.backfill.polls"
	metricLeader = "remediator.backfill.leader"
)

// Event outcomes and poll results.
const (
	outcomePublished = "published" // new to JetStream: the hook had not delivered it
	outcomeDuplicate = "duplicate" // already stored, by the hook or an earlier poll
	outcomeTooLarge  = "too_large"

	pollOK          = "ok"
	pollFailed      = "failed"
	pollRateLimited = "rate_limited"
	pollStandby     = "standby" // another replica holds the lease
)

type metrics struct {
	events metric.Int64Counter
	polls  metric.Int64Counter
	leader metric.Int64Gauge
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/remediator/remediator/backfill")
	out := &metrics{}
	var err error
	if out.events, err = m.Int64Counter(metricEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Risk LogEvents read from the System Log, by outcome (published: the event hook had not delivered it; duplicate; too_large).")); err != nil {
		return nil, err
	}
	if out.polls, err = m.Int64Counter(metricPolls, metric.WithUnit("{poll}"),
		metric.WithDescription("System Log polls, by result (ok, failed, rate_limited, standby: another replica holds the lease).")); err != nil {
		return nil, err
	}
	if out.leader, err = m.Int64Gauge(metricLeader,
		metric.WithDescription("1 while this replica holds the backfill lease and polls the System Log, else 0.")); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *metrics) event(ctx context.Context, outcome string) {
	m.events.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}

func (m *metrics) poll(ctx context.Context, result string, leader bool) {
	m.polls.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
	l := int64(0)
	if leader {
		l = 1
	}
	m.leader.Record(ctx, l)
}
