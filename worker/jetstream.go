package worker

import (
	"context"
	"errors"
	"time"

	"github.com/remediator/remediator/broker"
)

// The worker's dependencies on JetStream are the small interfaces below, so that the settle
// table, each middleware and the budget can be tested with fakes while integration tests use
// a real server through [JetStream].

// Broker is what the worker needs from JetStream: publish records and jobs, bind durable pull
// consumers, open key-value buckets, and read an event back by its stream sequence (for a
// dispatch dead letter). [JetStream] adapts a *broker.Broker.
type Broker interface {
	Publish(ctx context.Context, subject string, data []byte, opts broker.PublishOptions) (broker.PubAck, error)
	Consumer(ctx context.Context, cfg broker.ConsumerConfig) (Source, error)
	KeyValue(ctx context.Context, cfg broker.KVConfig) (Bucket, error)
	// GetMessage reads one stored message; a missing one gives an error wrapping
	// broker.ErrMessageNotFound.
	GetMessage(ctx context.Context, stream string, seq uint64) (*broker.StoredMessage, error)
}

// Doorbells tells the worker, without asking JetStream, that a subject got a message: a hint
// that lets idle dispatch runners sleep instead of polling (see broker.Broker.Doorbell). A
// [Broker] that implements it gets doorbells; one that does not is polled.
type Doorbells interface {
	// Doorbell calls ring with the subject of every message published on subject until stop
	// is called. ring must not block.
	Doorbell(ctx context.Context, subject string, ring func(subject string)) (stop func(), err error)
}

// Source is a durable pull consumer.
type Source interface {
	// Name is the durable name.
	Name() string
	// Fetch returns up to max messages, waiting at most wait for the first (see
	// broker.Consumer.Fetch). A deleted consumer gives an error wrapping
	// broker.ErrConsumerNotFound.
	Fetch(ctx context.Context, max int, wait time.Duration) ([]Message, error)
	// Pending is the consumer's backlog (waiting plus awaiting an ack), for the lag metric.
	Pending(ctx context.Context) (uint64, error)
}

// Message is a JetStream message as the worker needs it. *broker.Message implements it.
type Message interface {
	Subject() string
	Data() []byte
	Headers() map[string][]string
	Delivered() int
	StreamSequence() uint64
	Published() time.Time
	Ack(ctx context.Context) error
	Nak(delay time.Duration) error
	Term(reason string) error
	InProgress() error
}

// KV is the compare-and-swap part of a key-value bucket: job state, rate budgets and
// blast-radius caps use it. A missing key gives broker.ErrKeyNotFound; a lost race
// broker.ErrKeyExists (Create) or broker.ErrRevisionMismatch (Update).
type KV interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error)
}

// Bucket is a key-value bucket the worker can also watch (the operator controls).
type Bucket interface {
	KV
	// Watch calls fn with every current value, then ready, then every change, until ctx ends
	// (see broker.KV.Watch).
	Watch(ctx context.Context, key string, fn func(key string, value []byte, deleted bool), ready func()) error
}

// Advisories reports JetStream's MAX_DELIVERIES advisories: a message of a consumer that was
// delivered its maximum number of times and will not be delivered again. The worker
// dead-letters on the last allowed delivery, so an advisory means even that failed (the DLQ
// was unreachable): the message stays in its stream (at streamSeq) and needs an operator.
// *broker.Broker implements it.
type Advisories interface {
	WatchMaxDeliveries(ctx context.Context, fn func(stream, consumer string, streamSeq uint64, deliveries int)) error
}

// ErrPayloadTooLarge marks a publish refused because the message exceeds the server's (or the
// stream's) maximum size (broker.ErrPayloadTooLarge). It is permanent: the same message can
// never be stored.
var ErrPayloadTooLarge = broker.ErrPayloadTooLarge

// payloadTooLarge reports whether a publish failed because its message is too large.
func payloadTooLarge(err error) bool { return errors.Is(err, ErrPayloadTooLarge) }

// JetStream adapts a *broker.Broker to [Broker].
func JetStream(b *broker.Broker) Broker { return jetStream{b} }

type jetStream struct{ b *broker.Broker }

var (
	_ Message        = (*broker.Message)(nil)
	_ Bucket         = (*broker.KV)(nil)
	_ Advisories     = (*broker.Broker)(nil)
	_ Doorbells      = jetStream{}
	_ consumerLister = jetStream{}
)

func (j jetStream) Publish(ctx context.Context, subject string, data []byte, opts broker.PublishOptions) (broker.PubAck, error) {
	return j.b.Publish(ctx, subject, data, opts)
}

func (j jetStream) Consumer(ctx context.Context, cfg broker.ConsumerConfig) (Source, error) {
	c, err := j.b.Consumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return consumer{c}, nil
}

func (j jetStream) KeyValue(ctx context.Context, cfg broker.KVConfig) (Bucket, error) {
	kv, err := j.b.KeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return kv, nil
}

func (j jetStream) Doorbell(ctx context.Context, subject string, ring func(subject string)) (func(), error) {
	return j.b.Doorbell(ctx, subject, ring)
}

func (j jetStream) ConsumerInfos(ctx context.Context, stream string) ([]broker.ConsumerInfo, error) {
	return j.b.ConsumerInfos(ctx, stream)
}

func (j jetStream) GetMessage(ctx context.Context, stream string, seq uint64) (*broker.StoredMessage, error) {
	return j.b.GetMessage(ctx, stream, seq)
}

// consumer adapts *broker.Consumer, whose Fetch returns concrete messages.
type consumer struct{ c *broker.Consumer }

func (c consumer) Name() string                                { return c.c.Name() }
func (c consumer) Pending(ctx context.Context) (uint64, error) { return c.c.Pending(ctx) }

func (c consumer) Fetch(ctx context.Context, max int, wait time.Duration) ([]Message, error) {
	msgs, err := c.c.Fetch(ctx, max, wait)
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = m
	}
	return out, err
}
