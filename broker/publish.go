package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishOptions are optional settings of one publish.
type PublishOptions struct {
	// MsgID is sent as Nats-Msg-Id: a second publish with the same id within
	// the stream's duplicate window is stored once ([PubAck.Duplicate]).
	MsgID string
	// Header is extra message headers (e.g. W3C traceparent). Not modified.
	Header map[string][]string
}

// PubAck is JetStream's acknowledgement of a stored message.
type PubAck struct {
	Stream    string // stream that stored the message
	Sequence  uint64 // its sequence in that stream (of the original, if Duplicate)
	Duplicate bool   // true when MsgID was seen within the duplicate window and nothing new was stored
}

// publishTimeout bounds a Publish, retries included, when ctx has no
// deadline.
const publishTimeout = 5 * time.Second

// Publish stores data on subject in JetStream and waits for the stream's
// acknowledgement, bounded by ctx (or 5s when ctx has no deadline). A nil
// error means the message is stored.
//
// A publish whose acknowledgement does not come within 5s (the message may
// or may not be stored) is sent again with backoff, but only when
// opts.MsgID is set: the stream's duplicate window then stores it once, and
// the PubAck of a repeat says Duplicate. A publish that no stream answered
// (no responders, e.g. while a stream elects a leader) was not stored and is
// sent again with or without MsgID. Other errors are returned at once:
// when no stream captures subject, the error wraps [ErrStreamNotFound]; when
// data is larger than the server accepts ([Broker.MaxPayload]), it wraps
// [ErrPayloadTooLarge], which no retry can fix.
func (b *Broker) Publish(ctx context.Context, subject string, data []byte, opts PublishOptions) (PubAck, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, publishTimeout)
		defer cancel()
	}
	if max := b.MaxPayload(); max > 0 && int64(len(data)) > max {
		return PubAck{}, fmt.Errorf("publish to %s: %w: %d bytes, and the NATS server's max_payload is %d bytes",
			subject, ErrPayloadTooLarge, len(data), max)
	}
	msg := &nats.Msg{Subject: subject, Data: data}
	if len(opts.Header) > 0 {
		msg.Header = make(nats.Header, len(opts.Header))
		for k, v := range opts.Header {
			msg.Header[k] = append([]string(nil), v...)
		}
	}
	var popts []jetstream.PublishOpt
	if opts.MsgID != "" {
		popts = append(popts, jetstream.WithMsgID(opts.MsgID))
	}
	policy := newRetryPolicy()
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
		ack, err := b.js.PublishMsg(attemptCtx, msg, popts...)
		cancel()
		if err == nil {
			return PubAck{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
		}
		if retryPublish(err, opts.MsgID != "") && ctx.Err() == nil && b.streamCaptures(ctx, subject, err) {
			delay := policy.NextBackOff()
			b.logger.InfoContext(ctx, "publish not acknowledged, sending again", "subject", subject, "msg_id", opts.MsgID,
				"attempt", attempt, "retry_in", delay, "error", err)
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
				continue
			case <-ctx.Done():
				timer.Stop()
			}
		}
		return PubAck{}, publishErr(subject, attempt, err)
	}
}

// retryPublish decides whether a failed publish may be sent again. A
// publish nobody answered (no responders) was not stored, so it may always
// be repeated. One whose acknowledgement timed out may have been stored;
// repeating it is safe only with a Nats-Msg-Id, which the stream's duplicate
// window de-duplicates.
func retryPublish(err error, hasMsgID bool) bool {
	switch {
	case tooLarge(err), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrConnectionReconnecting):
		return hasMsgID
	default:
		return hasCode(err, codeClusterNotAvail, codeClusterNotLeader, codeStreamOffline)
	}
}

// streamCaptures reports whether a publish that found no responder is worth
// repeating: yes unless JetStream positively says no stream captures the
// subject, which no retry fixes (a typo, or streams not provisioned).
func (b *Broker) streamCaptures(ctx context.Context, subject string, err error) bool {
	if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrNoStreamResponse) {
		return true
	}
	_, lookupErr := b.js.StreamNameBySubject(ctx, subject)
	return !errors.Is(lookupErr, jetstream.ErrStreamNotFound)
}

func publishErr(subject string, attempts int, err error) error {
	switch {
	case tooLarge(err):
		return fmt.Errorf("publish to %s: %w: %w", subject, ErrPayloadTooLarge, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("publish to %s: %w: no stream captures this subject — are the streams provisioned (`remediator run` does it), and is the subject spelt right?",
			subject, ErrStreamNotFound)
	case attempts > 1:
		return fmt.Errorf("publish to %s: not acknowledged after %d attempts: %w", subject, attempts, err)
	default:
		return fmt.Errorf("publish to %s: %w", subject, err)
	}
}
