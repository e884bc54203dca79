package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/status"
)

// Metric names. The Prometheus exporter shows them with underscores, counters with _total and
// durations with _seconds: remediator.dispatch.attempts is remediator_dispatch_attempts_total.
// The README's Observability section lists them with their labels.
const (
	metricEventsReceived  = "remediator.events.received"
	metricEventsValidated = "remediator.events.validated"
	metricEventsRejected  = "remediator.events.rejected"
	metricAttempts        = "remediator.dispatch.attempts"
	metricOutcomes        = "remediator.dispatch.outcomes"
	metricRetries         = "remediator.retries"
	metricDeadLetters     = "remediator.dead_letters"
	metricInflight        = "remediator.inflight"
	metricRateLimitWait   = "remediator.rate_limit.wait"
	metricCircuitState    = "remediator.circuit.state"
	metricConsumerPending = "remediator.consumer.pending"
	metricTimeToRemediate = "remediator.time_to_remediate"
	metricMaxDeliveries   = "remediator.max_deliveries"
)

// Label keys.
const (
	labelKind        = attribute.Key("kind")
	labelReason      = attribute.Key("reason")
	labelFlow        = attribute.Key("flow")
	labelStatusClass = attribute.Key("status_class")
	labelOutcome     = attribute.Key("outcome")
	labelLevel       = attribute.Key("level")
	labelStage       = attribute.Key("stage")
	labelConsumer    = attribute.Key("consumer")
)

// Retry levels.
const (
	retryQuick      = "quick"      // an in-process retry within the same delivery
	retryRedelivery = "redelivery" // handed back to JetStream with a delay
)

// circuitClosed is the breaker state remediator_circuit_state starts at; 1 is half-open and
// 2 open (gobreaker's State values).
const circuitClosed = 0

// timeToRemediateBuckets span 0.1 s to a day: seconds for a healthy pipeline, minutes to hours
// behind an open breaker, an outage or a late detector.
var timeToRemediateBuckets = []float64{
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600,
}

// rateLimitWaitBuckets span an immediate slot to a minute behind a 429's Retry-After.
var rateLimitWaitBuckets = []float64{0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// metrics holds the worker's instruments. Its methods are safe on a nil *metrics (they do
// nothing), so that a recording call never needs a guard.
type metrics struct {
	meter           metric.Meter
	log             *slog.Logger
	received        metric.Int64Counter
	validated       metric.Int64Counter
	rejected        metric.Int64Counter
	attempts        metric.Int64Counter
	outcomes        metric.Int64Counter
	retries         metric.Int64Counter
	deadLetters     metric.Int64Counter
	inflight        metric.Int64UpDownCounter
	budgetWait      metric.Float64Histogram
	circuit         metric.Int64Gauge
	pending         metric.Int64ObservableGauge
	timeToRemediate metric.Float64Histogram
	maxDeliveries   metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider, log *slog.Logger, flows []Flow) (*metrics, error) {
	m := &metrics{meter: mp.Meter("github.com/remediator/remediator/worker"), log: log}
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.meter.Int64Counter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	m.received = counter(metricEventsReceived, "Events delivered to intake for the first time, by kind (unknown when the subject names none).")
	m.validated = counter(metricEventsValidated, "Events that passed schema validation, by kind.")
	m.rejected = counter(metricEventsRejected, "Events refused at intake and dead-lettered, by kind and reason.")
	m.attempts = counter(metricAttempts, "Flow invocation attempts by flow and result: 2xx, 3xx, 4xx, 429, 5xx, timeout, connection, canceled, invalid.")
	m.outcomes = counter(metricOutcomes, "Status records written for dispatch jobs, by flow and outcome (succeeded, retrying, failed).")
	m.retries = counter(metricRetries, "Retries scheduled, by flow and level: quick (in-process) or redelivery (handed back to JetStream).")
	m.deadLetters = counter(metricDeadLetters, "Dead letters stored, by reason.")
	m.maxDeliveries = counter(metricMaxDeliveries, "JetStream MAX_DELIVERIES advisories, by consumer: messages that even their last delivery could not dead-letter, left in their stream. Alert on any.")
	var err error
	m.inflight, err = m.meter.Int64UpDownCounter(metricInflight,
		metric.WithDescription("Deliveries being handled now, by stage (intake, dispatch) and flow (dispatch)."))
	errs = append(errs, err)
	m.budgetWait, err = m.meter.Float64Histogram(metricRateLimitWait, metric.WithUnit("s"),
		metric.WithDescription("Time a dispatch waited for a slot of its flow's shared rate budget."),
		metric.WithExplicitBucketBoundaries(rateLimitWaitBuckets...))
	errs = append(errs, err)
	m.circuit, err = m.meter.Int64Gauge(metricCircuitState,
		metric.WithDescription("Circuit breaker state per flow: 0 closed, 1 half-open, 2 open."))
	errs = append(errs, err)
	m.pending, err = m.meter.Int64ObservableGauge(metricConsumerPending,
		metric.WithDescription("Messages not yet acknowledged per durable consumer: waiting in the stream plus delivered and awaiting an ack."))
	errs = append(errs, err)
	m.timeToRemediate, err = m.meter.Float64Histogram(metricTimeToRemediate, metric.WithUnit("s"),
		metric.WithDescription("Age of the event (from its own timestamp, else from when remediator first stored it) when its flow succeeded, by flow."),
		metric.WithExplicitBucketBoundaries(timeToRemediateBuckets...))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}

	// Series that dashboards and alerts expect to exist before the first event.
	ctx := context.Background()
	for _, f := range flows {
		m.circuitState(f.Endpoint.Name, circuitClosed)
		for _, level := range []string{retryQuick, retryRedelivery} {
			m.retries.Add(ctx, 0, metric.WithAttributes(labelFlow.String(f.Endpoint.Name), labelLevel.String(level)))
		}
	}
	for _, r := range status.Reasons {
		m.deadLetters.Add(ctx, 0, metric.WithAttributes(labelReason.String(string(r))))
	}
	m.inflight.Add(ctx, 0, metric.WithAttributes(labelStage.String("intake")))
	return m, nil
}

