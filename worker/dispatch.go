package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/telemetry"
)

// jobState is what the worker remembers of a job across deliveries and replicas, in the
// remediation_jobs KV bucket: its attempts and, once decided, its terminal record.
type jobState struct {
	// EventSequence identifies the generation: a re-published or replayed event starts a new one.
	EventSequence uint64           `json:"eventSequence"`
	Attempts      []status.Attempt `json:"attempts,omitempty"`
	Terminal      *status.Record   `json:"terminal,omitempty"`
}

// Sentinels the dispatch handler returns to its recorder; they never reach the runner.
// cappedError says the flow's blast-radius cap is full until a time.
type cappedError struct{ until time.Time }

func (e *cappedError) Error() string {
	return "blast-radius cap reached until " + e.until.Format(time.RFC3339)
}

var (
	errCircuitOpen     = errors.New("circuit breaker open")
	errAlreadyTerminal = errors.New("job already has a terminal record")
	errDuplicate       = errors.New("the flow already succeeded for this event")
)

// dispatchState travels on the delivery between the dispatch handler and its recorder.
type dispatchState struct {
	st  jobState
	rev uint64
}

func (w *Worker) dispatchHandler() Handler {
	return Chain(HandlerFunc(w.dispatch), w.Trace, w.Log, w.recordDispatch, w.Recover)
}

