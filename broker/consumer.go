package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerConfig configures a durable pull consumer. AckWait, MaxDeliver
// and MaxAckPending have no defaults: [Broker.Consumer] refuses a zero value
// with an error naming the field (the service's defaults live in package
// config).
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
	// JetStream redelivers it. Required, at least [MinAckWait]. Extend it per
	// message with [Message.InProgress].
	AckWait time.Duration
	// MaxDeliver caps deliveries per message: after the last one JetStream
	// stops redelivering it and publishes a MAX_DELIVERIES advisory
	// ([Broker.WatchMaxDeliveries]); the message stays in the stream.
	// Required: a positive count, or -1 for unlimited.
	MaxDeliver int
	// MaxAckPending caps messages delivered but not yet acknowledged, across
	// all replicas. Required: a positive count, or -1 for unlimited.
	MaxAckPending int
	// InactiveThreshold deletes the consumer after this long without
	// fetches. 0 = never.
	InactiveThreshold time.Duration
	// StateInMemory keeps the consumer's delivery state (ack floor, pending and
	// redelivery counts) in the server's memory instead of a file the server
	// rewrites after acks: with hundreds of consumers those writes cost more
	// than the messages. Meant for work-queue streams, where it loses nothing
	// the stream does not keep — an acked message is deleted from the stream,
	// an unacked one stays in it. A server restart loses the state of messages
	// in flight (they are delivered again at once, counted from one) and, on a
	// single server, the consumer itself: [Consumer.Fetch] then reports
	// [ErrConsumerNotFound] and [Consumer.Recreate] brings it back. Changing it
	// on an existing consumer deletes and creates the consumer again.
	StateInMemory bool
}

// MinAckWait is the shortest [ConsumerConfig.AckWait] accepted: below it a
// message would be redelivered while the first delivery is still on the wire.
const MinAckWait = time.Second

func (cfg ConsumerConfig) validate() error {
	var errs []error
	if cfg.Stream == "" {
		errs = append(errs, errors.New("Stream is required"))
	}
	if cfg.Durable == "" {
		errs = append(errs, errors.New("Durable is required"))
	} else if strings.ContainsAny(cfg.Durable, ".*> \t\r\n/\\") {
		errs = append(errs, fmt.Errorf("Durable name %q must not contain '.', '*', '>', '/', '\\' or whitespace", cfg.Durable))
	}
	if cfg.AckWait < MinAckWait {
		errs = append(errs, fmt.Errorf("AckWait %s must be at least %s", cfg.AckWait, MinAckWait))
	}
	if cfg.MaxDeliver == 0 || cfg.MaxDeliver < -1 {
		errs = append(errs, fmt.Errorf("MaxDeliver %d must be a positive count, or -1 for unlimited", cfg.MaxDeliver))
	}
	if cfg.MaxAckPending == 0 || cfg.MaxAckPending < -1 {
		errs = append(errs, fmt.Errorf("MaxAckPending %d must be a positive count, or -1 for unlimited", cfg.MaxAckPending))
	}
	if cfg.InactiveThreshold < 0 {
		errs = append(errs, fmt.Errorf("InactiveThreshold %s must not be negative (0 = never)", cfg.InactiveThreshold))
	}
	return errors.Join(errs...)
}

// jetstreamConfig is the server-side configuration for cfg.
func (cfg ConsumerConfig) jetstreamConfig() jetstream.ConsumerConfig {
	jc := jetstream.ConsumerConfig{
		Durable:           cfg.Durable,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           cfg.AckWait,
		MaxDeliver:        cfg.MaxDeliver,
		MaxAckPending:     cfg.MaxAckPending,
		InactiveThreshold: cfg.InactiveThreshold,
		MemoryStorage:     cfg.StateInMemory,
	}
	switch len(cfg.FilterSubjects) {
	case 0:
	case 1:
		jc.FilterSubject = cfg.FilterSubjects[0]
	default:
		jc.FilterSubjects = cfg.FilterSubjects
	}
	return jc
}

