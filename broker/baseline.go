package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// RawBaseline is JetStream with nothing of remediator around it: the ceiling `remediator
// bench` compares the pipeline with. It owns a throw-away stream (file storage, limits
// retention, one replica, as REMEDIATION_EVENTS on a single server) on its own connection;
// [RawBaseline.Close] deletes it. The caller times each phase and measures its CPU: this
// type only does the work, so that the measuring stays in one place (package bench).
//
// The phases are what `nats bench js` measures, and what remediator's pull pattern costs:
// [RawBaseline.Publish] stores n messages with asynchronous publishes (acks gathered),
// [RawBaseline.ConsumeAck] reads them through a long-lived pull subscription with plain
// acks, and [RawBaseline.FetchOneDoubleAck] reads them one Fetch(1) and one double ack at a
// time.
type RawBaseline struct {
	b       *Broker
	js      jetstream.JetStream
	stream  string
	subject string
	payload []byte
}

// rawPublishWindow bounds asynchronous publishes awaiting their ack: enough to keep the
// server busy, few enough that a slow disk throttles the publisher instead of its memory.
const rawPublishWindow = 256

// NewRawBaseline connects with cfg and creates the baseline's stream, whose messages carry
// size bytes each.
func NewRawBaseline(ctx context.Context, cfg ConnConfig, size int, logger *slog.Logger) (*RawBaseline, error) {
	if size <= 0 {
		return nil, fmt.Errorf("raw baseline: message size must be positive, got %d", size)
	}
	b, err := Connect(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(rawPublishWindow))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("raw baseline: JetStream: %w", err)
	}
	id := nuid.Next()
	r := &RawBaseline{b: b, js: js, stream: "BENCH_RAW_" + id, subject: "bench.raw." + id, payload: bytes.Repeat([]byte{'x'}, size)}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: r.stream, Subjects: []string{r.subject}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Replicas: 1,
	}); err != nil {
		b.Close()
		return nil, streamErr("create", r.stream, err)
	}
	return r, nil
}

// Publish stores n messages: asynchronous publishes, at most rawPublishWindow awaiting their
// ack, and returns once every one is acknowledged.
func (r *RawBaseline) Publish(ctx context.Context, n int) error {
	futures := make([]jetstream.PubAckFuture, 0, rawPublishWindow)
	settle := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("raw baseline: publish: %w", err)
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		futures = futures[:0]
		return nil
	}
	for range n {
		f, err := r.js.PublishAsync(r.subject, r.payload)
		if err != nil {
			return fmt.Errorf("raw baseline: publish: %w", err)
		}
		futures = append(futures, f)
		if len(futures) == cap(futures) {
			if err := settle(); err != nil {
				return err
			}
		}
	}
	return settle()
}

// ConsumeAck reads the first n messages through a new durable consumer's long-lived pull
// subscription (nats.go's Messages, which keeps pulls of 500 outstanding) and acks each
// with a plain ack, as `nats bench js consume` does. It returns once the server has
// recorded every ack: a plain ack is not confirmed, so it waits for the consumer's ack
// floor to reach the last message.
func (r *RawBaseline) ConsumeAck(ctx context.Context, n int) error {
	cons, err := r.consumer(ctx, "consume")
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("raw baseline: consume: %w", err)
	}
	defer it.Stop()
	var last uint64
	for range n {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("raw baseline: consume: %w", err)
		}
		if err := msg.Ack(); err != nil {
			return fmt.Errorf("raw baseline: ack: %w", err)
		}
		if md, err := msg.Metadata(); err == nil {
			last = md.Sequence.Stream
		}
	}
	// Nothing announces an ack floor; a short poll is the only way to see it move.
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("raw baseline: consumer info: %w", err)
		}
		if info.AckFloor.Stream >= last {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// FetchOneDoubleAck reads the first n messages through a new durable consumer the way
// remediator's worker did before issue 14: one Fetch(1) per message, each acknowledged
// with a double ack (the server confirms it).
func (r *RawBaseline) FetchOneDoubleAck(ctx context.Context, n int) error {
	cons, err := r.consumer(ctx, "fetch1")
	if err != nil {
		return err
	}
	for got := 0; got < n; {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("raw baseline: fetch: %w", err)
		}
		for msg := range batch.Messages() {
			if err := msg.DoubleAck(ctx); err != nil {
				return fmt.Errorf("raw baseline: double ack: %w", err)
			}
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("raw baseline: fetch: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
	return nil
}

// consumer creates a durable pull consumer with explicit acks over the whole stream.
func (r *RawBaseline) consumer(ctx context.Context, name string) (jetstream.Consumer, error) {
	cons, err := r.js.CreateOrUpdateConsumer(ctx, r.stream, jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait: 30 * time.Second, MaxAckPending: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("raw baseline: create consumer %s: %w", name, err)
	}
	return cons, nil
}

// Stream is the name of the baseline's stream.
func (r *RawBaseline) Stream() string { return r.stream }

// Close deletes the baseline's stream and closes its connection.
func (r *RawBaseline) Close(ctx context.Context) error {
	err := r.js.DeleteStream(ctx, r.stream)
	r.b.Close()
	if err != nil {
		return streamErr("delete", r.stream, err)
	}
	return nil
}