func (w *Worker) dispatch(ctx context.Context, d *Delivery) error {
	job, err := decodeJob(d.Data)
	if err != nil {
		return DeadLetter(status.ReasonPermanentFailure, err)
	}
	d.Job = job
	fr, ok := w.flows[job.Flow]
	if !ok {
		return DeadLetterf(status.ReasonPermanentFailure, "flow %q is not configured on this worker", job.Flow)
	}
	st, rev, err := w.loadJob(ctx, job.Key)
	if err != nil {
		return Retry(0, "job state unavailable", err)
	}
	switch {
	case st.Terminal != nil && st.EventSequence == job.EventSequence:
		d.dispatch = &dispatchState{st: st, rev: rev}
		return errAlreadyTerminal
	case st.Terminal != nil && st.Terminal.Outcome == status.Succeeded:
		d.dispatch = &dispatchState{st: st, rev: rev}
		return errDuplicate
	case st.EventSequence != job.EventSequence:
		st = jobState{EventSequence: job.EventSequence}
	}
	ds := &dispatchState{st: st, rev: rev}
	d.dispatch = ds
	d.History = ds.st.Attempts

	if fr.DryRun || fr.controls.dryRun(job.Flow) {
		d.Attempt = &status.Record{
			EventID: job.EventID, EventKind: string(job.EventKind), Flow: job.Flow, Rule: job.Rule,
			Outcome: status.DryRun, DryRun: true, Inputs: job.Inputs, IdempotencyKey: job.IdempotencyKey,
			Attempt: len(ds.st.Attempts), Why: "flow is in dry-run mode: the invocation was decided and recorded, not made",
		}
		return nil
	}

	// Quick retries: a few in-process attempts for blips, each announced with a retrying status.
	quick := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(w.cfg.QuickRetryDelay),
		backoff.WithMaxInterval(quickRetryMax),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
	policy := backoff.WithContext(backoff.WithMaxRetries(quick, uint64(w.cfg.QuickRetries)), ctx)
	var last *flow.Error
	prepaid := d.prepaid
	op := func() error {
		if ok, until, err := fr.blast.take(ctx); err != nil {
			return backoff.Permanent(Retry(0, "blast-radius cap unavailable", err))
		} else if !ok {
			return backoff.Permanent(&cappedError{until: until})
		}
		if !prepaid { // quick retries spend the shared budget like any call
			if _, err := fr.waitBudget(ctx); err != nil {
				return backoff.Permanent(Retry(0, "rate budget unavailable", err))
			}
		}
		prepaid = false
		done, err := fr.breaker.Allow()
		if err != nil {
			return backoff.Permanent(errCircuitOpen)
		}
		_ = d.Msg.InProgress()
		ferr := w.attempt(ctx, d, fr, job, ds)
		done(ferr)
		if ferr == nil {
			return nil
		}
		last = nil
		if errors.As(ferr, &last) && last.StatusCode == 429 {
			if perr := fr.budget.penalize(ctx, last.RetryAfter); perr != nil {
				w.log.WarnContext(ctx, "could not lower the shared rate budget", "flow", job.Flow, "error", perr)
			}
		}
		if last != nil && last.Class == flow.ClassRetryable && last.RetryAfter <= quickRetryMax &&
			len(ds.st.Attempts) < w.cfg.MaxAttempts && !breakerOpen(fr.breaker) {
			return ferr // worth a quick retry
		}
		return backoff.Permanent(ferr)
	}
	notify := func(err error, delay time.Duration) {
		w.metrics.retried(ctx, job.Flow, retryQuick)
		if last != nil && last.RetryAfter > delay {
			delay = last.RetryAfter
		}
		w.announceRetry(ctx, d, job, delay, "quick in-process retry after "+whyRetry(err))
	}
	err = backoff.RetryNotify(op, policy, notify)
	if err == nil {
		return nil
	}
	var perm *backoff.PermanentError
	if errors.As(err, &perm) { // keep backoff's type inside this package
		err = perm.Err
	}
	if re, ok := asRetry(err); ok { // shutdown while waiting for budget
		return re
	}
	var capped *cappedError
	if errors.As(err, &capped) {
		if len(ds.st.Attempts) > 0 {
			if serr := w.saveJob(ctx, job.Key, ds); serr != nil {
				return Retry(0, "job state unavailable", serr)
			}
		}
		wait := max(time.Until(capped.until), time.Second)
		why := fmt.Sprintf("blast-radius cap for flow %s reached (%d invocations in %s); the event is held and will be dispatched when the window has room",
			job.Flow, fr.BlastMax, fr.BlastWindow)
		w.log.WarnContext(ctx, "blast-radius cap reached: holding events", "flow", job.Flow, "event_id", job.EventID, "until", capped.until)
		w.announce(ctx, d, job, status.Held, wait, why)
		return Retry(wait, "blast-radius cap reached", err)
	}
	if errors.Is(err, errCircuitOpen) {
		// Not an attempt: the flow is resting. Keep what this delivery learnt and wait in JetStream.
		if len(ds.st.Attempts) > 0 {
			if serr := w.saveJob(ctx, job.Key, ds); serr != nil {
				return Retry(0, "job state unavailable", serr)
			}
		}
		cool := fr.Breaker.Cooldown
		w.announceRetry(ctx, d, job, cool, fmt.Sprintf("circuit breaker for flow %s is open after repeated failures; waiting for it to cool down", job.Flow))
		return Retry(cool, "circuit breaker open", errCircuitOpen)
	}
	var ferr *flow.Error
	if !errors.As(err, &ferr) {
		return Retry(0, "dispatch interrupted", err)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return Retry(0, "shutting down", err)
	}
	n := len(ds.st.Attempts)
	if ferr.Class == flow.ClassPermanent {
		return DeadLetter(status.ReasonPermanentFailure, err)
	}
	if n >= w.cfg.MaxAttempts {
		return DeadLetter(status.ReasonRetriesExhausted, fmt.Errorf("all %d attempts failed; last: %w", n, err))
	}
	delay := w.retryDelay(n)
	why := whyRetry(err)
	if ferr.RetryAfter > delay {
		delay, why = ferr.RetryAfter, fmt.Sprintf("%s; flow asked to wait %s", why, ferr.RetryAfter)
	}
	if err := w.saveJob(ctx, job.Key, ds); err != nil {
		return Retry(0, "job state unavailable", err)
	}
	w.metrics.retried(ctx, job.Flow, retryRedelivery)
	w.announceRetry(ctx, d, job, delay, "handed back to JetStream after "+why)
	return Retry(delay, why, err)
}

// quickRetryMax caps in-process retry delays; a longer wait is JetStream's job.
const quickRetryMax = 2 * time.Second