// subjectKind labels an event by its subject: the only thing known before it is decoded.
func subjectKind(subject string) string {
	if k, ok := event.KindForSubject(subject); ok {
		return string(k)
	}
	return "unknown"
}

// eventReceived counts an event's first delivery to intake (redeliveries are not new events).
func (m *metrics) eventReceived(ctx context.Context, d *Delivery) {
	if m == nil || d.Delivered > 1 {
		return
	}
	m.received.Add(ctx, 1, metric.WithAttributes(labelKind.String(subjectKind(d.Subject))))
}

// eventValidated counts an event that passed its schema.
func (m *metrics) eventValidated(ctx context.Context, kind event.Kind) {
	if m == nil {
		return
	}
	m.validated.Add(ctx, 1, metric.WithAttributes(labelKind.String(string(kind))))
}

// eventRejected counts an event refused at intake, once its dead letter is stored.
func (m *metrics) eventRejected(ctx context.Context, kind string, reason status.Reason) {
	if m == nil {
		return
	}
	if kind == "" {
		kind = "unknown"
	}
	m.rejected.Add(ctx, 1, metric.WithAttributes(labelKind.String(kind), labelReason.String(string(reason))))
}

// attempted counts one invocation by its result.
func (m *metrics) attempted(ctx context.Context, flowName string, res *flow.Result, err error) {
	if m == nil {
		return
	}
	m.attempts.Add(ctx, 1, metric.WithAttributes(labelFlow.String(flowName), labelStatusClass.String(statusClass(res, err))))
}

// statusClass buckets an invocation's result: 2xx, 3xx, 4xx, 5xx, 429 (rate limited, apart
// from other 4xx), timeout (no answer in time), connection (refused, reset, DNS…),
// canceled (shutdown) or invalid (refused before sending: bad endpoint or inputs).
func statusClass(res *flow.Result, err error) string {
	code := 0
	if res != nil {
		code = res.StatusCode
	}
	var fe *flow.Error
	if code == 0 && errors.As(err, &fe) {
		code = fe.StatusCode
	}
	switch {
	case code == 429:
		return "429"
	case code >= 100:
		return strconv.Itoa(code/100) + "xx"
	case err == nil:
		return "2xx"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case fe != nil && fe.Class == flow.ClassPermanent:
		return "invalid"
	}
	return "connection"
}

// statusWritten counts a status record of a dispatch job.
func (m *metrics) statusWritten(ctx context.Context, rec status.Record) {
	if m == nil || rec.Flow == "" {
		return
	}
	m.outcomes.Add(ctx, 1, metric.WithAttributes(labelFlow.String(rec.Flow), labelOutcome.String(string(rec.Outcome))))
}

// retried counts a scheduled retry at level quick or redelivery.
func (m *metrics) retried(ctx context.Context, flowName, level string) {
	if m == nil {
		return
	}
	m.retries.Add(ctx, 1, metric.WithAttributes(labelFlow.String(flowName), labelLevel.String(level)))
}

// deadLettered counts a stored dead letter.
func (m *metrics) deadLettered(ctx context.Context, reason status.Reason) {
	if m == nil {
		return
	}
	m.deadLetters.Add(ctx, 1, metric.WithAttributes(labelReason.String(string(reason))))
}

