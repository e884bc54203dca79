package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	"github.com/remediator/remediator/seal"
)

// Validator checks an event document. *schema.Validator implements it.
type Validator interface {
	Validate(kind event.Kind, data []byte) (event.Shape, error)
}

// Router decides which flows an event triggers, who asks for them, whether that principal
// may run them, and what each flow receives. *policy.Router implements it.
type Router interface {
	// RouteContext may look the user's groups up in Okta; a failed look-up is a
	// *policy.GroupLookupError, which the intake retries.
	RouteContext(ctx context.Context, ev *event.Event) ([]policy.Decision, error)
	Principal(ev *event.Event, header map[string][]string, subject string) (policy.Principal, error)
	Authorize(ev *event.Event, p policy.Principal, flow string) error
	Inputs(ev *event.Event, flow string) (map[string]any, error)
	// CheckJob is dispatch's re-check of a job against the configuration (see
	// [policy.Router.CheckJob]).
	CheckJob(kind event.Kind, rule, flow, principal string, groups []string) error
}

// Invoker calls a flow. *flow.Client implements it.
type Invoker interface {
	Invoke(ctx context.Context, ep flow.Endpoint, req flow.Request) (*flow.Result, error)
}

var (
	_ Router    = (*policy.Router)(nil)
	_ Invoker   = (*flow.Client)(nil)
	_ Validator = (*schema.Validator)(nil)
)

