package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Doorbell calls ring with the subject of every message published on subject (wildcards
// allowed) from the moment it returns until stop is called: a plain NATS subscription beside
// the stream that stores the same messages, so that a consumer need not poll JetStream while
// it has nothing to do. It is a hint, not a delivery: the message itself is still taken from
// its stream with [Consumer.Fetch], a ring may come an instant before the stream has stored
// the message, and rings are lost while the connection is down or when ring falls far behind
// (the subscription drops what it cannot buffer). So a caller also polls, slowly, for what no
// ring announced. ring runs on the subscription's goroutine and must not block.
func (b *Broker) Doorbell(ctx context.Context, subject string, ring func(subject string)) (stop func(), err error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) { ring(m.Subject) })
	if err != nil {
		return nil, fmt.Errorf("doorbell on %s: %w", subject, err)
	}
	// A doorbell only needs subjects: let it buffer many without ever slowing the connection.
	_ = sub.SetPendingLimits(doorbellPendingMsgs, doorbellPendingBytes)
	// The server must have the subscription before the caller relies on it (its first poll).
	fctx, cancel := context.WithTimeout(ctx, doorbellFlushTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("doorbell on %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

const (
	doorbellPendingMsgs  = 1 << 16
	doorbellPendingBytes = 256 << 20
	doorbellFlushTimeout = 5 * time.Second
)
