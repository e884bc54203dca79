package worker

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/telemetry"
)

// Attribute keys of our own, next to OpenTelemetry's semantic conventions.
const (
	attrEventID = attribute.Key("event.id")
	attrFlow    = attribute.Key("flow")
	attrAttempt = attribute.Key("attempt")
	attrOutcome = attribute.Key("outcome")
)

// Trace starts a consumer span per delivery: a child of the producer's span when the message
// carries W3C trace context (so one event is one trace) and linked to it, as OpenTelemetry's
// messaging conventions ask for asynchronous hand-offs.
func (w *Worker) Trace(next Step) Step {
	return StepFunc(func(ctx context.Context, d *Delivery) Result {
		producer := trace.SpanContextFromContext(telemetry.Extract(context.Background(), d.Header))
		opts := []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(
				semconv.MessagingSystemKey.String("nats"),
				semconv.MessagingDestinationName(d.Subject),
				semconv.MessagingOperationTypeProcess,
				semconv.MessagingOperationName("process"),
				semconv.MessagingConsumerGroupName(d.Stage),
				semconv.MessagingMessageBodySize(len(d.Data)),
				attribute.Int("messaging.nats.delivered", d.Delivered),
				attribute.Int64("messaging.nats.stream_sequence", int64(d.Sequence)),
			),
		}
		if producer.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, producer)
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: producer}))
		}
		ctx, span := w.tracer.Start(ctx, "process "+d.Subject, opts...)
		defer span.End()
		res := next.Handle(ctx, d)
		err := res.Err
		if d.Event != nil {
			span.SetAttributes(attrEventID.String(d.Event.ID))
		}
		if d.Job != nil {
			span.SetAttributes(attrEventID.String(d.Job.EventID), attrFlow.String(d.Job.Flow))
		}
		span.SetAttributes(attrOutcome.String(outcomeName(err)))
		if err != nil {
			span.RecordError(err)
			if _, ok := asRetry(err); !ok {
				span.SetStatus(codes.Error, err.Error())
			}
		}
		return res
	})
}

func outcomeName(err error) string {
	if err == nil {
		return "ok"
	}
	if dl, ok := asDeadLetter(err); ok {
		return "dead_letter:" + string(dl.Reason)
	}
	return "retry"
}

// DebugHeader, set to "1" on an event, raises the "delivery handled" lines of that event
// (intake, and dispatch: the header travels with its jobs) from debug to info, to follow one
// event through a busy pipeline without logging every success.
const DebugHeader = "Remediator-Debug"

// debugRequested reports whether the message asks for its deliveries to be logged at info.
func debugRequested(h map[string][]string) bool {
	v := h[DebugHeader]
	return len(v) > 0 && v[0] == "1"
}

// Log writes one line per delivery with stable keys: at warn for a failure (a retry or a dead
// letter), at debug for a success — a busy pipeline's successes are its status records, and
// a line per success was a good part of its CPU — unless the message carries [DebugHeader].
// Nothing is built for a line the logger would drop.
func (w *Worker) Log(next Step) Step {
	return StepFunc(func(ctx context.Context, d *Delivery) Result {
		start := time.Now()
		res := next.Handle(ctx, d)
		err := res.Err
		level := slog.LevelDebug
		switch {
		case err != nil:
			level = slog.LevelWarn
		case debugRequested(d.Header):
			level = slog.LevelInfo
		}
		if !w.log.Enabled(ctx, level) {
			return res
		}
		attrs := []slog.Attr{
			slog.String("stage", d.Stage), slog.String("subject", d.Subject),
			slog.Uint64("seq", d.Sequence), slog.Int("delivered", d.Delivered),
			slog.Duration("took", time.Since(start)), slog.String("outcome", outcomeName(err)),
			slog.Bool("recorded", res.Recorded),
		}
		if d.Event != nil {
			attrs = append(attrs, slog.String("event_id", d.Event.ID))
		}
		if d.Job != nil {
			attrs = append(attrs, slog.String("event_id", d.Job.EventID), slog.String("flow", d.Job.Flow))
		}
		if d.Attempt != nil {
			attrs = append(attrs, slog.Int("attempt", d.Attempt.Attempt))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		w.log.LogAttrs(ctx, level, "delivery handled", attrs...)
		return res
	})
}

// Recover turns a panic in the handler into a dead letter (permanent_failure), so that an
// event that crashes the code is set aside with its bytes instead of crashing the worker or
// coming back forever.
func (w *Worker) Recover(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, d *Delivery) (err error) {
		defer func() {
			if p := recover(); p != nil {
				w.log.ErrorContext(ctx, "handler panic", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				err = DeadLetter(status.ReasonPermanentFailure, fmt.Errorf("internal error while handling the event (panic: %v)", p))
			}
		}()
		return next.Handle(ctx, d)
	})
}

// traceAttrs is trace.WithAttributes, usable for spans and span events.
var traceAttrs = trace.WithAttributes
