package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/telemetry"
)

func (w *Worker) intakeStep() Step {
	return w.Trace(w.Log(w.recordIntake(w.Recover(HandlerFunc(w.intake)))))
}

// intake validates, routes, authorizes and fans out one event. It returns nil only once every dispatch job
// is stored.
func (w *Worker) intake(ctx context.Context, d *Delivery) error {
	w.metrics.eventReceived(ctx, d)
	if len(d.Data) > w.cfg.MaxEventBytes {
		return DeadLetterf(status.ReasonTooLarge, "the event is %d bytes, over the limit of %d bytes (limits.maxEventBytes); it is not copied into any record: it is #%d in %s",
			len(d.Data), w.cfg.MaxEventBytes, d.Sequence, broker.StreamEvents)
	}
	kind, ok := event.KindForSubject(d.Subject)
	if !ok {
		return DeadLetterf(status.ReasonNoRoute, "subject %q carries no known event kind: publish ISPM issues to %s and entity-risk triggers to %s",
			d.Subject, event.SubjectISPM, event.SubjectITP)
	}
	ev, err := w.decode(ctx, kind, d.Data)
	if err != nil {
		return err
	}
	d.Event = ev
	w.metrics.eventValidated(ctx, ev.Kind)

	rctx, span := w.tracer.Start(ctx, "route", traceAttrs(attrEventID.String(ev.ID)))
	decisions, err := w.cfg.Router.RouteContext(rctx, ev)
	if err != nil {
		defer span.End()
		return w.routeRefused(span, err)
	}
	for _, dec := range decisions {
		span.AddEvent("flow", traceAttrs(attrFlow.String(dec.Flow), attribute.String("rule", dec.Rule)))
	}
	span.End()

	for _, dec := range decisions {
		if _, ok := w.flows[dec.Flow]; !ok {
			return DeadLetterf(status.ReasonNoRoute, "rule %q routes to flow %q, which this worker does not run", dec.Rule, dec.Flow)
		}
	}
	principal, err := w.authorize(ctx, d, ev, decisions)
	if err != nil {
		return err
	}

	firstSeen := d.Published
	if firstSeen.IsZero() {
		firstSeen = time.Now().UTC()
	}
	// The jobs are published at once and their acknowledgements gathered: the event is acked
	// (by the runner) only once every one is stored.
	jobs := make([]*Job, len(decisions))
	for i, dec := range decisions {
		key := jobKey(w.cfg.Keys, ev.Kind, ev.ID, dec.Flow)
		jobs[i] = &Job{
			Version: jobVersion, Key: key, IdempotencyKey: idempotencyKeyPrefix + key,
			EventID: ev.ID, EventKind: ev.Kind, EventShape: ev.Shape, EventTime: ev.Time, Flow: dec.Flow, Rule: dec.Rule, Priority: ev.Priority(),
			Subject: d.Subject, Principal: principal.ID, PrincipalGroups: principal.Groups,
			EventSequence: d.Sequence, FirstSeen: firstSeen,
		}
	}
	debug := debugRequested(d.Header)
	errs := make([]error, len(jobs))
	if len(jobs) == 1 {
		errs[0] = w.storeJob(ctx, jobs[0], debug)
	} else {
		var stored sync.WaitGroup
		for i, job := range jobs {
			stored.Go(func() { errs[i] = w.storeJob(ctx, job, debug) })
		}
		stored.Wait()
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		flow := jobs[i].Flow
		if payloadTooLarge(err) { // permanent: the same job can never be stored
			return DeadLetter(status.ReasonTooLarge, fmt.Errorf("the dispatch job for flow %s is too large to store (the event is %d bytes): %w", flow, len(d.Data), err))
		}
		return Retry(0, "could not store the dispatch job", fmt.Errorf("store dispatch job for flow %s: %w", flow, err))
	}
	return nil
}

// routeRefused turns the router's refusal into the event's outcome. An unrouted event (no route
// takes the issue; the risk event reaches the catch-all or a log-only rule) is skipped unless
// the configuration asks for dead letters; a failed group look-up is retried; a refusal for
// want of group membership is unauthorized (fail closed); any other refusal is no_route.
func (w *Worker) routeRefused(span trace.Span, err error) error {
	var unrouted *policy.UnroutedError
	switch {
	case errors.As(err, &unrouted) && w.cfg.Unrouted == UnroutedSkip:
		span.AddEvent("skipped", traceAttrs(attribute.String("rule", unrouted.Rule)))
		return &skipError{rule: unrouted.Rule, why: unrouted.Reason}
	case errors.Is(err, policy.ErrUnrouted) && w.cfg.Unrouted == UnroutedSkip:
		span.AddEvent("skipped")
		return &skipError{why: err.Error()}
	case errors.Is(err, policy.ErrGroupLookup):
		// Not a refusal: the rule cannot be decided until Okta answers. Retried with the
		// intake's backoff; on the last delivery lastChance dead-letters it, saying why.
		span.SetStatus(codes.Error, err.Error())
		return Retry(0, "group look-up failed", err)
	case errors.Is(err, policy.ErrUnauthorized):
		span.SetStatus(codes.Error, err.Error())
		return DeadLetter(status.ReasonUnauthorized, err)
	default:
		span.SetStatus(codes.Error, err.Error())
		return DeadLetter(status.ReasonNoRoute, err)
	}
}

