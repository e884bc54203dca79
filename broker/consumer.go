package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerConfig configures a durable pull consumer. The zero value of each
// optional field means its documented default.
type ConsumerConfig struct {
	// Stream is the stream to consume, e.g. [StreamEvents]. Required.
	Stream string
	// Durable is the consumer name, shared by every replica that should split
	// the work (e.g. remediator-intake). Required.
	Durable string
	// FilterSubjects restricts the consumer to these subjects (wildcards
	// allowed); none = the whole stream. On [StreamDispatch] (a work queue)
	// two consumers' filters must not overlap.
	FilterSubjects []string
	// AckWait is how long a fetched message may stay unacknowledged before
	// JetStream redelivers it. Default 60s. Extend it per message with
	// [Message.InProgress].
	AckWait time.Duration
	// MaxDeliver caps deliveries per message. Default -1 (unlimited): the
	// worker enforces its own attempt budget and dead-letters.
	MaxDeliver int
	// MaxAckPending caps messages delivered but not yet acknowledged, across
	// all replicas. Default 1000.
	MaxAckPending int
	// InactiveThreshold deletes the consumer after this long without
	// fetches. 0 = never.
	InactiveThreshold time.Duration
}

// minFetchWait is the shortest wait Fetch will hold a pull request open for;
// shorter waits do not wait.
const minFetchWait = 10 * time.Millisecond

// Consumer is a durable pull consumer. Fetch is safe for concurrent use.
type Consumer struct {
	stream, name string
	cons         jetstream.Consumer
	logger       *slog.Logger
}

// Consumer creates the durable pull consumer, or updates it when it exists
// with other settings (explicit acks, deliver-all). Changing a setting
// JetStream cannot update (e.g. the filter of a work-queue consumer to
// overlap another) fails with the server's reason.
func (b *Broker) Consumer(ctx context.Context, cfg ConsumerConfig) (*Consumer, error) {
	if cfg.Stream == "" || cfg.Durable == "" {
		return nil, errors.New("consumer: Stream and Durable are required")
	}
	if strings.ContainsAny(cfg.Durable, ".*> \t\r\n/\\") {
		return nil, fmt.Errorf("consumer: durable name %q must not contain '.', '*', '>', '/', '\\' or whitespace", cfg.Durable)
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 60 * time.Second
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = -1
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = 1000
	}
	if cfg.AckWait < 0 || cfg.InactiveThreshold < 0 || cfg.MaxAckPending < -1 {
		return nil, fmt.Errorf("consumer %s: AckWait, InactiveThreshold and MaxAckPending must not be negative", cfg.Durable)
	}
	jc := jetstream.ConsumerConfig{
		Durable:           cfg.Durable,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           cfg.AckWait,
		MaxDeliver:        cfg.MaxDeliver,
		MaxAckPending:     cfg.MaxAckPending,
		InactiveThreshold: cfg.InactiveThreshold,
	}
	switch len(cfg.FilterSubjects) {
	case 0:
	case 1:
		jc.FilterSubject = cfg.FilterSubjects[0]
	default:
		jc.FilterSubjects = cfg.FilterSubjects
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, cfg.Stream, jc)
	if err != nil {
		if contains(err, "overlap") {
			return nil, fmt.Errorf("consumer %s on %s: its filter %v overlaps another consumer's, which a work-queue stream forbids: %w",
				cfg.Durable, cfg.Stream, cfg.FilterSubjects, err)
		}
		return nil, streamErr("create consumer "+cfg.Durable, cfg.Stream, err)
	}
	return &Consumer{stream: cfg.Stream, name: cfg.Durable, cons: cons, logger: b.logger}, nil
}

// Name is the durable name.
func (c *Consumer) Name() string { return c.name }

