package broker_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

func TestEmbeddedRestartKeepsStreamsAndMessages(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()

	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	b, err := broker.Connect(ctx, brokertest.ConnConfig(srv.ClientURL()), nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	for _, d := range []string{"one", "two", "three"} {
		mustPublish(t, b, "remediation.dlq.invalid", d)
	}
	if err := b.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	srv2, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err != nil {
		t.Fatalf("StartEmbedded again: %v", err)
	}
	t.Cleanup(func() { _ = srv2.Shutdown(context.Background()) })
	b2, err := broker.Connect(ctx, brokertest.ConnConfig(srv2.ClientURL()), nil)
	if err != nil {
		t.Fatalf("Connect again: %v", err)
	}
	t.Cleanup(b2.Close)
	if err := b2.StreamsPresent(ctx); err != nil {
		t.Fatalf("StreamsPresent after restart: %v", err)
	}
	info, err := b2.StreamInfo(ctx, broker.StreamDLQ, false)
	if err != nil {
		t.Fatalf("StreamInfo: %v", err)
	}
	if info.Messages != 3 {
		t.Fatalf("DLQ has %d messages after restart, want 3", info.Messages)
	}
	m, err := b2.GetMessage(ctx, broker.StreamDLQ, 2)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if string(m.Data) != "two" {
		t.Fatalf("message 2 = %q, want %q", m.Data, "two")
	}
}

func TestEmbeddedPortInUse(t *testing.T) {
	t.Parallel()
	first := brokertest.Server(t)
	u, err := url.Parse(first.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = broker.StartEmbedded(testCtx(t), broker.EmbeddedConfig{Port: port, StoreDir: t.TempDir()}, nil)
	if err == nil {
		t.Fatal("StartEmbedded on a used port succeeded")
	}
	want := net.JoinHostPort("127.0.0.1", u.Port()) + " is already in use — is another remediator running? set nats.embedded.port or --nats-url"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\ndoes not contain %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s to report the port in use", d)
	}
}

func TestEmbeddedRequiresStoreDir(t *testing.T) {
	t.Parallel()
	_, err := broker.StartEmbedded(testCtx(t), broker.EmbeddedConfig{Port: -1}, nil)
	if err == nil || !strings.Contains(err.Error(), "StoreDir is required") {
		t.Fatalf("err = %v, want StoreDir is required", err)
	}
}

// Two embedded servers on one store directory lose data (issue 11, defect
// 9): the second start must fail before touching the store, naming the
// holder, and succeed once the first has shut down.
func TestEmbeddedStoreDirIsLocked(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	first, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err != nil {
		t.Fatalf("first StartEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = first.Shutdown(context.Background()) })

	_, err = broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err == nil {
		t.Fatal("a second StartEmbedded on the same store directory succeeded")
	}
	for _, want := range []string{"in use by pid " + strconv.Itoa(os.Getpid()), first.ClientURL(), dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}

	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	again, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: dir}, nil)
	if err != nil {
		t.Fatalf("StartEmbedded after the first shut down: %v", err)
	}
	if err := again.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestEmbeddedRequiresPort(t *testing.T) {
	t.Parallel()
	_, err := broker.StartEmbedded(testCtx(t), broker.EmbeddedConfig{StoreDir: t.TempDir()}, nil)
	if err == nil || !strings.Contains(err.Error(), "Port 0") {
		t.Fatalf("err = %v, want Port 0 refused", err)
	}
}