// skipError ends an event that runs no flow with a skipped status: not a failure, so it is
// recorded and acked, and nothing reaches the dead-letter stream.
type skipError struct {
	rule string // the log-only rule that matched; empty when none did
	why  string
}

func (e *skipError) Error() string { return "skipped: " + e.why }

// authorize finds the event's principal and checks that it may run every flow decided, and
// that the event fits each flow's input mapping (dispatch maps the inputs again from the
// event when it calls). It is all or nothing: if the principal may not run one of the flows,
// the whole event is dead-lettered as unauthorized, naming every denied flow, and no flow
// runs; an event that does not fit a flow's input mapping is dead-lettered as
// schema_violation, and no flow runs either.
func (w *Worker) authorize(ctx context.Context, d *Delivery, ev *event.Event, decisions []policy.Decision) (policy.Principal, error) {
	_, span := w.tracer.Start(ctx, "authorize", traceAttrs(attrEventID.String(ev.ID)))
	defer span.End()
	p, err := w.cfg.Router.Principal(ev, d.Header, d.Subject)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return policy.Principal{}, DeadLetter(status.ReasonUnauthorized, err)
	}
	span.SetAttributes(attribute.String("principal", p.ID), attribute.String("principal.from", p.From))
	denied := &deniedError{flows: len(decisions)}
	for _, dec := range decisions {
		if err := w.cfg.Router.Authorize(ev, p, dec.Flow); err != nil {
			denied.errs = append(denied.errs, err)
		}
	}
	if len(denied.errs) > 0 {
		span.SetStatus(codes.Error, denied.Error())
		return policy.Principal{}, DeadLetter(status.ReasonUnauthorized, denied)
	}
	for _, dec := range decisions {
		if _, err := w.cfg.Router.Inputs(ev, dec.Flow); err != nil {
			span.SetStatus(codes.Error, err.Error())
			return policy.Principal{}, DeadLetter(status.ReasonSchemaViolation, err)
		}
	}
	return p, nil
}

// deniedError is every authorization refusal of one event, on one line.
type deniedError struct {
	errs  []error
	flows int // flows the event was routed to
}

func (e *deniedError) Error() string {
	msg := make([]string, len(e.errs))
	for i, err := range e.errs {
		msg[i] = err.Error()
	}
	s := strings.Join(msg, "; ")
	if len(e.errs) < e.flows {
		s += fmt.Sprintf(" (none of the event's %d flows runs when one is denied)", e.flows)
	}
	return s
}

func (e *deniedError) Unwrap() []error { return e.errs }

// documentValidator is a [Validator] that returns the document it parsed, so that intake
// parses an event once. *schema.Validator implements it.
type documentValidator interface {
	ValidateDocument(kind event.Kind, data []byte) (event.Shape, any, error)
}

var _ documentValidator = (*schema.Validator)(nil)

// decode validates and normalises the document, mapping failures to dead-letter reasons.
func (w *Worker) decode(ctx context.Context, kind event.Kind, data []byte) (*event.Event, error) {
	_, span := w.tracer.Start(ctx, "validate", traceAttrs(attribute.String("event.kind", string(kind))))
	defer span.End()
	var shape event.Shape
	var doc any
	var err error
	if dv, ok := w.cfg.Validator.(documentValidator); ok { // parse once
		shape, doc, err = dv.ValidateDocument(kind, data)
	} else {
		shape, err = w.cfg.Validator.Validate(kind, data)
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		var syn *schema.SyntaxError
		if errors.As(err, &syn) {
			return nil, DeadLetter(status.ReasonInvalidJSON, err)
		}
		return nil, DeadLetter(status.ReasonSchemaViolation, err)
	}
	var ev *event.Event
	if doc != nil {
		ev, err = event.DecodeDocument(shape, doc)
	} else {
		ev, err = event.Decode(shape, data)
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return nil, DeadLetter(status.ReasonSchemaViolation, err)
	}
	span.SetAttributes(attrEventID.String(ev.ID), attribute.String("event.shape", string(shape)))
	return ev, nil
}