// minFetchWait is the shortest wait Fetch will hold a pull request open for;
// shorter waits do not wait.
const minFetchWait = 10 * time.Millisecond

// Consumer is a durable pull consumer. Fetch is safe for concurrent use.
type Consumer struct {
	stream, name string
	cfg          ConsumerConfig
	b            *Broker
	cons         atomic.Pointer[jetstream.Consumer] // swapped by Recreate
	logger       *slog.Logger
}

// Consumer creates the durable pull consumer, or updates it when it exists
// with other settings (explicit acks, deliver-all). Changing a setting
// JetStream cannot update (e.g. the filter of a work-queue consumer to
// overlap another) fails with the server's reason. Transient JetStream
// failures (no leader yet, timeouts) are retried with backoff until ctx ends,
// so replicas starting together on a fresh cluster all get their consumer.
func (b *Broker) Consumer(ctx context.Context, cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	cfg.FilterSubjects = slices.Clone(cfg.FilterSubjects) // kept for Recreate
	c := &Consumer{stream: cfg.Stream, name: cfg.Durable, cfg: cfg, b: b, logger: b.logger}
	if err := c.create(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// create creates or updates the durable on the server and binds c to it.
func (c *Consumer) create(ctx context.Context) error {
	createOrUpdate := func(ctx context.Context) (jetstream.Consumer, error) {
		return c.b.js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg.jetstreamConfig())
	}
	cons, err := retryTransient(ctx, c.b.logger, "create consumer "+c.name, createOrUpdate)
	if err != nil && storageChangeRefused(err) {
		// The server keeps a consumer's storage for life. The durable's unacked
		// messages stay in the stream: the new consumer delivers them again.
		if derr := c.b.js.DeleteConsumer(ctx, c.stream, c.name); derr != nil && !errors.Is(derr, jetstream.ErrConsumerNotFound) {
			return streamErr("replace consumer "+c.name+" (its state storage changed)", c.stream, derr)
		}
		c.logger.WarnContext(ctx, "durable consumer replaced: where it keeps its state changed; its unacknowledged messages are delivered again",
			"stream", c.stream, "consumer", c.name, "state_in_memory", c.cfg.StateInMemory)
		cons, err = retryTransient(ctx, c.b.logger, "create consumer "+c.name, createOrUpdate)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrOverlappingFilterSubjects) || hasCode(err, codeWQConsumerNotUnique, codeWQMultipleUnfiltered) {
			return fmt.Errorf("consumer %s on %s: its filter %v overlaps another consumer's, which a work-queue stream forbids: %w",
				c.name, c.stream, c.cfg.FilterSubjects, err)
		}
		return streamErr("create consumer "+c.name, c.stream, err)
	}
	c.cons.Store(&cons)
	return nil
}

// storageChangeRefused reports the server's refusal to change where an existing
// consumer keeps its state. The server answers with its generic consumer-create
// error code, so the description is all there is to match.
func storageChangeRefused(err error) bool {
	return strings.Contains(err.Error(), "storage type can not be updated")
}

// Recreate creates the durable consumer again from the configuration it was
// made with, after [Consumer.Fetch] reported [ErrConsumerNotFound] (an
// operator deleted it, or its inactive threshold passed). Messages it had
// delivered but not acknowledged are delivered again. Fetch does not do this
// by itself, so that the caller decides (and logs, and reports in readiness)
// when a consumer is brought back. Recreating a consumer that exists is
// harmless: it is updated to the same settings.
func (c *Consumer) Recreate(ctx context.Context) error {
	if err := c.create(ctx); err != nil {
		return err
	}
	c.logger.WarnContext(ctx, "durable consumer recreated", "stream", c.stream, "consumer", c.name)
	return nil
}