// track counts a delivery in flight in the runner named runnerName ("intake",
// "dispatch/<flow>") until the returned function is called:
//
//	defer r.w.metrics.track(ctx, r.name)()
func (m *metrics) track(ctx context.Context, runnerName string) func() {
	if m == nil {
		return func() {}
	}
	attrs := []attribute.KeyValue{labelStage.String(runnerName)}
	if f, ok := strings.CutPrefix(runnerName, "dispatch/"); ok {
		attrs = []attribute.KeyValue{labelStage.String("dispatch"), labelFlow.String(f)}
	}
	opt := metric.WithAttributes(attrs...)
	m.inflight.Add(ctx, 1, opt)
	return func() { m.inflight.Add(context.WithoutCancel(ctx), -1, opt) }
}

// rateLimitWait records how long a dispatch of flowName waited for its rate budget.
func (m *metrics) rateLimitWait(ctx context.Context, flowName string, waited time.Duration) {
	if m == nil {
		return
	}
	m.budgetWait.Record(ctx, max(0, waited.Seconds()), metric.WithAttributes(labelFlow.String(flowName)))
}

// circuitState records flowName's breaker state: 0 closed, 1 half-open, 2 open (gobreaker's
// State values).
func (m *metrics) circuitState(flowName string, state int) {
	if m == nil {
		return
	}
	m.circuit.Record(context.Background(), int64(state), metric.WithAttributes(labelFlow.String(flowName)))
}

// remediated records the time to remediate of a job whose flow succeeded: the age of the event
// from its own timestamp, or from when remediator first stored it when it has none.
func (m *metrics) remediated(ctx context.Context, job *Job) {
	if m == nil || job == nil {
		return
	}
	since := job.EventTime
	if since.IsZero() {
		since = job.FirstSeen
	}
	if since.IsZero() {
		return
	}
	m.timeToRemediate.Record(ctx, max(0, time.Since(since).Seconds()), metric.WithAttributes(labelFlow.String(job.Flow)))
}

// pendingSource is a durable consumer that can report its backlog. A *binding is one (it
// follows its consumer when it is created again).
type pendingSource interface {
	Name() string
	Pending(ctx context.Context) (uint64, error)
}

func (b *binding) Name() string                                { return b.cfg.Durable }
func (b *binding) Pending(ctx context.Context) (uint64, error) { return b.source().Pending(ctx) }

// pendingTimeout bounds the consumer-info requests made for one scrape.
const pendingTimeout = 2 * time.Second

// consumerLister lists a stream's consumers with their backlogs in a few requests (pages of
// 256), instead of one request per consumer. *broker.Broker implements it.
type consumerLister interface {
	ConsumerInfos(ctx context.Context, stream string) ([]broker.ConsumerInfo, error)
}

// observeConsumers reports remediator_consumer_pending for every consumer of runners on each
// collection, until the returned function is called:
//
//	defer w.metrics.observeConsumers(runners, lister)()
//
// With a lister (nil: none) a scrape costs a few requests per stream, not one per consumer:
// with hundreds of flows that is the difference between a scrape the broker notices and one
// it does not.
func (m *metrics) observeConsumers(runners []*runner, lister consumerLister) func() {
	if m == nil {
		return func() {}
	}
	var sources []pendingSource
	streams := map[string]bool{}
	for _, r := range runners {
		for _, b := range r.sources {
			sources = append(sources, b)
			streams[b.cfg.Stream] = true
		}
	}
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, pendingTimeout)
		defer cancel()
		var errs []error
		listed := map[string]uint64{}
		if lister != nil {
			for stream := range streams {
				infos, err := lister.ConsumerInfos(ctx, stream)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, ci := range infos {
					listed[ci.Name] = ci.NumPending + ci.NumAckPending
				}
			}
		}
		for _, s := range sources {
			n, ok := listed[s.Name()]
			if !ok { // not listed (no lister, or a consumer just created again): ask it
				var err error
				if n, err = s.Pending(ctx); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			o.ObserveInt64(m.pending, int64(n), metric.WithAttributes(labelConsumer.String(s.Name())))
		}
		return errors.Join(errs...)
	}, m.pending)
	if err != nil {
		m.log.Warn("consumer lag is not measured", slog.Any("error", err))
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// waitBudget is fr.budget.waitWithin, recorded in remediator_rate_limit_wait_seconds.
func (fr *flowRunner) waitBudget(ctx context.Context, within time.Duration) (booked bool, next time.Time, err error) {
	waited, booked, next, err := fr.budget.waitWithin(ctx, within)
	if err == nil && booked {
		fr.metrics.rateLimitWait(ctx, fr.Endpoint.Name, waited)
	}
	return booked, next, err
}

// maxDeliveriesReached counts a MAX_DELIVERIES advisory of consumer.
func (m *metrics) maxDeliveriesReached(ctx context.Context, consumer string) {
	if m == nil {
		return
	}
	m.maxDeliveries.Add(ctx, 1, metric.WithAttributes(labelConsumer.String(consumer)))
}
