// Package brokertest runs a real, in-process JetStream server for tests of
// code that uses package broker. Each call starts its own server on a random
// port with storage in t.TempDir(), so tests stay hermetic and can run in
// parallel; everything is stopped in t.Cleanup.
package brokertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"go.uber.org/goleak"
)

// startTimeout bounds server start-up, connection and provisioning in tests.
const startTimeout = 30 * time.Second

// Server starts an embedded JetStream server on a random port with storage
// in t.TempDir(), shut down in t.Cleanup. Its log lines are discarded.
func Server(t testing.TB) *broker.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("brokertest: start embedded NATS: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("brokertest: shut down embedded NATS: %v", err)
		}
	})
	return srv
}

// Connect starts [Server], connects to it, provisions the five streams with
// the default [broker.StreamsConfig] and returns the broker, closed in
// t.Cleanup (before the server stops).
func Connect(t testing.TB) *broker.Broker {
	t.Helper()
	srv := Server(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	b, err := broker.Connect(ctx, broker.ConnConfig{URL: srv.ClientURL(), Name: "brokertest"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("brokertest: connect: %v", err)
	}
	t.Cleanup(b.Close)
	if err := b.Provision(ctx, broker.StreamsConfig{}); err != nil {
		t.Fatalf("brokertest: provision streams: %v", err)
	}
	return b
}

// VerifyTestMain runs the tests, then fails the run if goroutines leaked. It allows a few
// seconds for what winds down on its own: a pull request of a closed connection keeps its
// reader until the pull's expiry plus one second (nats.go), and at most 500ms pulls are used.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := goleak.Find(opts...)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: goroutines still running 5s after the tests ended: %v\n", err)
				code = 1
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}
