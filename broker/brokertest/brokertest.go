// Package brokertest runs real, in-process JetStream servers for tests of
// code that uses package broker. Each call starts its own server (or
// cluster) on random ports with storage in t.TempDir(), so tests stay
// hermetic and can run in parallel; everything is stopped in t.Cleanup.
//
// Package broker has no hidden defaults; [ConnConfig] and [Streams] give
// tests the settings the service would use.
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

// ConnConfig is a client configuration for url with the service's settings
// (5s connect timeout, reconnect forever), named "brokertest".
func ConnConfig(url string) broker.ConnConfig {
	return broker.ConnConfig{URL: url, Name: "brokertest", ConnectTimeout: 5 * time.Second, MaxReconnects: -1}
}

// Streams is the streams configuration the service uses by default (7 days,
// one replica, 2m duplicate window, unlimited size, file storage).
func Streams() broker.StreamsConfig {
	return broker.StreamsConfig{
		MaxAge: 7 * 24 * time.Hour, Replicas: 1, DuplicateWindow: 2 * time.Minute,
		MaxBytes: -1, Storage: broker.StorageFile,
	}
}

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

// Connect starts [Server], connects to it ([ConnConfig]), provisions the
// five streams ([Streams]) and returns the broker, closed in t.Cleanup
// (before the server stops).
func Connect(t testing.TB) *broker.Broker {
	t.Helper()
	srv := Server(t)
	return ConnectTo(t, srv.ClientURL())
}

// ConnectTo connects to url ([ConnConfig]), provisions the five streams
// ([Streams]) and returns the broker, closed in t.Cleanup.
func ConnectTo(t testing.TB, url string) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	b, err := broker.Connect(ctx, ConnConfig(url), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("brokertest: connect: %v", err)
	}
	t.Cleanup(b.Close)
	if err := b.Provision(ctx, Streams()); err != nil {
		t.Fatalf("brokertest: provision streams: %v", err)
	}
	return b
}

// VerifyTestMain runs the tests, then fails the run if goroutines leaked. A
// broker call ends every goroutine it starts before it returns, so nothing of
// package broker should remain; the short grace period is for what other
// libraries wind down after a test's Cleanup (HTTP keep-alives and the like).
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