// Fetch returns up to maxMessages messages. Messages already waiting are
// returned at once; when none is waiting it waits at most wait for the first
// one and returns it with whatever else is waiting by then, so latency stays
// low and a batch is never padded by waiting. (nil, nil) means nothing
// arrived within wait; a wait below 10ms does not wait. Cancelling ctx stops
// the wait promptly with ctx's error; messages received before that are
// returned without error and must be handled.
//
// Fetch never asks JetStream for more than maxMessages in total, so nothing
// is delivered that the caller did not ask for. (A message the server sends
// in the instant ctx is cancelled is redelivered after AckWait.)
func (c *Consumer) Fetch(ctx context.Context, maxMessages int, wait time.Duration) ([]*Message, error) {
	if maxMessages <= 0 {
		return nil, fmt.Errorf("fetch from %s: maxMessages must be positive, got %d", c.name, maxMessages)
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	// 1. What is ready now.
	msgs, err := c.collect(c.cons.FetchNoWait(maxMessages))
	if err != nil || len(msgs) > 0 || wait <= 0 {
		return msgs, err
	}
	// 2. Nothing ready: wait for one, bounded by wait and ctx, in pulls of at most maxPull.
	if wait < minFetchWait {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for {
		chunk := min(time.Until(deadline), maxPull)
		if chunk < minFetchWait {
			return nil, nil // wait elapsed
		}
		msgs, err = c.pull(ctx, chunk)
		if err != nil || len(msgs) > 0 {
			break
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
	}
	if len(msgs) == 0 {
		return nil, err
	}
	// 3. Got one: add what else is ready, without waiting.
	if maxMessages > 1 && ctx.Err() == nil {
		more, err := c.collect(c.cons.FetchNoWait(maxMessages - 1))
		if err != nil {
			// The next Fetch reports it again; these messages must be handled.
			c.logger.Debug("fetch: second batch failed", "consumer", c.name, "error", err)
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

// maxPull bounds one pull request: a longer wait is several pulls, so that a cancelled wait
// leaves nothing behind for long.
const maxPull = 500 * time.Millisecond

// pull waits up to wait for one message. The pull ends by the server's expiry, never by a
// client-side context: nats.go drops a message that arrives just as its context ends, and that
// message would then sit unacked until AckWait. If ctx ends first, whatever the pull still
// brings is handed straight back (nak) for redelivery.
func (c *Consumer) pull(ctx context.Context, wait time.Duration) ([]*Message, error) {
	batch, err := c.cons.Fetch(1, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, c.fetchErr(err)
	}
	type result struct {
		msgs []*Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := c.collect(batch, nil)
		done <- result{msgs, err}
	}()
	select {
	case r := <-done:
		return r.msgs, r.err
	case <-ctx.Done():
		go func() {
			for _, m := range (<-done).msgs {
				if err := m.Nak(0); err != nil {
					c.logger.Debug("fetch: could not hand back a late message; it returns after AckWait", "consumer", c.name, "error", err)
				}
			}
		}()
		return nil, context.Cause(ctx)
	}
}

// collect reads a batch to the end.
func (c *Consumer) collect(batch jetstream.MessageBatch, err error) ([]*Message, error) {
	if err != nil {
		return nil, c.fetchErr(err)
	}
	var out []*Message
	for m := range batch.Messages() {
		out = append(out, newMessage(m))
	}
	if err := batch.Error(); err != nil && len(out) == 0 {
		return nil, c.fetchErr(err)
	}
	return out, nil
}

func (c *Consumer) fetchErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("fetch from %s on %s: %w: it was deleted (or removed after its inactive threshold) — create it again with Broker.Consumer",
			c.name, c.stream, ErrConsumerNotFound)
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("fetch from %s: the NATS connection is closed: %w", c.name, err)
	default:
		return fmt.Errorf("fetch from %s on %s: %w", c.name, c.stream, err)
	}
}

// Pending is the number of messages not yet acknowledged: waiting in the
// stream for this consumer plus delivered and awaiting an ack.
func (c *Consumer) Pending(ctx context.Context) (uint64, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, streamErr("consumer "+c.name+" info", c.stream, err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// Message is a message delivered by a [Consumer]. Finish it with exactly one
// of Ack, Nak or Term.
type Message struct {
	msg       jetstream.Msg
	delivered int
	seq       uint64
	published time.Time
}

func newMessage(m jetstream.Msg) *Message {
	out := &Message{msg: m}
	if md, err := m.Metadata(); err == nil {
		out.delivered = int(md.NumDelivered)
		out.seq = md.Sequence.Stream
		out.published = md.Timestamp
	}
	return out
}

// Subject is the subject the message was published to.
func (m *Message) Subject() string { return m.msg.Subject() }

// Data is the payload. Do not modify it.
func (m *Message) Data() []byte { return m.msg.Data() }

// Headers returns a copy of the message headers (an empty map when there
// are none), which the caller may modify.
func (m *Message) Headers() map[string][]string { return copyHeader(m.msg.Headers()) }

// Delivered is how many times this message has been delivered, 1 on the
// first delivery.
func (m *Message) Delivered() int { return m.delivered }

// StreamSequence is the message's sequence in its stream.
func (m *Message) StreamSequence() uint64 { return m.seq }

// Published is when the stream stored the message.
func (m *Message) Published() time.Time { return m.published }

// Ack acknowledges the message and waits until the server confirms it (a
// double ack), bounded by ctx. On error the ack may or may not have been
// recorded: the message may be redelivered.
func (m *Message) Ack(ctx context.Context) error {
	if err := m.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("ack %s #%d: %w", m.Subject(), m.seq, err)
	}
	return nil
}

// Nak asks for redelivery after delay (0 = as soon as possible). The
// consumer's AckWait and BackOff do not apply to naks; the caller chooses
// the delay.
func (m *Message) Nak(delay time.Duration) error {
	var err error
	if delay > 0 {
		err = m.msg.NakWithDelay(delay)
	} else {
		err = m.msg.Nak()
	}
	if err != nil {
		return fmt.Errorf("nak %s #%d: %w", m.Subject(), m.seq, err)
	}
	return nil
}

// Term tells JetStream never to redeliver the message; reason is recorded in
// the server's advisory. Dead-letter the message before terminating it.
func (m *Message) Term(reason string) error {
	var err error
	if reason != "" {
		err = m.msg.TermWithReason(reason)
	} else {
		err = m.msg.Term()
	}
	if err != nil {
		return fmt.Errorf("term %s #%d: %w", m.Subject(), m.seq, err)
	}
	return nil
}

// InProgress resets the message's AckWait timer, for work that takes longer
// than AckWait.
func (m *Message) InProgress() error {
	if err := m.msg.InProgress(); err != nil {
		return fmt.Errorf("in-progress %s #%d: %w", m.Subject(), m.seq, err)
	}
	return nil
}

func copyHeader(h nats.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}