// attempt makes one invocation and records it in ds and on the delivery.
func (w *Worker) attempt(ctx context.Context, d *Delivery, fr *flowRunner, job *Job, ds *dispatchState) error {
	n := len(ds.st.Attempts) + 1
	// Internal: the HTTP client span (otelhttp) is its child, one per network call.
	ctx, span := w.tracer.Start(ctx, "invoke "+job.Flow, trace.WithSpanKind(trace.SpanKindInternal), traceAttrs(
		attrEventID.String(job.EventID), attrFlow.String(job.Flow), attrAttempt.Int(n),
		semconv.HTTPRequestMethodPost, semconv.URLFull(redactURL(fr.Endpoint.URL)),
	))
	defer span.End()
	h := map[string][]string{}
	telemetry.Inject(ctx, h)
	res, err := w.cfg.Invoker.Invoke(ctx, fr.Endpoint, flow.Request{Inputs: job.Inputs, IdempotencyKey: job.IdempotencyKey, Header: h})
	w.metrics.attempted(ctx, job.Flow, res, err)
	now := time.Now().UTC()
	rec := &status.Record{
		EventID: job.EventID, EventKind: string(job.EventKind), Flow: job.Flow, Rule: job.Rule,
		Attempt: n, IdempotencyKey: job.IdempotencyKey, Timestamp: now,
	}
	att := status.Attempt{Attempt: n, At: now}
	if res != nil {
		rec.HTTPStatus, rec.ExecutionID, rec.DurationMS = res.StatusCode, res.ExecutionID, res.Duration.Milliseconds()
		att.HTTPStatus = res.StatusCode
		span.SetAttributes(semconv.HTTPResponseStatusCode(res.StatusCode))
		if res.ExecutionID != "" {
			span.SetAttributes(attribute.String("okta.workflows.execution_id", res.ExecutionID))
		}
	}
	if err != nil {
		var fe *flow.Error
		if errors.As(err, &fe) {
			rec.OutcomeUnknown, att.OutcomeUnknown = fe.OutcomeUnknown, fe.OutcomeUnknown
		}
		rec.Error, att.Error = err.Error(), err.Error()
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		rec.Outcome = status.Succeeded
	}
	ds.st.Attempts = append(ds.st.Attempts, att)
	d.History = ds.st.Attempts
	d.Attempt = rec
	return err
}

// announceRetry publishes a retrying status; failing to is logged, not fatal: the message is
// not acked, so nothing is lost.
func (w *Worker) announceRetry(ctx context.Context, d *Delivery, job *Job, delay time.Duration, why string) {
	w.announce(ctx, d, job, status.Retrying, delay, why)
}

// announce publishes a non-terminal status (retrying, held) for the job.
func (w *Worker) announce(ctx context.Context, d *Delivery, job *Job, outcome status.Outcome, delay time.Duration, why string) {
	var rec status.Record
	if d.Attempt != nil {
		rec = *d.Attempt
	} else { // no call made in this delivery (e.g. the breaker is open): report the job itself
		rec = status.Record{EventID: job.EventID, EventKind: string(job.EventKind), Flow: job.Flow, Rule: job.Rule,
			Attempt: len(d.History), IdempotencyKey: job.IdempotencyKey}
	}
	rec.Outcome, rec.Delay, rec.Why, rec.Timestamp = outcome, status.Duration(delay), why, time.Now().UTC()
	if outcome != status.Retrying {
		rec.Error = ""
	}
	key := genKey(job)
	if d.Attempt == nil || outcome != status.Retrying {
		key += fmt.Sprintf(":held:%d", d.Delivered) // one per delivery, not per attempt
	}
	if err := w.publishStatus(ctx, key, rec); err != nil {
		w.log.WarnContext(ctx, "could not publish retrying status", "event_id", job.EventID, "flow", job.Flow, "error", err)
	}
}

func whyRetry(err error) string {
	var fe *flow.Error
	if !errors.As(err, &fe) {
		return err.Error()
	}
	switch {
	case fe.StatusCode == 429:
		return "HTTP 429 (rate limited)"
	case fe.StatusCode != 0:
		return fmt.Sprintf("HTTP %d", fe.StatusCode)
	case fe.OutcomeUnknown:
		return "no answer after the request was sent (outcome unknown; retrying with the same idempotency key)"
	}
	return "connection error"
}

// genKey identifies a job generation in record de-duplication ids.
func genKey(job *Job) string { return fmt.Sprintf("%s:%d", job.Key, job.EventSequence) }

