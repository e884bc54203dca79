package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
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
	// Claim is the delivery calling the flow right now. Two deliveries of one job (an event
	// published twice, handled at the same moment by two runners or replicas) both find no
	// terminal record; only the one whose claim is stored first calls, the other is handed
	// back until the claim ends and then finds the terminal record. Every save that ends a
	// delivery clears it; a claim left by a crashed replica lapses at Until.
	Claim *jobClaim `json:"claim,omitempty"`
}

// jobClaim is a delivery's hold on a job while it may call the flow.
type jobClaim struct {
	// Message identifies the holder: the job message's dispatch stream sequence.
	Message string `json:"message"`
	// Delivery is the holder's delivery of that message. A later delivery of the same message
	// finding the claim live is a redelivery while the holder may still be calling (its
	// heartbeats lost, e.g. in a stream leader's election): it waits, as another message would.
	Delivery int       `json:"delivery,omitempty"`
	Until    time.Time `json:"until"`
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

// slotFarError says the flow's next rate-budget slot is too far away to hold the job for it.
type slotFarError struct{ next time.Time }

func (e *slotFarError) Error() string {
	return "the flow's next rate-budget slot is at " + e.next.Format(time.RFC3339Nano)
}

// dispatchState is the job state the dispatch handler loaded and changed; it returns it to
// its recorder.
type dispatchState struct {
	st  jobState
	rev uint64
}

// dispatchFunc is the dispatch handler: its outcome, and the job state for the recorder.
type dispatchFunc func(ctx context.Context, d *Delivery) (*dispatchState, error)

func (w *Worker) dispatchStep() Step {
	return w.Trace(w.Log(w.recordDispatch(w.dispatch)))
}

// slotWithin is how far away a rate-budget slot may be for a delivery to be held for it:
// half the ack wait, or any distance on the last delivery (a hand-back would end it). The
// heartbeat keeps the delivery alive meanwhile.
func (w *Worker) slotWithin(d *Delivery) time.Duration {
	if d.LastDelivery {
		return math.MaxInt64
	}
	return w.cfg.AckWait / 2
}

func (w *Worker) dispatch(ctx context.Context, d *Delivery) (*dispatchState, error) {
	if err := w.verifyJob(ctx, d); err != nil {
		return nil, err // d.Job stays nil: nothing of the job is trusted, its bytes are kept
	}
	job, err := decodeJob(d.Data)
	if err != nil {
		return nil, DeadLetter(status.ReasonPermanentFailure, err)
	}
	d.Job = job // verified: remediator wrote it
	fr, ok := w.flows[job.Flow]
	if !ok {
		return nil, DeadLetterf(status.ReasonPermanentFailure, "flow %q is not configured on this worker", job.Flow)
	}
	if err := w.checkJob(job, d.Subject); err != nil {
		return nil, err
	}
	ds, err := w.claim(ctx, d, job, fr)
	if err != nil {
		return ds, err
	}
	d.History = ds.st.Attempts
	if err := w.mapInputs(ctx, job); err != nil {
		return ds, err
	}

	if fr.DryRun || fr.controls.dryRun(job.Flow) {
		d.Attempt = &status.Record{
			EventID: job.EventID, EventKind: string(job.EventKind), Flow: job.Flow, Rule: job.Rule,
			Outcome: status.DryRun, DryRun: true, Inputs: job.Inputs, IdempotencyKey: job.IdempotencyKey,
			Attempt: len(ds.st.Attempts), Why: "flow is in dry-run mode: the invocation was decided and recorded, not made",
		}
		return ds, nil
	}
	return ds, w.invoke(ctx, d, fr, job, ds)
}

// invoke makes the job's attempts of this delivery (the first, then quick retries) and says
// what comes next. What it learns is saved on a context detached from ctx's cancellation, so
// that an attempt made before shutdown is never forgotten.
func (w *Worker) invoke(ctx context.Context, d *Delivery, fr *flowRunner, job *Job, ds *dispatchState) error {
	// Quick retries: a few in-process attempts for blips, each announced with a retrying status.
	quick := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(w.cfg.QuickRetryDelay),
		backoff.WithMaxInterval(quickRetryMax),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
	policy := backoff.WithContext(backoff.WithMaxRetries(quick, uint64(w.cfg.QuickRetries)), ctx)
	var last *flow.Error
	slotBooked := d.SlotBooked
	op := func() error {
		if ok, until, err := fr.blast.take(ctx); err != nil {
			return backoff.Permanent(Retry(0, "blast-radius cap unavailable", err))
		} else if !ok {
			return backoff.Permanent(&cappedError{until: until})
		}
		if !slotBooked { // quick retries spend the shared budget like any call
			booked, next, err := fr.waitBudget(ctx, w.slotWithin(d))
			if err != nil {
				return backoff.Permanent(Retry(0, "rate budget unavailable", err))
			}
			if !booked {
				return backoff.Permanent(&slotFarError{next: next})
			}
		}
		slotBooked = false
		// The claim must outlast the call: a quick retry, or a long wait for the budget's slot
		// on the last delivery, renews it first.
		if c := ds.st.Claim; c != nil && time.Until(c.Until) < flowTimeout(fr) {
			if err := w.renewClaim(ctx, job.Key, ds, fr); err != nil {
				return backoff.Permanent(Retry(0, "could not renew the job's claim", err))
			}
		}
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
	err := backoff.RetryNotify(op, policy, notify)
	if err == nil {
		return nil
	}
	var perm *backoff.PermanentError
	if errors.As(err, &perm) { // keep backoff's type inside this package
		err = perm.Err
	}
	// From here on, what this delivery learnt is saved even if shutdown cancels the work.
	workCtx := ctx
	ctx, cancel := finalContext(ctx)
	defer cancel()
	saveAttempts := func() error {
		if d.Attempt == nil {
			return nil // no attempt made in this delivery: nothing new to keep
		}
		return w.saveJob(ctx, job.Key, ds)
	}
	if re, ok := asRetry(err); ok { // budget or cap unavailable, or shutdown while waiting
		if serr := saveAttempts(); serr != nil {
			return Retry(0, "job state unavailable", serr)
		}
		return re
	}
	var far *slotFarError
	if errors.As(err, &far) {
		if serr := saveAttempts(); serr != nil {
			return Retry(0, "job state unavailable", serr)
		}
		wait := max(time.Until(far.next), 0)
		w.announceRetry(ctx, d, job, wait, fmt.Sprintf("the rate budget of flow %s has no slot before %s; handed back to JetStream until then", job.Flow, far.next.UTC().Format(time.RFC3339)))
		return Retry(wait, "rate-budget slot far away", err)
	}
	var capped *cappedError
	if errors.As(err, &capped) {
		if serr := saveAttempts(); serr != nil {
			return Retry(0, "job state unavailable", serr)
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
		if serr := saveAttempts(); serr != nil {
			return Retry(0, "job state unavailable", serr)
		}
		cool := fr.Breaker.Cooldown
		w.announceRetry(ctx, d, job, cool, fmt.Sprintf("circuit breaker for flow %s is open after repeated failures; waiting for it to cool down", job.Flow))
		return Retry(cool, "circuit breaker open", errCircuitOpen)
	}
	var ferr *flow.Error
	if !errors.As(err, &ferr) {
		return Retry(0, "dispatch interrupted", err)
	}
	if errors.Is(err, context.Canceled) && workCtx.Err() != nil {
		// Shutdown cancelled the call: keep the attempt and hand the job back.
		if serr := saveAttempts(); serr != nil {
			return Retry(0, "job state unavailable", serr)
		}
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
		rec.Output, rec.OutputTruncated, rec.ResponseHeaders = strings.ToValidUTF8(string(res.Body), "\uFFFD"), res.BodyTruncated, res.Header
		if err == nil {
			rec.Why = res.Note // e.g. a native action already in effect
		}
		if res.Hold > 0 { // the target's rate-limit window is spent: no call before it resets
			if herr := fr.budget.hold(ctx, res.Hold); herr != nil {
				w.log.WarnContext(ctx, "could not hold the shared rate budget", "flow", job.Flow, "error", herr)
			}
		}
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
			rec.Okta = oktaError(fe.Okta)
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

// recordDispatch stores the result of a dispatch — the terminal state, then the dead letter
// when there is one, then the status — on a context detached from the work's cancellation, and
// says whether it is stored. On the last allowed delivery, a result that would be retried is
// dead-lettered instead.
func (w *Worker) recordDispatch(next dispatchFunc) Step {
	return StepFunc(func(ctx context.Context, d *Delivery) Result {
		var ds *dispatchState
		err := w.Recover(HandlerFunc(func(ctx context.Context, d *Delivery) error {
			var err error
			ds, err = next(ctx, d)
			return err
		})).Handle(ctx, d)
		err = w.lastChance(d, err)
		ctx, cancel := finalContext(ctx)
		defer cancel()
		job := d.Job
		switch {
		case errors.Is(err, errDuplicate):
			w.log.InfoContext(ctx, "duplicate event: the flow already succeeded for it; not invoking again",
				"event_id", job.EventID, "flow", job.Flow, "execution_id", ds.st.Terminal.ExecutionID)
			return Result{Recorded: true}
		case errors.Is(err, errAlreadyTerminal):
			// A previous delivery decided but may have died before publishing: publish again
			// (de-duplicated) and settle the same way.
			rec := *ds.st.Terminal
			if perr := w.publishStatus(ctx, genKey(job), rec); perr != nil {
				return Result{Err: Retry(0, "could not store the status", perr)}
			}
			if rec.Outcome == status.Succeeded || rec.Outcome == status.DryRun {
				return Result{Recorded: true}
			}
			return Result{Err: DeadLetter(rec.Reason, errors.New(rec.Error)), Recorded: true}
		case err == nil:
			rec := *d.Attempt
			ds.st.Terminal = &rec
			if serr := w.saveJob(ctx, job.Key, ds); serr != nil {
				return Result{Err: Retry(0, "job state unavailable", serr)}
			}
			if perr := w.publishStatus(ctx, genKey(job), rec); perr != nil {
				return Result{Err: Retry(0, "could not store the status", perr)}
			}
			if rec.Outcome == status.Succeeded {
				w.metrics.remediated(ctx, job)
			}
			return Result{Recorded: true}
		}
		dl, ok := asDeadLetter(err)
		if !ok {
			// A retry: what an attempt taught was saved and announced by the handler. A claim
			// still stored (handed back before any attempt) is cleared, so that the next
			// delivery does not wait for it; if that fails, it lapses.
			if ds != nil && ds.st.Claim != nil {
				if serr := w.saveJob(ctx, job.Key, ds); serr != nil {
					w.log.WarnContext(ctx, "could not clear the job's claim; the next delivery waits until it lapses", "flow", job.Flow, "event_id", job.EventID, "error", serr)
				}
			}
			return Result{Err: err}
		}
		if rerr := w.recordDispatchDeadLetter(ctx, d, ds, dl); rerr != nil {
			return Result{Err: Retry(0, "could not record the dead letter", rerr)}
		}
		return Result{Err: err, Recorded: true}
	})
}

// lastChance turns a result that would be retried into a retries_exhausted dead letter when
// JetStream will not deliver the message again: it is recorded rather than left behind.
func (w *Worker) lastChance(d *Delivery, err error) error {
	if !d.LastDelivery || err == nil || errors.Is(err, errDuplicate) || errors.Is(err, errAlreadyTerminal) {
		return err
	}
	if _, ok := asDeadLetter(err); ok {
		return err
	}
	return DeadLetter(status.ReasonRetriesExhausted,
		fmt.Errorf("delivery %d is the last JetStream allows (max deliveries) and it could not be handled: %w", d.Delivered, err))
}

func (w *Worker) recordDispatchDeadLetter(ctx context.Context, d *Delivery, ds *dispatchState, dl *DeadLetterError) error {
	now := time.Now().UTC()
	job := d.Job
	if job == nil { // the job itself is unreadable: keep its bytes
		rec := status.DeadLetter{Reason: dl.Reason, Error: errText(dl), Subject: d.Subject, Headers: d.Header, Payload: d.Data,
			FirstSeen: orNow(d.Published, now), LastSeen: now}
		key := fmt.Sprintf("job:%d", d.Sequence)
		seq, err := w.storeDeadLetter(ctx, key, rec)
		if err != nil {
			return err
		}
		return w.publishStatus(ctx, key, status.Record{Outcome: status.Failed, Reason: dl.Reason, Error: rec.Error, DLQSequence: seq})
	}
	rec := status.DeadLetter{
		Reason: dl.Reason, Error: errText(dl), EventID: job.EventID, EventKind: string(job.EventKind),
		Flow: job.Flow, Rule: job.Rule, Subject: job.Subject,
		IdempotencyKey: job.IdempotencyKey, History: d.History, Attempts: len(d.History),
		FirstSeen: job.FirstSeen, LastSeen: now, Stream: broker.StreamEvents, EventSequence: job.EventSequence,
	}
	if d.Attempt != nil {
		rec.Okta = d.Attempt.Okta
		rec.Output, rec.OutputTruncated, rec.ResponseHeaders = d.Attempt.Output, d.Attempt.OutputTruncated, d.Attempt.ResponseHeaders
	}
	if err := w.embedEvent(ctx, &rec); err != nil {
		return err
	}
	seq, err := w.storeDeadLetter(ctx, genKey(job), rec)
	if err != nil {
		return err
	}
	st := status.Record{EventID: job.EventID, EventKind: string(job.EventKind), Flow: job.Flow, Rule: job.Rule,
		Outcome: status.Failed, Reason: dl.Reason, Error: rec.Error, DLQSequence: seq,
		IdempotencyKey: job.IdempotencyKey, Attempt: len(d.History), Timestamp: now}
	if d.Attempt != nil {
		st.HTTPStatus, st.ExecutionID, st.OutcomeUnknown = d.Attempt.HTTPStatus, d.Attempt.ExecutionID, d.Attempt.OutcomeUnknown
		st.Okta = d.Attempt.Okta
		st.Output, st.OutputTruncated, st.ResponseHeaders = d.Attempt.Output, d.Attempt.OutputTruncated, d.Attempt.ResponseHeaders
	}
	if ds != nil {
		ds.st.Terminal = &st
		if err := w.saveJob(ctx, job.Key, ds); err != nil {
			return err
		}
	}
	return w.publishStatus(ctx, genKey(job), st)
}

// mapInputs gives a version 3 job its inputs: it reads the job's event back from
// REMEDIATION_EVENTS by its sequence and maps it for the job's flow with the configuration in
// force. The event must be the one the job names (its subject and id); the job is sealed, and
// a stored message never changes, so that binds the inputs to what intake validated. An event
// no longer stored (expired or deleted while its job waited) cannot be called for: the job is
// dead-lettered, saying so; another read error is retried.
func (w *Worker) mapInputs(ctx context.Context, job *Job) error {
	if job.Inputs != nil { // an older job carried them
		return nil
	}
	msg, err := w.cfg.Broker.GetMessage(ctx, broker.StreamEvents, job.EventSequence)
	if errors.Is(err, broker.ErrMessageNotFound) {
		return DeadLetterf(status.ReasonPermanentFailure, "the job's event, #%d in %s, is no longer stored (expired or deleted while the job waited): its inputs cannot be mapped; keep events at least as long as jobs (streams.maxAge, streams.maxBytes)", job.EventSequence, broker.StreamEvents)
	}
	if err != nil {
		return Retry(0, "event unavailable", fmt.Errorf("read the job's event #%d: %w", job.EventSequence, err))
	}
	if msg.Subject != job.Subject {
		return DeadLetterf(status.ReasonPermanentFailure, "the job's event #%d is on %s, not %s as the job says", job.EventSequence, msg.Subject, job.Subject)
	}
	var ev *event.Event
	if job.EventShape != "" { // validated by intake, which sealed the job naming the shape
		if ev, err = event.Decode(job.EventShape, msg.Data); err != nil {
			return DeadLetter(status.ReasonSchemaViolation, err)
		}
	} else if ev, err = w.decode(ctx, job.EventKind, msg.Data); err != nil {
		return err // a dead letter: the event does not pass validation
	}
	if ev.ID != job.EventID {
		return DeadLetterf(status.ReasonPermanentFailure, "the job's event #%d is event %q, not %q as the job says", job.EventSequence, ev.ID, job.EventID)
	}
	in, err := w.cfg.Router.Inputs(ev, job.Flow)
	if err != nil {
		return DeadLetter(status.ReasonSchemaViolation, err)
	}
	job.Inputs = in
	return nil
}

// embedEvent loads the dead letter's event from REMEDIATION_EVENTS by its sequence and embeds
// its bytes and headers. An event no longer there (expired, deleted) leaves the dead letter a
// reference only, saying so; another read error is returned (retried).
func (w *Worker) embedEvent(ctx context.Context, rec *status.DeadLetter) error {
	if rec.EventSequence == 0 {
		return nil
	}
	msg, err := w.cfg.Broker.GetMessage(ctx, broker.StreamEvents, rec.EventSequence)
	if errors.Is(err, broker.ErrMessageNotFound) {
		rec.Error += fmt.Sprintf(" (the event, #%d in %s, is no longer stored: this dead letter is a reference only)", rec.EventSequence, broker.StreamEvents)
		return nil
	}
	if err != nil {
		return fmt.Errorf("load the event for its dead letter: %w", err)
	}
	rec.Payload, rec.Headers = msg.Data, msg.Header
	return nil
}

func (w *Worker) loadJob(ctx context.Context, key string) (jobState, uint64, error) {
	var st jobState
	b, rev, err := w.jobs.Get(ctx, key) // sealed: see openJobState
	if errors.Is(err, broker.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	return w.openJobState(ctx, key, b), rev, nil
}

// claim takes the job's claim before any call. Most jobs have no record yet: creating it with
// the claim is the read and the claim in one request. Only when a record exists is it read and
// judged: a terminal record of this generation (errAlreadyTerminal) or a success of an earlier
// one (errDuplicate) ends the delivery with that state; another delivery's live claim hands it
// back, be it another message's or an earlier delivery of this one (whose hand-back would have
// cleared it); an earlier generation starts afresh.
func (w *Worker) claim(ctx context.Context, d *Delivery, job *Job, fr *flowRunner) (*dispatchState, error) {
	holder := strconv.FormatUint(d.Sequence, 10)
	ds := &dispatchState{st: jobState{EventSequence: job.EventSequence}}
	if claimed, err := w.claimJob(ctx, job.Key, ds, holder, d.Delivered, fr); err != nil {
		return nil, err
	} else if claimed {
		return ds, nil
	}
	st, rev, err := w.loadJob(ctx, job.Key)
	if err != nil {
		return nil, Retry(0, "job state unavailable", err)
	}
	switch {
	case st.Terminal != nil && st.EventSequence == job.EventSequence:
		return &dispatchState{st: st, rev: rev}, errAlreadyTerminal
	case st.Terminal != nil && st.Terminal.Outcome == status.Succeeded:
		return &dispatchState{st: st, rev: rev}, errDuplicate
	}
	if c := st.Claim; c != nil && (c.Message != holder || c.Delivery != d.Delivered) && time.Now().Before(c.Until) {
		return nil, Retry(claimWait(c.Until, d.Delivered), "another delivery of this job is calling the flow", errClaimed)
	}
	if st.EventSequence != job.EventSequence {
		st = jobState{EventSequence: job.EventSequence}
	}
	ds = &dispatchState{st: st, rev: rev}
	if claimed, err := w.claimJob(ctx, job.Key, ds, holder, d.Delivered, fr); err != nil {
		return nil, err
	} else if !claimed {
		return nil, Retry(0, "another delivery of this job claimed it first", errClaimed)
	}
	return ds, nil
}

// errClaimed says another delivery of the job holds its claim.
var errClaimed = errors.New("job claimed by another delivery")

// claimWait is how long a delivery that found the job claimed is handed back for: a quarter
// of a second, doubling with each delivery, never past the claim's end — most calls end
// within a second, so a duplicate learns of the success soon, and a long one costs a few
// deliveries, not one per poll.
func claimWait(until time.Time, delivered int) time.Duration {
	wait := claimPoll << min(max(delivered-1, 0), 10)
	return max(min(wait, time.Until(until)), claimPoll)
}

const claimPoll = 250 * time.Millisecond

// claimJob stores this delivery's claim on the job before any call, with the same optimistic
// concurrency as saveJob: of two deliveries racing, one stores its claim and calls, the other
// is handed back. It reports false, and changes nothing, when the record changed since ds was
// read (or, for ds.rev 0, exists). The claim covers one attempt: its wait for a rate-budget
// slot and its call (an ack wait and the flow's timeout); renewClaim extends it before a call
// that could outlast it (a quick retry, a long wait for the budget).
func (w *Worker) claimJob(ctx context.Context, key string, ds *dispatchState, holder string, delivery int, fr *flowRunner) (bool, error) {
	ds.st.Claim = &jobClaim{Message: holder, Delivery: delivery, Until: w.claimUntil(fr)}
	if err := w.writeJob(ctx, key, ds); err != nil {
		ds.st.Claim = nil
		if errors.Is(err, broker.ErrKeyExists) || errors.Is(err, broker.ErrRevisionMismatch) {
			return false, nil
		}
		return false, Retry(0, "job state unavailable", err)
	}
	return true, nil
}

// claimUntil is when a claim taken now lapses: an ack wait (the longest a delivery waits for
// its rate-budget slot, and JetStream's patience with a silent holder) plus the flow's timeout.
func (w *Worker) claimUntil(fr *flowRunner) time.Time {
	return time.Now().Add(w.cfg.AckWait + flowTimeout(fr)).UTC()
}

// flowTimeout is how long one call of the flow may take.
func flowTimeout(fr *flowRunner) time.Duration {
	if fr.Endpoint.Timeout > 0 {
		return fr.Endpoint.Timeout
	}
	return flow.DefaultTimeout
}

// renewClaim extends this delivery's claim for one more call. It fails when the record changed
// meanwhile: the claim is no longer certainly ours.
func (w *Worker) renewClaim(ctx context.Context, key string, ds *dispatchState, fr *flowRunner) error {
	if ds.st.Claim == nil {
		return errors.New("no claim to renew")
	}
	ds.st.Claim.Until = w.claimUntil(fr)
	return w.writeJob(ctx, key, ds)
}

// saveJob writes the state at the end of a delivery (its claim cleared) with optimistic
// concurrency: a replica that raced us wins and we back off.
func (w *Worker) saveJob(ctx context.Context, key string, ds *dispatchState) error {
	ds.st.Claim = nil
	return w.writeJob(ctx, key, ds)
}

func (w *Worker) writeJob(ctx context.Context, key string, ds *dispatchState) error {
	b, err := w.sealJobState(key, ds.st)
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

// oktaError copies Okta's error object from a flow error into the records (nil stays nil).
func oktaError(oe *flow.OktaError) *status.OktaError {
	if oe == nil {
		return nil
	}
	rec := &status.OktaError{Code: oe.Code, Summary: oe.Summary, ID: oe.ID}
	for _, c := range oe.Causes {
		rec.Causes = append(rec.Causes, status.OktaErrorCause{Summary: c})
	}
	return rec
}
