package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// admin opens a plain JetStream connection to url for what a test does behind remediator's
// back (as an operator or a fault would), so that test packages need not import nats.go.
func admin(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("brokertest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	return js
}

// DeleteConsumer deletes a durable consumer of stream at url, under whoever is using it.
func DeleteConsumer(t testing.TB, url, stream, consumer string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin(t, url).DeleteConsumer(ctx, stream, consumer); err != nil {
		t.Fatalf("brokertest: delete consumer %s of %s: %v", consumer, stream, err)
	}
}

// ConsumerExists reports whether stream at url has the durable consumer.
func ConsumerExists(t testing.TB, url, stream, consumer string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := admin(t, url).Consumer(ctx, stream, consumer)
	return err == nil
}

// StreamNames lists the streams of the account at url.
func StreamNames(ctx context.Context, t testing.TB, url string) ([]string, error) {
	t.Helper()
	var names []string
	lister := admin(t, url).StreamNames(ctx)
	for name := range lister.Name() {
		names = append(names, name)
	}
	return names, lister.Err()
}