// Flow is a flow the worker dispatches to. Every numeric field is explicit (the config package
// holds the defaults); [New] refuses values out of range, naming the field.
type Flow struct {
	Endpoint flow.Endpoint
	// RateLimit is the flow's invocation rate per second, shared by every replica. > 0.
	RateLimit float64
	// Concurrency bounds calls in flight per replica. ≥ 1.
	Concurrency int
	// Breaker tunes the flow's circuit breaker.
	Breaker BreakerConfig
	// DryRun records each would-be invocation (a dry_run status with the inputs) instead of
	// making it. Operators can also switch it on at run time (see DryRunKey).
	DryRun bool
	// BlastMax caps invocations of the flow per BlastWindow, across replicas; beyond it jobs
	// are held and a held status says why. 0: no cap. With a cap, BlastWindow must be > 0.
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

// Config configures a [Worker]. It has no hidden defaults: every numeric field must be set
// (the config package holds the service's defaults in one place), and [New] refuses a value
// out of range or inconsistent with another, naming the field. Where "none" is meaningful it
// is an explicit value, documented on the field.
type Config struct {
	// Broker is JetStream (see [JetStream]). Required.
	Broker Broker
	// Validator checks event documents. Required.
	Validator Validator
	// Router routes, authorizes and maps events. Required.
	Router Router
	// Invoker calls flows. Required.
	Invoker Invoker
	// Keys are the record keys (security.recordKeys): the primary signs every record the
	// worker writes, every key verifies what it reads (see sealing.go). Required.
	Keys *seal.Keyring
	// Flows the worker dispatches to; each name once.
	Flows []Flow
	// Advisories, when set, is watched for JetStream's MAX_DELIVERIES advisories: each is an
	// error log and remediator_max_deliveries_total. nil: not watched.
	Advisories Advisories
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider records the worker's metrics (see metrics.go). Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// IntakeConcurrency bounds events in intake at once per replica. ≥ 1.
	IntakeConcurrency int
	// MaxAttempts is the invocation attempt budget per (event, flow), counting quick retries
	// and redeliveries; beyond it the job is dead-lettered as retries_exhausted. ≥ 1.
	MaxAttempts int
	// QuickRetries are in-process retries of a transient failure within one delivery, before
	// handing the job back to JetStream. 0: none.
	QuickRetries int
	// QuickRetryDelay is the first in-process retry delay (it grows, up to 2s). > 0 when
	// QuickRetries > 0.
	QuickRetryDelay time.Duration
	// RetryBaseDelay and RetryMaxDelay bound JetStream redelivery delays: the delay doubles
	// per delivery from RetryBaseDelay (with jitter) up to RetryMaxDelay. 0 < base ≤ max.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// ShutdownTimeout is how long in-flight work may take to finish on stop before it is
	// cancelled (and handed back, or recorded if already done). > 0.
	ShutdownTimeout time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering a message; the
	// worker sends a heartbeat every third of it from the moment of fetch, and hands back a
	// job whose rate-budget slot is further away than half of it. ≥ 1s.
	AckWait time.Duration
	// IntakeMaxDeliver caps deliveries of one event to intake. On the last one, a failure
	// that would be retried (e.g. the dispatch stream is unavailable) is dead-lettered
	// instead; if even that cannot be stored, the event stays in REMEDIATION_EVENTS and the
	// MAX_DELIVERIES advisory is raised. ≥ 1.
	IntakeMaxDeliver int
	// DispatchMaxDeliver caps deliveries of one job to dispatch, as IntakeMaxDeliver. Jobs
	// are also handed back without an attempt (rate budget, breaker, blast-radius cap), so
	// it should be well above MaxAttempts. ≥ MaxAttempts.
	DispatchMaxDeliver int
	// DispatchStateInMemory keeps the dispatch consumers' delivery state in the server's memory
	// (broker.ConsumerConfig.StateInMemory), not in files rewritten after acks: with many flows
	// those writes were most of the broker's work. Jobs still wait in the file-backed stream;
	// a server restart redelivers the jobs in flight (the job state in KV and the claim keep a
	// flow from being called twice). Config worker.dispatchConsumerState.
	DispatchStateInMemory bool
	// MaxEventBytes is the largest event intake accepts (limits.maxEventBytes): a larger one
	// is dead-lettered as too_large with a reference to it, never copied into a record. > 0.
	MaxEventBytes int
	// JobRetention is how long job state (attempts, terminal outcome) is kept. 0: forever.
	JobRetention time.Duration
	// Replicas is the replica count of the worker's KV buckets: 1, or 3 or 5 on a cluster. ≥ 1.
	Replicas int
	// Unrouted says what becomes of a valid event the router sends nowhere ([policy.ErrUnrouted]:
	// an ISPM issue no route takes, an entity-risk event at the catch-all or a log-only rule).
	// Required: [UnroutedSkip] or [UnroutedDeadLetter] (config key unrouted).
	Unrouted Unrouted
}

// Unrouted is what intake does with an event that runs no flow.
type Unrouted string

const (
	// UnroutedSkip records a terminal skipped status naming the rule and why, and acks the
	// event: nothing reaches the dead-letter stream, which a feed of LOW-risk detections
	// would otherwise flood.
	UnroutedSkip Unrouted = "skip"
	// UnroutedDeadLetter dead-letters the event as no_route, to be seen and replayed.
	UnroutedDeadLetter Unrouted = "deadLetter"
)

// minAckWait is the shortest AckWait accepted: heartbeats go every third of it.
const minAckWait = time.Second

// validate checks every field, naming each one that is wrong.
func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("worker: %s %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Broker == nil {
		bad("Broker", "is required")
	}
	if c.Validator == nil {
		bad("Validator", "is required")
	}
	if c.Router == nil {
		bad("Router", "is required")
	}
	if c.Invoker == nil {
		bad("Invoker", "is required")
	}
	if c.Keys == nil {
		bad("Keys", "is required (the record keys that sign and verify remediator's records)")
	}
	if c.IntakeConcurrency < 1 {
		bad("IntakeConcurrency", "is %d; must be at least 1", c.IntakeConcurrency)
	}
	if c.MaxAttempts < 1 {
		bad("MaxAttempts", "is %d; must be at least 1", c.MaxAttempts)
	}
	if c.QuickRetries < 0 {
		bad("QuickRetries", "is %d; must not be negative (0: none)", c.QuickRetries)
	}
	if c.QuickRetries > 0 && c.QuickRetryDelay <= 0 {
		bad("QuickRetryDelay", "is %s; must be positive when QuickRetries is %d", c.QuickRetryDelay, c.QuickRetries)
	}
	if c.RetryBaseDelay <= 0 {
		bad("RetryBaseDelay", "is %s; must be positive", c.RetryBaseDelay)
	}
	if c.RetryMaxDelay < c.RetryBaseDelay {
		bad("RetryMaxDelay", "is %s; must be at least RetryBaseDelay (%s)", c.RetryMaxDelay, c.RetryBaseDelay)
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout", "is %s; must be positive", c.ShutdownTimeout)
	}
	if c.AckWait < minAckWait {
		bad("AckWait", "is %s; must be at least %s (heartbeats go every third of it)", c.AckWait, minAckWait)
	}
	if c.IntakeMaxDeliver < 1 {
		bad("IntakeMaxDeliver", "is %d; must be at least 1", c.IntakeMaxDeliver)
	}
	if c.DispatchMaxDeliver < max(1, c.MaxAttempts) {
		bad("DispatchMaxDeliver", "is %d; must be at least MaxAttempts (%d)", c.DispatchMaxDeliver, c.MaxAttempts)
	}
	if c.MaxEventBytes <= 0 {
		bad("MaxEventBytes", "is %d; must be positive", c.MaxEventBytes)
	}
	if c.JobRetention < 0 {
		bad("JobRetention", "is %s; must not be negative (0: forever)", c.JobRetention)
	}
	if c.Replicas < 1 {
		bad("Replicas", "is %d; must be at least 1", c.Replicas)
	}
	if c.Unrouted != UnroutedSkip && c.Unrouted != UnroutedDeadLetter {
		bad("Unrouted", "is %q; must be %q or %q", c.Unrouted, UnroutedSkip, UnroutedDeadLetter)
	}
	seen := map[string]bool{}
	for i, f := range c.Flows {
		field := fmt.Sprintf("Flows[%d]", i)
		name := f.Endpoint.Name
		switch {
		case name == "":
			bad(field+".Endpoint.Name", "is required")
		case seen[name]:
			bad(field+".Endpoint.Name", "%q is given twice", name)
		default:
			field = fmt.Sprintf("Flows[%s]", name)
		}
		seen[name] = true
		if !(f.RateLimit > 0) {
			bad(field+".RateLimit", "is %v; must be positive", f.RateLimit)
		}
		if f.Concurrency < 1 {
			bad(field+".Concurrency", "is %d; must be at least 1", f.Concurrency)
		}
		if f.BlastMax < 0 {
			bad(field+".BlastMax", "is %d; must not be negative (0: no cap)", f.BlastMax)
		}
		if f.BlastMax > 0 && f.BlastWindow <= 0 {
			bad(field+".BlastWindow", "is %s; must be positive when BlastMax is %d", f.BlastWindow, f.BlastMax)
		}
		if err := f.Breaker.validate(); err != nil {
			bad(field+".Breaker", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// Worker runs the intake and dispatch stages.
type Worker struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	flows  map[string]*flowRunner
	jobs   KV
	// controls are the operator switches (pause, dry-run), kept current by a watch.
	controls *controls
	// runners are set before started, and only read after it.
	runners []*runner
	started atomic.Bool

	metrics *metrics
	// unverifiedCount is remediator_records_unverified_total (see sealing.go).
	unverifiedCount metric.Int64Counter
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Worker{
		controls: newControls(cfg.Keys),
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
	if w.unverifiedCount, err = newUnverifiedCounter(cfg.MeterProvider); err != nil {
		return nil, err
	}
	for _, f := range cfg.Flows {
		name := f.Endpoint.Name
		w.flows[name] = &flowRunner{Flow: f, metrics: w.metrics, controls: w.controls,
			breaker: newBreaker(name, f.Breaker, w.log, func(state int) { w.metrics.circuitState(name, state) })}
	}
	return w, nil
}

// Ready reports whether the worker can take work now: its consumers are bound and the last
// fetches of every stage succeeded. It is false while fetches fail (a deleted consumer being
// created again, a lost stream, a NATS connection that is reconnecting) and true again once
// they succeed.
func (w *Worker) Ready() bool {
	if !w.started.Load() {
		return false
	}
	for _, r := range w.runners {
		if !r.healthy.Load() {
			return false
		}
	}
	return true
}

// Run binds the consumers and processes events until ctx is cancelled, then shuts down in
// stages: it stops fetching, lets in-flight deliveries finish within ShutdownTimeout, cancels
// the rest (a result already obtained is still recorded; the others are nak'ed and
// redelivered later), and returns once nothing runs. It returns nil after a stop.
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
		fr.budget.repaired = func(flow, why string) {
			w.log.Warn("rate budget state repaired: no replica writes it, so it was reset rather than obeyed (a hand-made or corrupted key in "+budgetsBucket+")",
				slog.String("flow", flow), slog.String("why", why))
		}
		fr.blast = newBlastCap(budgets, name, fr.BlastMax, fr.BlastWindow)
	}
	ctlKV, err := w.cfg.Broker.KeyValue(ctx, broker.KVConfig{Bucket: ControlsBucket, History: 1, Replicas: w.cfg.Replicas})
	if err != nil {
		return fmt.Errorf("worker: controls bucket: %w", err)
	}
	// Background watches end with Run, and Run waits for them.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer background.Wait()
	defer stopWatch()
	controlsReady := make(chan struct{})
	background.Go(func() { w.controls.watch(watchCtx, ctlKV, w.log, controlsReady, w.changedControl(watchCtx)) })
	<-controlsReady // a paused flow must not get one call in before the switch is seen
	if w.cfg.Advisories != nil {
		background.Go(func() { w.watchAdvisories(watchCtx) })
	}

	runners, err := w.bind(ctx)
	if err != nil {
		return err
	}
	w.runners = runners
	if stop := w.ringDoorbells(ctx, runners); stop != nil {
		defer stop()
	}
	lister, _ := w.cfg.Broker.(consumerLister)
	defer w.metrics.observeConsumers(runners, lister)() // remediator_consumer_pending, while running
	w.started.Store(true)
	defer w.started.Store(false)
	w.log.InfoContext(ctx, "worker started", slog.Int("flows", len(w.flows)), slog.Int("intake_concurrency", w.cfg.IntakeConcurrency))

	// Work gets its own context: it outlives ctx by up to ShutdownTimeout so that in-flight
	// deliveries finish and are recorded after fetching has stopped.
	workCtx, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelWork(nil)
	var loops sync.WaitGroup // each loop returns once it fetches no more and its work is settled
	for _, r := range runners {
		loops.Go(func() { r.fetchLoop(ctx, workCtx) })
	}
	<-ctx.Done()
	w.log.Info("worker stopping: fetching stopped, waiting for in-flight deliveries", slog.Duration("timeout", w.cfg.ShutdownTimeout))
	done := make(chan struct{})
	go func() {
		loops.Wait()
		close(done)
	}()
	timeout := time.NewTimer(w.cfg.ShutdownTimeout)
	defer timeout.Stop()
	select {
	case <-done:
		w.log.Info("worker stopped cleanly: nothing in flight")
	case <-timeout.C:
		w.log.Warn("worker shutdown timeout: cancelling in-flight deliveries; results obtained are recorded, the rest will be redelivered")
		cancelWork(errShutdown)
		<-done
		w.log.Info("worker stopped: every in-flight delivery settled")
	}
	return nil
}

// bind creates (or updates) the durable consumers, with explicit MaxDeliver, and a runner for
// intake and for each flow.
func (w *Worker) bind(ctx context.Context) ([]*runner, error) {
	intakeCfg := broker.ConsumerConfig{
		Stream: broker.StreamEvents, Durable: IntakeConsumer, FilterSubjects: []string{broker.SubjectsEvents},
		AckWait: w.cfg.AckWait, MaxAckPending: 10 * w.cfg.IntakeConcurrency, MaxDeliver: w.cfg.IntakeMaxDeliver,
	}
	intake, err := w.cfg.Broker.Consumer(ctx, intakeCfg)
	if err != nil {
		return nil, fmt.Errorf("worker: intake consumer: %w", err)
	}
	runners := []*runner{w.newRunner("intake", []*binding{{cfg: intakeCfg, src: intake}}, w.cfg.IntakeConcurrency, w.cfg.IntakeMaxDeliver, w.intakeStep())}
	for name, fr := range w.flows {
		var sources []*binding
		for _, p := range event.Priorities { // most urgent first: the runner drains in this order
			cfg := broker.ConsumerConfig{
				Stream: broker.StreamDispatch, Durable: DispatchConsumer(name, p),
				FilterSubjects: []string{DispatchSubject(name, p)},
				AckWait:        w.cfg.AckWait, MaxAckPending: 10 * fr.Concurrency, MaxDeliver: w.cfg.DispatchMaxDeliver,
				StateInMemory: w.cfg.DispatchStateInMemory,
			}
			c, err := w.cfg.Broker.Consumer(ctx, cfg)
			if err != nil {
				return nil, fmt.Errorf("worker: dispatch consumer for flow %s: %w", name, err)
			}
			sources = append(sources, &binding{cfg: cfg, src: c})
		}
		r := w.newRunner("dispatch/"+name, sources, fr.Concurrency, w.cfg.DispatchMaxDeliver, w.dispatchStep())
		r.gate = fr
		r.flow = name
		// A batch is what the flow's budget spends in batchWindow, so that a batch handed back
		// when the budget turns is small (each hand-back is a delivery of MaxDeliver).
		r.batch = min(fr.Concurrency, max(1, int(fr.RateLimit*batchWindow.Seconds())))
		runners = append(runners, r)
	}
	return runners, nil
}

// batchWindow sizes a flow's fetch batches: at most its rate budget's worth of this long.
const batchWindow = 100 * time.Millisecond

// ringDoorbells subscribes to every dispatch job published and rings the runner of its flow,
// so that idle dispatch runners wait for their bell instead of polling JetStream (see
// [runner]). Without [Doorbells], or if subscribing fails, the runners poll as before. It
// returns what stops the doorbell, or nil.
func (w *Worker) ringDoorbells(ctx context.Context, runners []*runner) func() {
	db, ok := w.cfg.Broker.(Doorbells)
	if !ok {
		return nil
	}
	byFlow := map[string]*runner{}
	for _, r := range runners {
		if r.flow != "" {
			byFlow[r.flow] = r
		}
	}
	stop, err := db.Doorbell(ctx, broker.SubjectsDispatch, func(subject string) {
		flow, prio, ok := splitDispatchSubject(subject)
		if r := byFlow[flow]; ok && r != nil {
			r.ring(priorityIndex(prio))
		}
	})
	if err != nil {
		w.log.WarnContext(ctx, "no dispatch doorbell: idle flows are polled", slog.Any("error", err))
		return nil
	}
	for _, r := range byFlow {
		r.doorbell = true // before the fetch loops start
	}
	return stop
}

// splitDispatchSubject splits remediation.dispatch.<flow>.<priority>.
func splitDispatchSubject(subject string) (flow string, p event.Priority, ok bool) {
	rest, found := strings.CutPrefix(subject, DispatchSubjectPrefix)
	i := strings.LastIndexByte(rest, '.')
	if !found || i <= 0 {
		return "", "", false
	}
	return rest[:i], event.Priority(rest[i+1:]), true
}

// priorityIndex is p's place in a dispatch runner's sources (most urgent first), or -1.
func priorityIndex(p event.Priority) int {
	return slices.Index(event.Priorities, p)
}

// watchAdvisories turns each MAX_DELIVERIES advisory into an error log and a metric: a
// message that even its last delivery could not dead-letter stays in JetStream.
func (w *Worker) watchAdvisories(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.cfg.Advisories.WatchMaxDeliveries(ctx, func(stream, consumer string, seq uint64, deliveries int) {
			w.log.Error("message reached its maximum deliveries and stays in its stream: it could not be dead-lettered; inspect it and replay or remove it",
				slog.String("stream", stream), slog.String("consumer", consumer), slog.Uint64("seq", seq), slog.Int("deliveries", deliveries))
			w.metrics.maxDeliveriesReached(ctx, consumer)
		})
		if err != nil && ctx.Err() == nil {
			w.log.Warn("MAX_DELIVERIES advisory watch failed; retrying", slog.Any("error", err))
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}
}

var errShutdown = errors.New("worker shutting down")

// recordTimeout bounds the writing of final records (terminal job state, status, dead letter).
const recordTimeout = 10 * time.Second

// finalContext is a context for final records: detached from the work context's
// cancellation, so that a result obtained just before shutdown cancels the work is still
// recorded, and bounded on its own.
func finalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}