// recordDispatch stores the result of a dispatch: the terminal state, then the dead letter
// when there is one, then the status.
func (w *Worker) recordDispatch(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, d *Delivery) error {
		err := next.Handle(ctx, d)
		ds, job := d.dispatch, d.Job
		switch {
		case errors.Is(err, errDuplicate):
			w.log.InfoContext(ctx, "duplicate event: the flow already succeeded for it; not invoking again",
				"event_id", job.EventID, "flow", job.Flow, "execution_id", ds.st.Terminal.ExecutionID)
			d.recorded = true
			return nil
		case errors.Is(err, errAlreadyTerminal):
			// A previous delivery decided but may have died before publishing: publish again
			// (de-duplicated) and settle the same way.
			rec := *ds.st.Terminal
			if perr := w.publishStatus(ctx, genKey(job), rec); perr != nil {
				return Retry(0, "could not store the status", perr)
			}
			d.recorded = true
			if rec.Outcome == status.Succeeded || rec.Outcome == status.DryRun {
				return nil
			}
			return DeadLetter(rec.Reason, errors.New(rec.Error))
		case err == nil:
			rec := *d.Attempt
			ds.st.Terminal = &rec
			if serr := w.saveJob(ctx, job.Key, ds); serr != nil {
				return Retry(0, "job state unavailable", serr)
			}
			if perr := w.publishStatus(ctx, genKey(job), rec); perr != nil {
				return Retry(0, "could not store the status", perr)
			}
			if rec.Outcome == status.Succeeded {
				w.metrics.remediated(ctx, job)
			}
			d.recorded = true
			return nil
		}
		if re, ok := asRetry(err); ok {
			// A retry with an attempt made was announced and saved by the handler.
			d.recorded = d.Attempt != nil && re.Err != nil && !errors.Is(err, context.Canceled)
			return err
		}
		dl, ok := asDeadLetter(err)
		if !ok {
			return err
		}
		if rerr := w.recordDispatchDeadLetter(ctx, d, dl); rerr != nil {
			return Retry(0, "could not record the dead letter", rerr)
		}
		d.recorded = true
		return err
	})
}

func (w *Worker) recordDispatchDeadLetter(ctx context.Context, d *Delivery, dl *DeadLetterError) error {
	now := time.Now().UTC()
	job := d.Job
	if job == nil { // the job itself is unreadable: keep its bytes
		rec := status.DeadLetter{Reason: dl.Reason, Error: errText(dl), Subject: d.Subject, Headers: d.Header, Payload: d.Data,
			FirstSeen: orNow(d.Published, now), LastSeen: now}
		key := fmt.Sprintf("job:%d", d.Sequence)
		seq, err := w.publishDeadLetter(ctx, key, rec)
		if err != nil {
			return err
		}
		return w.publishStatus(ctx, key, status.Record{Outcome: status.Failed, Reason: dl.Reason, Error: rec.Error, DLQSequence: seq})
	}
	rec := status.DeadLetter{
		Reason: dl.Reason, Error: errText(dl), EventID: job.EventID, EventKind: string(job.EventKind),
		Flow: job.Flow, Rule: job.Rule, Subject: job.Subject, Headers: job.Headers, Payload: job.Payload,
		IdempotencyKey: job.IdempotencyKey, History: d.History, Attempts: len(d.History),
		FirstSeen: job.FirstSeen, LastSeen: now, EventSequence: job.EventSequence,
	}
	seq, err := w.publishDeadLetter(ctx, genKey(job), rec)
	if err != nil {
		return err
	}
	st := status.Record{EventID: job.EventID, EventKind: string(job.EventKind), Flow: job.Flow, Rule: job.Rule,
		Outcome: status.Failed, Reason: dl.Reason, Error: rec.Error, DLQSequence: seq,
		IdempotencyKey: job.IdempotencyKey, Attempt: len(d.History), Timestamp: now}
	if d.Attempt != nil {
		st.HTTPStatus, st.ExecutionID, st.OutcomeUnknown = d.Attempt.HTTPStatus, d.Attempt.ExecutionID, d.Attempt.OutcomeUnknown
	}
	if ds := d.dispatch; ds != nil {
		ds.st.Terminal = &st
		if err := w.saveJob(ctx, job.Key, ds); err != nil {
			return err
		}
	}
	return w.publishStatus(ctx, genKey(job), st)
}

func (w *Worker) loadJob(ctx context.Context, key string) (jobState, uint64, error) {
	var st jobState
	b, rev, err := w.jobs.Get(ctx, key)
	if errors.Is(err, broker.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return jobState{}, rev, nil // unreadable state: start afresh rather than block the job
	}
	return st, rev, nil
}

// saveJob writes the state with optimistic concurrency: a replica that raced us wins and we
// back off.
func (w *Worker) saveJob(ctx context.Context, key string, ds *dispatchState) error {
	b, err := json.Marshal(ds.st)
	if err != nil {
		return err
	}
	var rev uint64
	if ds.rev == 0 {
		rev, err = w.jobs.Create(ctx, key, b)
	} else {
		rev, err = w.jobs.Update(ctx, key, b, ds.rev)
	}
	if err != nil {
		return fmt.Errorf("save job state: %w", err)
	}
	ds.rev = rev
	return nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
