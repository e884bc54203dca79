package broker_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

// deleteConsumer removes a durable behind the broker's back, as an operator
// (nats consumer rm) or an inactive threshold would.
func deleteConsumer(t *testing.T, url, stream, durable string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(testCtx(t), stream, durable); err != nil {
		t.Fatalf("delete consumer %s: %v", durable, err)
	}
}

func TestFetchOnDeletedConsumerIsNotFoundAndRecreateRestoresIt(t *testing.T) {
	t.Parallel()
	srv := brokertest.Server(t)
	b := brokertest.ConnectTo(t, srv.ClientURL())
	ctx := testCtx(t)
	c := newConsumer(t, b, "deleted", "remediation.events.>")
	mustPublish(t, b, "remediation.events.itp", "waiting")
	deleteConsumer(t, srv.ClientURL(), broker.StreamEvents, "deleted")

	for _, wait := range []time.Duration{0, 200 * time.Millisecond} {
		msgs, err := c.Fetch(ctx, 5, wait)
		if !errors.Is(err, broker.ErrConsumerNotFound) {
			t.Fatalf("Fetch(wait %s) on a deleted consumer = %d messages, %v; want ErrConsumerNotFound", wait, len(msgs), err)
		}
	}
	if err := c.Recreate(ctx); err != nil {
		t.Fatalf("Recreate: %v", err)
	}
	m := fetchOne(t, c)
	if string(m.Data()) != "waiting" {
		t.Fatalf("after Recreate got %q, want the waiting message", m.Data())
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestPublishLargerThanMaxPayloadIsPayloadTooLarge(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	max := b.MaxPayload()
	if max <= 0 {
		t.Fatalf("MaxPayload = %d, want the server's max_payload", max)
	}
	_, err := b.Publish(testCtx(t), "remediation.dlq.x", bytes.Repeat([]byte("x"), int(max)+1), broker.PublishOptions{MsgID: "big"})
	if !errors.Is(err, broker.ErrPayloadTooLarge) {
		t.Fatalf("Publish of %d bytes = %v, want ErrPayloadTooLarge", max+1, err)
	}
	// Just under the limit (less room for the headers) is stored.
	if _, err := b.Publish(testCtx(t), "remediation.dlq.x", bytes.Repeat([]byte("x"), int(max)-1024), broker.PublishOptions{}); err != nil {
		t.Fatalf("Publish just under max_payload: %v", err)
	}
}

func TestOverlappingWorkQueueConsumerIsNamed(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	if _, err := b.Consumer(ctx, consumerConfig(broker.StreamDispatch, "a", "remediation.dispatch.a.>")); err != nil {
		t.Fatal(err)
	}
	_, err := b.Consumer(ctx, consumerConfig(broker.StreamDispatch, "all", "remediation.dispatch.>"))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("overlaps another consumer's")) {
		t.Fatalf("overlapping work-queue consumer: err = %v, want one saying it overlaps", err)
	}
}

func TestKVCompareAndSetErrorsOnReplicatedBucket(t *testing.T) {
	t.Parallel()
	c := brokertest.Cluster(t, 3)
	b := brokertest.ConnectTo(t, c.ClientURL())
	ctx := testCtx(t)
	kv, err := b.KeyValue(ctx, broker.KVConfig{Bucket: "cas", History: 1, Replicas: 3})
	if err != nil {
		t.Fatalf("KeyValue R3: %v", err)
	}
	rev, err := kv.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "k", []byte("2")); !errors.Is(err, broker.ErrKeyExists) {
		t.Fatalf("second Create on R3 = %v, want ErrKeyExists", err)
	}
	if _, err := kv.Update(ctx, "k", []byte("2"), rev+7); !errors.Is(err, broker.ErrRevisionMismatch) {
		t.Fatalf("Update with a stale revision on R3 = %v, want ErrRevisionMismatch", err)
	}
}
