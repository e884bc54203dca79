package broker

import (
	"context"
	"errors"
	"github.com/remediator/remediator/internal/testwait"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func internalCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startInternal(t *testing.T, port int) *Embedded {
	t.Helper()
	srv, err := StartEmbedded(internalCtx(t), EmbeddedConfig{Port: port, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// MaxReconnects 0 means no reconnection (issue 11, defect 7): it used to
// become "forever", so a CLI command hung on a lost server instead of
// failing.
func TestMaxReconnectsZeroMeansNone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		maxReconnects int
		wantClosed    bool
	}{{0, true}, {-1, false}} {
		srv := startInternal(t, -1)
		b, err := Connect(internalCtx(t), ConnConfig{URL: srv.ClientURL(), ConnectTimeout: 5 * time.Second, MaxReconnects: tc.maxReconnects}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		if err := srv.Shutdown(internalCtx(t)); err != nil {
			t.Fatal(err)
		}
		testwait.Until(t, "the connection to notice the server is gone", func() bool { return !b.Connected() })
		if tc.wantClosed {
			testwait.Until(t, "the connection to close", b.nc.IsClosed)
		} else if !b.nc.IsReconnecting() {
			t.Errorf("MaxReconnects %d: connection is not reconnecting (closed: %v)", tc.maxReconnects, b.nc.IsClosed())
		}
	}
}

func TestConnConfigNamesMissingFields(t *testing.T) {
	t.Parallel()
	_, err := Connect(internalCtx(t), ConnConfig{URL: "nats://127.0.0.1:1", MaxReconnects: -2}, nil)
	for _, field := range []string{"ConnectTimeout", "MaxReconnects"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Connect with a zero ConnectTimeout and MaxReconnects -2: err = %v, want it to name %s", err, field)
		}
	}
}

// RetryConnect waits for a server that is not up yet (issue 11, defect 8).
func TestRetryConnectWaitsForTheServer(t *testing.T) {
	t.Parallel()
	// Until the server starts, its port belongs to a listener that hangs up
	// on every connection, so the test knows Connect has tried and failed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	cfg := ConnConfig{URL: "nats://" + l.Addr().String(), ConnectTimeout: time.Second, MaxReconnects: -1}
	hangUp := func() {
		conn, err := l.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}

	// Without RetryConnect, Connect fails at once.
	failed := make(chan error, 1)
	go func() {
		_, err := Connect(internalCtx(t), cfg, nil)
		failed <- err
	}()
	hangUp()
	if err := <-failed; err == nil {
		t.Fatal("Connect to a server that hung up succeeded")
	}

	// With it, Connect keeps trying until the server is there.
	cfg.RetryConnect = true
	type result struct {
		b   *Broker
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := Connect(internalCtx(t), cfg, nil)
		done <- result{b, err}
	}()
	hangUp() // the first attempt fails…
	l.Close()
	startInternal(t, port) // …and a later one finds the server.
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect with RetryConnect: %v", r.err)
	}
	defer r.b.Close()
	if !r.b.Connected() {
		t.Fatal("not connected")
	}

	// It gives up when ctx ends.
	ctx, cancel := context.WithTimeout(internalCtx(t), 500*time.Millisecond)
	defer cancel()
	cfg.URL = "nats://127.0.0.1:1"
	if _, err := Connect(ctx, cfg, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect with RetryConnect after ctx ended: err = %v, want context.DeadlineExceeded", err)
	}
}

// A publish may be repeated when it surely was not stored (no responders),
// or when its Nats-Msg-Id makes a repeat harmless; never when it was refused.
func TestRetryPublishDecision(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		err      error
		hasMsgID bool
		want     bool
	}{
		{"ack timed out, with msg id", nats.ErrTimeout, true, true},
		{"ack timed out, without msg id", nats.ErrTimeout, false, false},
		{"attempt deadline, with msg id", context.DeadlineExceeded, true, true},
		{"no responders, without msg id", nats.ErrNoResponders, false, true},
		{"no stream response", jetstream.ErrNoStreamResponse, false, true},
		{"too large", nats.ErrMaxPayload, true, false},
		{"stream max msg size", jetstream.ErrStreamMessageExceedsMaximum, true, false},
		{"cancelled", context.Canceled, true, false},
		{"cluster not available", &jetstream.APIError{ErrorCode: codeClusterNotAvail, Code: 503}, false, true},
		{"other API error", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeBadRequest, Code: 400}, true, false},
	} {
		if got := retryPublish(tc.err, tc.hasMsgID); got != tc.want {
			t.Errorf("%s: retryPublish = %v, want %v", tc.name, got, tc.want)
		}
	}
}
