package broker

import (
	"context"
	"errors"
	"fmt"

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

// Publish stores data on subject in JetStream and waits for the stream's
// acknowledgement (bounded by ctx, or 5s when ctx has no deadline). A nil
// error means the message is stored. When no stream captures subject, the
// error wraps [ErrStreamNotFound].
func (b *Broker) Publish(ctx context.Context, subject string, data []byte, opts PublishOptions) (PubAck, error) {
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
	ack, err := b.js.PublishMsg(ctx, msg, popts...)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
			return PubAck{}, fmt.Errorf("publish to %s: %w: no stream captures this subject — are the streams provisioned (`remediator run` does it), and is the subject spelt right?",
				subject, ErrStreamNotFound)
		}
		return PubAck{}, fmt.Errorf("publish to %s: %w", subject, err)
	}
	return PubAck{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
