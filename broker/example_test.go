package broker_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/remediator/remediator/broker"
)

// A whole round trip on an embedded server: provision the streams, publish
// an event with a de-duplication id, fetch it with a durable consumer and
// acknowledge it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "broker-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	b, err := broker.Connect(ctx, broker.ConnConfig{URL: srv.ClientURL(), ConnectTimeout: 5 * time.Second, MaxReconnects: -1}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Drain(context.Background())
	if err := b.Provision(ctx, broker.StreamsConfig{MaxAge: 7 * 24 * time.Hour, Replicas: 1, DuplicateWindow: 2 * time.Minute, MaxBytes: -1}); err != nil {
		log.Fatal(err)
	}

	for range 2 { // the second publish is recognised as a duplicate
		ack, err := b.Publish(ctx, "remediation.events.itp", []byte(`{"risk":"HIGH"}`), broker.PublishOptions{MsgID: "evt-42"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("stored in %s as #%d, duplicate: %v\n", ack.Stream, ack.Sequence, ack.Duplicate)
	}

	c, err := b.Consumer(ctx, broker.ConsumerConfig{
		Stream: broker.StreamEvents, Durable: "remediator-intake",
		AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 1000,
	})
	if err != nil {
		log.Fatal(err)
	}
	msgs, err := c.Fetch(ctx, 10, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("%s %s delivery %d\n", m.Subject(), m.Data(), m.Delivered())
		if err := m.Ack(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Nothing else waits: the duplicate was never stored, the event is acknowledged.
	more, err := c.Fetch(ctx, 10, 200*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("more:", len(more))
	// Output:
	// stored in REMEDIATION_EVENTS as #1, duplicate: false
	// stored in REMEDIATION_EVENTS as #1, duplicate: true
	// remediation.events.itp {"risk":"HIGH"} delivery 1
	// more: 0
}
