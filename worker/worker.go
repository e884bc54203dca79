package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
)

// Broker is what the worker needs from JetStream. *broker.Broker implements it.
type Broker interface {
	Publish(ctx context.Context, subject string, data []byte, opts broker.PublishOptions) (broker.PubAck, error)
	Consumer(ctx context.Context, cfg broker.ConsumerConfig) (*broker.Consumer, error)
	KeyValue(ctx context.Context, cfg broker.KVConfig) (*broker.KV, error)
}

// Validator checks an event document. *schema.Validator implements it.
type Validator interface {
	Validate(kind event.Kind, data []byte) (event.Shape, error)
}

// Router decides which flows an event triggers, who asks for them, whether that principal
// may run them, and what each flow receives. *policy.Router implements it.
type Router interface {
	Route(ev *event.Event) ([]policy.Decision, error)
	Principal(ev *event.Event, header map[string][]string, subject string) (policy.Principal, error)
	Authorize(ev *event.Event, p policy.Principal, flow string) error
	Inputs(ev *event.Event, flow string) (map[string]any, error)
}

// Invoker calls a flow. *flow.Client implements it.
type Invoker interface {
	Invoke(ctx context.Context, ep flow.Endpoint, req flow.Request) (*flow.Result, error)
}

var (
	_ Broker    = (*broker.Broker)(nil)
	_ Router    = (*policy.Router)(nil)
	_ Invoker   = (*flow.Client)(nil)
	_ Message   = (*broker.Message)(nil)
	_ Validator = (*schema.Validator)(nil)
)

// Flow is a flow the worker dispatches to.
type Flow struct {
	Endpoint flow.Endpoint
	// RateLimit in invocations per second. Default 10.
	RateLimit float64
	// Concurrency bounds calls in flight per replica. Default 4.
	Concurrency int
	// Breaker tunes the flow's circuit breaker.
	Breaker BreakerConfig
	// DryRun records each would-be invocation (a dry_run status with the inputs) instead of
	// making it. Operators can also switch it on at run time (see DryRunKey).
	DryRun bool
	// BlastMax caps invocations of the flow per BlastWindow, across replicas; beyond it jobs
	// are held and a held status says why. Zero: no cap.
	BlastMax    int
	BlastWindow time.Duration
}

// Consumer names.
const (
	IntakeConsumer         = "remediator-intake"
	dispatchConsumerPrefix = "remediator-dispatch-"
	jobsBucket             = "remediation_jobs"
	budgetsBucket          = "remediation_budgets"
)

// DispatchConsumer names the durable consumer of a flow's jobs at one priority.
func DispatchConsumer(flow string, p event.Priority) string {
	return dispatchConsumerPrefix + flow + "-" + string(p)
}

// Config configures a [Worker]. Zero fields take the documented defaults.
type Config struct {
	Broker    Broker
	Validator Validator
	Router    Router
	Invoker   Invoker
	Flows     []Flow
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider records the worker's metrics (see metrics.go). Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// IntakeConcurrency bounds events in intake at once. Default 16.
	IntakeConcurrency int
	// MaxAttempts is the attempt budget per (event, flow). Default 8.
	MaxAttempts int
	// QuickRetries are in-process retries before handing back to JetStream. Default 2; -1 for none.
	QuickRetries int
	// QuickRetryDelay is the first in-process retry delay. Default 200ms.
	QuickRetryDelay time.Duration
	// RetryBaseDelay and RetryMaxDelay bound JetStream redelivery delays. Defaults 2s, 5m.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// ShutdownTimeout is how long in-flight work may take to finish on stop. Default 30s.
	ShutdownTimeout time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering; the worker extends it
	// with heartbeats while it works. Default 30s.
	AckWait time.Duration
	// JobRetention is how long job state (attempts, terminal outcome) is kept. Default 7 days.
	JobRetention time.Duration
	// StatusReplicas is the replica count of the job state bucket. Default 1.
	Replicas int
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.IntakeConcurrency, 16)
	def(&c.MaxAttempts, 8)
	def(&c.QuickRetries, 2)
	if c.QuickRetries < 0 {
		c.QuickRetries = 0
	}
	defD(&c.QuickRetryDelay, 200*time.Millisecond)
	defD(&c.RetryBaseDelay, 2*time.Second)
	defD(&c.RetryMaxDelay, 5*time.Minute)
	defD(&c.ShutdownTimeout, 30*time.Second)
	defD(&c.AckWait, 30*time.Second)
	defD(&c.JobRetention, 7*24*time.Hour)
	def(&c.Replicas, 1)
	for i := range c.Flows {
		if c.Flows[i].RateLimit == 0 {
			c.Flows[i].RateLimit = 10
		}
		def(&c.Flows[i].Concurrency, 4)
		c.Flows[i].Breaker.setDefaults()
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Broker == nil {
		errs = append(errs, errors.New("worker: Broker is required"))
	}
	if c.Validator == nil {
		errs = append(errs, errors.New("worker: Validator is required"))
	}
	if c.Router == nil {
		errs = append(errs, errors.New("worker: Router is required"))
	}
	if c.Invoker == nil {
		errs = append(errs, errors.New("worker: Invoker is required"))
	}
	return errors.Join(errs...)
}

// Worker runs the intake and dispatch stages.
type Worker struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	flows  map[string]*flowRunner
	jobs   *broker.KV
	// controls are the operator switches (pause, dry-run), kept current by a watch.
	controls *controls
	ready    atomic.Bool

	metrics *metrics
}

