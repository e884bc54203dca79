package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
)

// TestConnectNATSGivesUpAfterAttempts: nats.connectAttempts bounds the first connection's
// retries; each failure but the last is reported to readiness.
func TestConnectNATSGivesUpAfterAttempts(t *testing.T) {
	t.Parallel()
	calls := 0
	fail := func(context.Context, broker.ConnConfig, *slog.Logger) (*broker.Broker, error) {
		calls++
		return nil, errors.New("connection refused")
	}
	var notified []error
	_, err := connectNATS(t.Context(), fail, broker.ConnConfig{}, 3, slog.New(slog.DiscardHandler), func(e error) { notified = append(notified, e) })
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("err = %v, want it to say it gave up after 3 attempts", err)
	}
	if calls != 3 || len(notified) != 2 {
		t.Errorf("%d attempts, %d readiness reports; want 3 and 2", calls, len(notified))
	}
}

// TestConnectNATSStopsWithTheContext: waiting forever for NATS still ends when the service is
// stopped.
func TestConnectNATSStopsWithTheContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	fail := func(context.Context, broker.ConnConfig, *slog.Logger) (*broker.Broker, error) {
		return nil, errors.New("connection refused")
	}
	_, err := connectNATS(ctx, fail, broker.ConnConfig{}, config.Forever, slog.New(slog.DiscardHandler), func(error) { cancel() })
	if err == nil || !strings.Contains(err.Error(), "stopped while waiting for NATS") {
		t.Errorf("err = %v, want it to say it stopped while waiting", err)
	}
}

type fixedPayload int64

func (f fixedPayload) MaxPayload() int64 { return int64(f) }

// TestCheckMaxPayload: the start refuses a server whose max_payload cannot carry the records
// built around an event of limits.maxEventBytes, naming both values (PLAN decision 1).
func TestCheckMaxPayload(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte("limits: {maxEventBytes: 262144}\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	need := int64(262144*4/3 + 65536)
	if err := checkMaxPayload(cfg, fixedPayload(1<<20)); err != nil {
		t.Errorf("NATS' default 1 MiB max_payload refused: %v", err)
	}
	if err := checkMaxPayload(cfg, fixedPayload(need)); err != nil {
		t.Errorf("max_payload exactly %d refused: %v", need, err)
	}
	err = checkMaxPayload(cfg, fixedPayload(need-1))
	for _, want := range []string{"limits.maxEventBytes 262144", "at least 415061", "max_payload is 415060"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("max_payload %d: err = %v; want it to say %q", need-1, err, want)
		}
	}
}

// TestStoreLockNamesItsHolder: the lock file says who holds the directory, and is free again
// once released.
func TestStoreLockNamesItsHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := lockStore(dir, "pid 1 on test-host")
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockStore(dir, "pid 2")
	var locked *errStoreLocked
	if !errors.As(err, &locked) || locked.holder != "pid 1 on test-host" || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("second lock: %v; want errStoreLocked naming pid 1 on test-host", err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := lockStore(dir, "pid 3")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	_ = again.Release()
}