func (c *Consumer) consumer() jetstream.Consumer { return *c.cons.Load() }

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
	batch, err := c.consumer().FetchNoWait(maxMessages)
	msgs, err := c.collect(ctx, batch, err)
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
		batch, err := c.consumer().FetchNoWait(maxMessages - 1)
		more, err := c.collect(ctx, batch, err)
		if err != nil {
			// The next Fetch reports it again; these messages must be handled.
			c.logger.Debug("fetch: second batch failed", "consumer", c.name, "error", err)
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

// maxPull bounds one pull request. A cancelled Fetch returns only when its
// pull has ended (so that no goroutine of it outlives the call), which takes
// at most this long.
const maxPull = 300 * time.Millisecond

// pull waits up to wait for one message. The pull ends by the server's
// expiry, never by a client-side context: nats.go drops a message that
// arrives just as its context ends, and that message would then sit unacked
// until AckWait. pull reads the pull to its end before returning, even when
// ctx ends first (at most wait later), because the reader nats.go starts for
// a pull would otherwise outlive the call; whatever the pull brings after
// ctx ended is handed straight back (nak) for redelivery.
func (c *Consumer) pull(ctx context.Context, wait time.Duration) ([]*Message, error) {
	batch, err := c.consumer().Fetch(1, jetstream.FetchMaxWait(wait))
	msgs, err := c.collect(ctx, batch, err)
	if ctx.Err() == nil {
		return msgs, err
	}
	for _, m := range msgs {
		if err := m.Nak(0); err != nil {
			c.logger.Debug("fetch: could not hand back a late message; it returns after AckWait", "consumer", c.name, "error", err)
		}
	}
	return nil, context.Cause(ctx)
}

// collect reads a batch to its end: when it returns, nats.go's reader of the
// batch has finished.
func (c *Consumer) collect(ctx context.Context, batch jetstream.MessageBatch, err error) ([]*Message, error) {
	if err != nil {
		return nil, c.fetchErr(ctx, err)
	}
	var out []*Message
	for m := range batch.Messages() {
		out = append(out, newMessage(m))
	}
	if err := batch.Error(); err != nil && len(out) == 0 {
		return nil, c.fetchErr(ctx, err)
	}
	return out, nil
}

// fetchErr maps a pull failure to this package's errors. A pull for a
// consumer that does not exist finds no responder, as does one while
// JetStream is unavailable; the consumer's info (typed not-found) tells which.
func (c *Consumer) fetchErr(ctx context.Context, err error) error {
	gone := fmt.Errorf("fetch from %s on %s: %w: it was deleted (or removed after its inactive threshold) — Consumer.Recreate creates it again",
		c.name, c.stream, ErrConsumerNotFound)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		return gone
	case errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("fetch from %s: the NATS connection is closed: %w", c.name, err)
	case errors.Is(err, nats.ErrNoResponders):
		infoCtx, cancel := context.WithTimeout(ctx, infoTimeout)
		defer cancel()
		_, infoErr := c.consumer().Info(infoCtx)
		if errors.Is(infoErr, jetstream.ErrConsumerNotFound) {
			return gone
		}
		if errors.Is(infoErr, jetstream.ErrStreamNotFound) {
			return streamErr("fetch from "+c.name, c.stream, infoErr)
		}
		return fmt.Errorf("fetch from %s on %s: JetStream did not answer (unavailable or electing a leader): %w", c.name, c.stream, err)
	default:
		return fmt.Errorf("fetch from %s on %s: %w", c.name, c.stream, err)
	}
}

// infoTimeout bounds the consumer-info request fetchErr makes to classify a
// failed pull.
const infoTimeout = 5 * time.Second

// Pending is the number of messages not yet acknowledged: waiting in the
// stream for this consumer plus delivered and awaiting an ack.
func (c *Consumer) Pending(ctx context.Context) (uint64, error) {
	info, err := c.consumer().Info(ctx)
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

// Ack acknowledges the message. It does not wait for the server to confirm
// (a double ack was a request per message, a quarter of the dispatch hot
// path's throughput): the caller acks only after the message's result is
// stored, so an ack lost on the way (a reconnect at the wrong moment) costs a
// redelivery after AckWait, which finds the result and is acked again. An
// error means the ack was not sent (the connection is closed or draining).
// The context is unused: nothing waits.
func (m *Message) Ack(_ context.Context) error {
	if err := m.msg.Ack(); err != nil {
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