// storeJob publishes a job. Its msg id is per (job, event sequence), so a redelivered event
// does not store it twice while a replay (a new sequence) does. debug passes the event's
// [DebugHeader] on to the job.
func (w *Worker) storeJob(ctx context.Context, job *Job, debug bool) error {
	data, err := json.Marshal(job)
	if err != nil {
		return err
	}
	h := map[string][]string{}
	telemetry.Inject(ctx, h)
	if debug {
		h[DebugHeader] = []string{"1"}
	}
	subject := DispatchSubject(job.Flow, job.Priority)
	w.sign(subject, data, h)
	_, err = w.cfg.Broker.Publish(ctx, subject, data, broker.PublishOptions{
		MsgID:  fmt.Sprintf("job:%s:%d", job.Key, job.EventSequence),
		Header: h,
	})
	return err
}

// recordIntake stores the dead letter and rejected status of a refused event, on a context
// detached from the work's cancellation, and says whether the outcome is stored. A successful
// intake has already stored its jobs. On the last allowed delivery, a result that would be
// retried is dead-lettered instead.
func (w *Worker) recordIntake(next Handler) Step {
	return StepFunc(func(ctx context.Context, d *Delivery) Result {
		err := next.Handle(ctx, d)
		if skip, ok := errors.AsType[*skipError](err); ok {
			if serr := w.recordSkipped(ctx, d, skip); serr != nil {
				err = Retry(0, "could not store the skipped status", serr)
			} else {
				return Result{Recorded: true}
			}
		}
		err = w.lastChance(d, err)
		if err == nil {
			return Result{Recorded: true}
		}
		dl, ok := asDeadLetter(err)
		if !ok {
			return Result{Err: err}
		}
		ctx, cancel := finalContext(ctx)
		defer cancel()
		now := time.Now().UTC()
		rec := status.DeadLetter{
			Reason: dl.Reason, Error: errText(dl), Subject: d.Subject, Headers: d.Header, Payload: d.Data,
			Stream: broker.StreamEvents, EventSequence: d.Sequence, FirstSeen: orNow(d.Published, now), LastSeen: now,
		}
		if dl.Reason == status.ReasonTooLarge { // never copied: a reference to the event only
			rec.Payload, rec.Headers = nil, nil
		}
		if d.Event != nil {
			rec.EventID, rec.EventKind = d.Event.ID, string(d.Event.Kind)
		} else {
			if len(d.Data) <= w.cfg.MaxEventBytes {
				rec.EventID = event.PeekID(d.Data)
			}
			if k, ok := event.KindForSubject(d.Subject); ok {
				rec.EventKind = string(k)
			}
		}
		key := fmt.Sprintf("event:%d", d.Sequence)
		seq, perr := w.storeDeadLetter(ctx, key, rec)
		if perr != nil {
			return Result{Err: Retry(0, "could not store the dead letter", perr)}
		}
		st := status.Record{
			EventID: rec.EventID, EventKind: rec.EventKind, Outcome: status.Rejected, Attempt: 0,
			Error: rec.Error, Reason: dl.Reason, DLQSequence: seq,
		}
		if serr := w.publishStatus(ctx, key, st); serr != nil {
			return Result{Err: Retry(0, "could not store the status", serr)}
		}
		w.metrics.eventRejected(ctx, rec.EventKind, dl.Reason)
		return Result{Err: err, Recorded: true}
	})
}

func errText(dl *DeadLetterError) string {
	if dl.Err == nil {
		return string(dl.Reason)
	}
	return dl.Err.Error()
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t.UTC()
}

// recordSkipped stores the terminal skipped status of an event that runs no flow, on a context
// detached from the work's cancellation. Its key is the event's sequence, as a rejected
// event's, so a redelivery does not record it twice.
func (w *Worker) recordSkipped(ctx context.Context, d *Delivery, skip *skipError) error {
	ctx, cancel := finalContext(ctx)
	defer cancel()
	st := status.Record{Outcome: status.Skipped, Rule: skip.rule, Why: skip.why}
	if d.Event != nil {
		st.EventID, st.EventKind = d.Event.ID, string(d.Event.Kind)
	}
	if err := w.publishStatus(ctx, fmt.Sprintf("event:%d", d.Sequence), st); err != nil {
		return err
	}
	w.log.InfoContext(ctx, "event skipped: it runs no flow", slog.String("event_id", st.EventID),
		slog.String("rule", st.Rule), slog.String("why", st.Why), slog.Uint64("seq", d.Sequence))
	return nil
}
