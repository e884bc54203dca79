package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/telemetry"
)

// publishRecord stores one record in JetStream, in its own producer span, with msgID so that a
// redelivered message does not write it twice.
func (w *Worker) publishRecord(ctx context.Context, subject, msgID string, v any) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode record: %w", err)
	}
	ctx, span := w.tracer.Start(ctx, "publish "+subject, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingDestinationName(subject),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("publish"),
			semconv.MessagingMessageID(msgID),
		))
	defer span.End()
	h := map[string][]string{}
	telemetry.Inject(ctx, h)
	w.sign(subject, data, h)
	ack, err := w.cfg.Broker.Publish(ctx, subject, data, broker.PublishOptions{MsgID: msgID, Header: h})
	if err != nil {
		span.RecordError(err)
		return 0, err
	}
	span.SetAttributes(attribute.Int64("messaging.nats.stream_sequence", int64(ack.Sequence)), attribute.Bool("messaging.nats.duplicate", ack.Duplicate))
	return ack.Sequence, nil
}

// publishStatus stores a status record. Its msgID makes it idempotent per (key, outcome, attempt).
func (w *Worker) publishStatus(ctx context.Context, key string, rec status.Record) error {
	if rec.Timestamp.IsZero() {
		rec.Timestamp = time.Now().UTC()
	}
	if rec.TraceID == "" {
		rec.TraceID = telemetry.TraceID(ctx)
	}
	msgID := fmt.Sprintf("status:%s:%s:%d", key, rec.Outcome, rec.Attempt)
	_, err := w.publishRecord(ctx, rec.Outcome.Subject(), msgID, rec)
	if err == nil {
		w.metrics.statusWritten(ctx, rec)
	}
	return err
}

// publishDeadLetter stores a dead letter and returns its sequence in REMEDIATION_DLQ.
func (w *Worker) publishDeadLetter(ctx context.Context, key string, dl status.DeadLetter) (uint64, error) {
	if dl.TraceID == "" {
		dl.TraceID = telemetry.TraceID(ctx)
	}
	dl.Headers = redactHeaders(dl.Headers)
	seq, err := w.publishRecord(ctx, dl.Reason.Subject(), "dlq:"+key, dl)
	if err == nil {
		w.metrics.deadLettered(ctx, dl.Reason)
	}
	return seq, err
}

// secretHeader reports header names whose values must never be copied into records.
func secretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"authorization", "token", "secret", "password", "cookie", "api-key", "apikey", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func redactHeaders(h map[string][]string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if secretHeader(k) {
			out[k] = []string{"[REDACTED]"}
			continue
		}
		out[k] = v
	}
	return out
}

// storeDeadLetter stores dl. A dead letter too large to store (its event near the size limit
// with large headers) is stored again without payload and headers: a reference to the event
// by stream and sequence, which dlq show and replay follow.
func (w *Worker) storeDeadLetter(ctx context.Context, key string, dl status.DeadLetter) (uint64, error) {
	seq, err := w.publishDeadLetter(ctx, key, dl)
	if err == nil || !payloadTooLarge(err) || (len(dl.Payload) == 0 && len(dl.Headers) == 0) {
		return seq, err
	}
	dl.Payload, dl.Headers = nil, nil
	if dl.EventSequence != 0 {
		dl.Error += fmt.Sprintf(" (the event is too large to copy into this dead letter: it is #%d in %s)", dl.EventSequence, dl.Stream)
	}
	return w.publishDeadLetter(ctx, key, dl)
}