type flowRunner struct {
	Flow
	budget   *budget
	breaker  *breaker
	metrics  *metrics
	controls *controls
	blast    *blastCap
}

// New checks cfg and returns a worker; call [Worker.Run] to start it.
func New(cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Worker{
		controls: newControls(),
		cfg:      cfg,
		log:      cfg.Logger,
		tracer:   cfg.TracerProvider.Tracer("github.com/remediator/remediator/worker"),
		flows:    map[string]*flowRunner{},
	}
	m, err := newMetrics(cfg.MeterProvider, w.log, cfg.Flows)
	if err != nil {
		return nil, err
	}
	w.metrics = m
	for _, f := range cfg.Flows {
		name := f.Endpoint.Name
		w.flows[name] = &flowRunner{Flow: f, metrics: w.metrics, controls: w.controls,
			breaker: newBreaker(name, f.Breaker, w.log, func(state int) { w.metrics.circuitState(name, state) })}
	}
	return w, nil
}

// Ready reports whether the worker has bound its consumers and is processing.
func (w *Worker) Ready() bool { return w.ready.Load() }

// Run binds the consumers and processes events until ctx is cancelled, then shuts down in
// stages: it stops fetching, lets in-flight deliveries finish within ShutdownTimeout, cancels
// the rest (they are nak'ed and redelivered later), and returns. It returns nil after a clean
// stop.
func (w *Worker) Run(ctx context.Context) error {
	kv, err := w.cfg.Broker.KeyValue(ctx, broker.KVConfig{Bucket: jobsBucket, TTL: w.cfg.JobRetention, History: 1, Replicas: w.cfg.Replicas})
	if err != nil {
		return fmt.Errorf("worker: job state bucket: %w", err)
	}
	w.jobs = kv
	budgets, err := w.cfg.Broker.KeyValue(ctx, broker.KVConfig{Bucket: budgetsBucket, History: 1, Replicas: w.cfg.Replicas})
	if err != nil {
		return fmt.Errorf("worker: rate budget bucket: %w", err)
	}
	for name, fr := range w.flows {
		fr.budget = newBudget(budgets, name, fr.RateLimit)
		fr.blast = newBlastCap(budgets, name, fr.BlastMax, fr.BlastWindow)
	}
	ctlKV, err := w.cfg.Broker.KeyValue(ctx, broker.KVConfig{Bucket: ControlsBucket, History: 1, Replicas: w.cfg.Replicas})
	if err != nil {
		return fmt.Errorf("worker: controls bucket: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	controlsReady := make(chan struct{})
	go w.controls.watch(watchCtx, ctlKV, w.log, controlsReady)
	<-controlsReady // a paused flow must not get one call in before the switch is seen

	intake, err := w.cfg.Broker.Consumer(ctx, broker.ConsumerConfig{
		Stream: broker.StreamEvents, Durable: IntakeConsumer, FilterSubjects: []string{broker.SubjectsEvents},
		AckWait: w.cfg.AckWait, MaxAckPending: 10 * w.cfg.IntakeConcurrency,
	})
	if err != nil {
		return fmt.Errorf("worker: intake consumer: %w", err)
	}
	runners := []*runner{w.newRunner("intake", []fetcher{intake}, w.cfg.IntakeConcurrency, w.intakeHandler())}
	for name, fr := range w.flows {
		var sources []fetcher
		for _, p := range event.Priorities { // most urgent first: the runner drains in this order
			c, err := w.cfg.Broker.Consumer(ctx, broker.ConsumerConfig{
				Stream: broker.StreamDispatch, Durable: DispatchConsumer(name, p),
				FilterSubjects: []string{DispatchSubject(name, p)},
				AckWait:        w.cfg.AckWait, MaxAckPending: 10 * fr.Concurrency,
			})
			if err != nil {
				return fmt.Errorf("worker: dispatch consumer for flow %s: %w", name, err)
			}
			sources = append(sources, c)
		}
		r := w.newRunner("dispatch/"+name, sources, fr.Concurrency, w.dispatchHandler())
		r.gate = fr
		runners = append(runners, r)
	}

	defer w.metrics.observeConsumers(runners)() // remediator_consumer_pending, while running
	w.ready.Store(true)
	defer w.ready.Store(false)
	w.log.InfoContext(ctx, "worker started", slog.Int("flows", len(w.flows)), slog.Int("intake_concurrency", w.cfg.IntakeConcurrency))

	// Work gets its own context: it outlives ctx by up to ShutdownTimeout so that in-flight
	// deliveries finish and are recorded after fetching has stopped.
	workCtx, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelWork(nil)
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(func() { r.fetchLoop(ctx, workCtx) })
	}
	<-ctx.Done()
	w.log.Info("worker stopping: fetching stopped, waiting for in-flight deliveries", slog.Duration("timeout", w.cfg.ShutdownTimeout))
	done := make(chan struct{})
	go func() {
		for _, r := range runners {
			r.inflight.Wait()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		w.log.Info("worker stopped cleanly")
		return nil
	case <-time.After(w.cfg.ShutdownTimeout):
		w.log.Warn("worker shutdown timeout: cancelling in-flight deliveries; they will be redelivered")
		cancelWork(errShutdown)
		<-done
		return nil
	}
}

var errShutdown = errors.New("worker shutting down")
