package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// maxDeliveriesSubject is where JetStream announces a message that reached
// its consumer's MaxDeliver: …MAX_DELIVERIES.<stream>.<consumer>.
const maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"

// maxDeliveriesQueue makes the replicas of a deployment share the advisories:
// each one reaches one replica, so an alert counts each message once.
const maxDeliveriesQueue = "remediator-max-deliveries"

// maxDeliveriesAdvisory is the JSON body of the advisory
// (io.nats.jetstream.advisory.v1.max_deliver).
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

// advisoryFlushTimeout bounds the round trip that confirms the advisory subscription.
const advisoryFlushTimeout = 5 * time.Second

// WatchMaxDeliveries calls fn for every message that reached its consumer's
// [ConsumerConfig.MaxDeliver], on any stream of the account, until ctx ends;
// it then returns nil. Such a message is no longer delivered but stays in its
// stream (at streamSeq), so the caller should alert on it. fn runs on one
// goroutine, in order.
//
// Advisories are plain NATS messages: one sent while no replica is connected
// is lost. Replicas share them through a queue group, so each advisory reaches
// one of them. The NATS user needs permission to subscribe to
// $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>. WatchMaxDeliveries returns an
// error if it cannot subscribe or the connection is closed under it.
func (b *Broker) WatchMaxDeliveries(ctx context.Context, fn func(stream, consumer string, streamSeq uint64, deliveries int)) error {
	ch := make(chan *nats.Msg, 64)
	sub, err := b.nc.ChanQueueSubscribe(maxDeliveriesSubject, maxDeliveriesQueue, ch)
	if err != nil {
		return fmt.Errorf("watch max-deliveries advisories: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Make sure the server has the subscription before waiting on it. The flush gets its own
	// deadline: ctx is the watch's lifetime and usually has none, which FlushWithContext refuses.
	fctx, cancel := context.WithTimeout(ctx, advisoryFlushTimeout)
	err = b.nc.FlushWithContext(fctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("watch max-deliveries advisories: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.closed:
			return errors.New("watch max-deliveries advisories: the NATS connection is closed")
		case m := <-ch:
			var adv maxDeliveriesAdvisory
			if err := json.Unmarshal(m.Data, &adv); err != nil {
				b.logger.WarnContext(ctx, "unreadable max-deliveries advisory", "subject", m.Subject, "error", err)
				continue
			}
			fn(adv.Stream, adv.Consumer, adv.StreamSeq, adv.Deliveries)
		}
	}
}
