package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

type maxDelivered struct {
	stream, consumer string
	seq              uint64
	deliveries       int
}

// A consumer's MaxDeliver reaches the server, and the advisory JetStream
// sends when a message exhausts it reaches WatchMaxDeliveries.
func TestMaxDeliverStopsRedeliveryAndIsAdvised(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	cfg := consumerConfig(broker.StreamEvents, "capped", "remediation.events.>")
	cfg.MaxDeliver = 2
	c, err := b.Consumer(ctx, cfg)
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}

	advised := make(chan maxDelivered, 16)
	// The watch lives as long as the worker: its context has no deadline.
	watchCtx, stop := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- b.WatchMaxDeliveries(watchCtx, func(stream, consumer string, seq uint64, deliveries int) {
			advised <- maxDelivered{stream, consumer, seq, deliveries}
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-watchDone; err != nil {
			t.Errorf("WatchMaxDeliveries: %v", err)
		}
	})

	// Advisories are plain NATS messages: one sent before the watch has
	// subscribed is lost. So exhaust fresh messages until one is advised.
	exhausted := map[uint64]bool{}
	for round := 1; ; round++ {
		ack := mustPublish(t, b, "remediation.events.itp", fmt.Sprintf("poison %d", round))
		for delivery := 1; delivery <= 2; delivery++ {
			m := fetchOne(t, c)
			if m.StreamSequence() != ack.Sequence || m.Delivered() != delivery {
				t.Fatalf("got #%d delivery %d, want #%d delivery %d", m.StreamSequence(), m.Delivered(), ack.Sequence, delivery)
			}
			if err := m.Nak(0); err != nil {
				t.Fatal(err)
			}
		}
		exhausted[ack.Sequence] = true
		// The server finds the message exhausted (and advises) when it would
		// deliver it a third time, that is on the next pull.
		if msgs, err := c.Fetch(ctx, 1, 300*time.Millisecond); err != nil || len(msgs) != 0 {
			t.Fatalf("after MaxDeliver, Fetch = %d messages, %v; want none", len(msgs), err)
		}
		select {
		case got := <-advised:
			if got.stream != broker.StreamEvents || got.consumer != "capped" || got.deliveries != 2 || !exhausted[got.seq] {
				t.Fatalf("advisory = %+v, want stream %s, consumer capped, 2 deliveries, one of sequences %v",
					got, broker.StreamEvents, exhausted)
			}
			return
		case <-time.After(5 * time.Second):
			if round == 5 {
				t.Fatal("no max-deliveries advisory for 5 exhausted messages")
			}
		}
	}
}

func TestConsumerConfigRequiresExplicitValues(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	_, err := b.Consumer(testCtx(t), broker.ConsumerConfig{Stream: broker.StreamEvents, Durable: "zero"})
	if err == nil {
		t.Fatal("Consumer with zero AckWait, MaxDeliver and MaxAckPending succeeded")
	}
	for _, field := range []string{"AckWait", "MaxDeliver", "MaxAckPending"} {
		if !containsText(err, field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
	cfg := consumerConfig(broker.StreamEvents, "tiny")
	cfg.AckWait = time.Millisecond
	if _, err := b.Consumer(testCtx(t), cfg); err == nil || !containsText(err, "AckWait") {
		t.Errorf("Consumer with AckWait 1ms: err = %v, want AckWait refused", err)
	}
}
