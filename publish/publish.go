package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/telemetry"
)

// Sender stores a message in JetStream. *broker.Broker implements it.
type Sender interface {
	Publish(ctx context.Context, subject string, data []byte, opts broker.PublishOptions) (broker.PubAck, error)
}

var _ Sender = (*broker.Broker)(nil)

// Publisher publishes events.
type Publisher struct {
	sender Sender
	tracer trace.Tracer
}

// New returns a publisher; tp defaults to the global tracer provider.
func New(s Sender, tp trace.TracerProvider) *Publisher {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return &Publisher{sender: s, tracer: tp.Tracer("github.com/remediator/remediator/publish")}
}

// Options adjust one publish.
type Options struct {
	// Subject to publish to. Default: detected from the document (see [DetectSubject]).
	Subject string
	// MsgID is the de-duplication id. Default: the event id found in the document, if any.
	MsgID string
	// Header adds headers to the message.
	Header map[string][]string
}

// Result says where the event went.
type Result struct {
	Subject   string
	Stream    string
	Sequence  uint64
	Duplicate bool // JetStream already had this MsgID within its duplicate window
	EventID   string
	TraceID   string
}

// Publish sends data, the event document exactly as given, to remediator.
func (p *Publisher) Publish(ctx context.Context, data []byte, opts Options) (Result, error) {
	subject := opts.Subject
	if subject == "" {
		s, err := DetectSubject(data)
		if err != nil {
			return Result{}, err
		}
		subject = s
	}
	id := event.PeekID(data)
	msgID := opts.MsgID
	if msgID == "" {
		msgID = id
	}
	ctx, span := p.tracer.Start(ctx, "send "+subject, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		semconv.MessagingSystemKey.String("nats"),
		semconv.MessagingDestinationName(subject),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("publish"),
		semconv.MessagingMessageBodySize(len(data)),
		attribute.String("event.id", id),
	))
	defer span.End()
	h := map[string][]string{}
	for k, v := range opts.Header {
		h[k] = v
	}
	telemetry.Inject(ctx, h)
	ack, err := p.sender.Publish(ctx, subject, data, broker.PublishOptions{MsgID: msgID, Header: h})
	if err != nil {
		span.RecordError(err)
		return Result{}, fmt.Errorf("publish to %s: %w", subject, err)
	}
	return Result{Subject: subject, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate, EventID: id, TraceID: telemetry.TraceID(ctx)}, nil
}

// ErrUnknownKind is returned by [DetectSubject] for a document that looks like neither kind.
var ErrUnknownKind = errors.New("cannot tell whether this is an ISPM issue or an entity-risk trigger")

// DetectSubject picks the subject for a document: entity-risk triggers (they have riskLevel)
// and Okta System Log risk LogEvents (eventType user.risk.detect or user.risk.change) go to
// remediation.events.itp, ISPM issues (issueId, eventData, ...) to remediation.events.ispm.
// For a document that is not a JSON object, or has none of those members, it returns an error
// wrapping [ErrUnknownKind] rather than guessing; pass the subject explicitly to publish it
// anyway (the worker then dead-letters it with a clear reason).
func DetectSubject(data []byte) (string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("%w: the document is not a JSON object (%v); pass the subject explicitly", ErrUnknownKind, err)
	}
	has := func(k string) bool { _, ok := doc[k]; return ok }
	var eventType string
	_ = json.Unmarshal(doc["eventType"], &eventType)
	switch {
	case eventType == event.EventTypeHookDelivery:
		return "", fmt.Errorf("%w: this is a batched Okta event-hook delivery; post it to the ingress's /hooks/okta, or publish each of its data.events[] on its own", ErrUnknownKind)
	case event.IsRiskEventType(eventType) && has("uuid"):
		return event.SubjectITP, nil // an Okta System Log risk LogEvent
	case has("riskLevel") || has("detectionType"):
		return event.SubjectITP, nil
	case has("issueId") || has("issueTitle") || has("eventData"):
		return event.SubjectISPM, nil
	}
	return "", fmt.Errorf("%w: it has neither riskLevel nor issueId/eventData; pass the subject explicitly", ErrUnknownKind)
}
