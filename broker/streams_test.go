package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

func withMaxAge(d time.Duration) broker.StreamsConfig {
	cfg := brokertest.Streams()
	cfg.MaxAge = d
	return cfg
}

func memoryStreams() broker.StreamsConfig {
	cfg := withMaxAge(time.Hour)
	cfg.Storage = broker.StorageMemory
	return cfg
}

func TestProvisionIsIdempotent(t *testing.T) {
	t.Parallel()
	b, logs := connectLogged(t)
	ctx := testCtx(t)

	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("first Provision: %v", err)
	}
	if got := countLines(logs.take(), "stream created"); got != 5 {
		t.Fatalf("first Provision logged %d created streams, want 5", got)
	}
	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	out := logs.take()
	if got := countLines(out, "stream unchanged"); got != 5 {
		t.Fatalf("second Provision logged %d unchanged streams, want 5:\n%s", got, out)
	}
	if strings.Contains(out, "stream updated") || strings.Contains(out, "stream created") {
		t.Fatalf("second Provision changed something:\n%s", out)
	}
	if err := b.StreamsPresent(ctx); err != nil {
		t.Fatalf("StreamsPresent: %v", err)
	}
}

func TestProvisionUpdatesMaxAge(t *testing.T) {
	t.Parallel()
	b, logs := connectLogged(t)
	ctx := testCtx(t)

	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	logs.take()
	if err := b.Provision(ctx, withMaxAge(24*time.Hour)); err != nil {
		t.Fatalf("Provision with MaxAge 24h: %v", err)
	}
	out := logs.take()
	if got := countLines(out, "stream updated"); got != 5 {
		t.Fatalf("logged %d updated streams, want 5:\n%s", got, out)
	}
	if !strings.Contains(out, "max_age 168h0m0s → 24h0m0s") {
		t.Fatalf("update log does not show the max age change:\n%s", out)
	}
	if err := b.Provision(ctx, withMaxAge(24*time.Hour)); err != nil {
		t.Fatalf("Provision again: %v", err)
	}
	if got := countLines(logs.take(), "stream unchanged"); got != 5 {
		t.Fatalf("after the update, Provision with the same settings changed %d streams", 5-got)
	}
}

func TestProvisionRefusesStorageChange(t *testing.T) {
	t.Parallel()
	b, logs := connectLogged(t)
	ctx := testCtx(t)

	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	err := b.Provision(ctx, memoryStreams())
	var pe *broker.ProvisionError
	if !errors.As(err, &pe) {
		t.Fatalf("Provision with other storage: err = %v, want a *ProvisionError", err)
	}
	if pe.Stream != broker.StreamEvents || pe.Setting != "storage" || pe.Current != "file" || pe.Wanted != "memory" {
		t.Fatalf("ProvisionError = %+v, want stream %s, setting storage, file → memory", pe, broker.StreamEvents)
	}
	for _, want := range []string{broker.StreamEvents, broker.StreamDLQ, "storage", "nats stream rm " + broker.StreamEvents, `streams.storage to "file"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	// Nothing was changed, not even the max age.
	logs.take()
	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("Provision with the original settings: %v", err)
	}
	if got := countLines(logs.take(), "stream unchanged"); got != 5 {
		t.Fatal("a refused Provision changed streams")
	}
}

func TestProvisionValidates(t *testing.T) {
	t.Parallel()
	b, _ := connectLogged(t)
	err := b.Provision(testCtx(t), broker.StreamsConfig{Storage: "disk", MaxAge: time.Minute, DuplicateWindow: time.Hour, Replicas: 1, MaxBytes: -1})
	if err == nil {
		t.Fatal("Provision accepted an invalid configuration")
	}
	for _, want := range []string{`unknown storage "disk"`, "DuplicateWindow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestStreamsPresentNamesMissingStreams(t *testing.T) {
	t.Parallel()
	b, _ := connectLogged(t)
	err := b.StreamsPresent(testCtx(t))
	if !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("StreamsPresent before Provision: err = %v, want ErrStreamNotFound", err)
	}
	for _, name := range []string{broker.StreamEvents, broker.StreamDispatch, broker.StreamStatus, broker.StreamDLQ, broker.StreamAudit} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name the missing stream %s: %v", name, err)
		}
	}
}

func TestProvisionCreatesTheAuditStream(t *testing.T) {
	t.Parallel()
	b, _ := connectLogged(t)
	ctx := testCtx(t)
	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	ack := mustPublish(t, b, "remediation.audit.dlq.replay", `{"action":"dlq.replay"}`)
	if ack.Stream != broker.StreamAudit {
		t.Fatalf("an audit record was stored in %q, want %s", ack.Stream, broker.StreamAudit)
	}
	info, err := b.StreamInfo(ctx, broker.StreamAudit, false)
	if err != nil {
		t.Fatalf("StreamInfo(%s): %v", broker.StreamAudit, err)
	}
	if info.Messages != 1 {
		t.Fatalf("%s holds %d messages, want 1", broker.StreamAudit, info.Messages)
	}
}

// No hidden defaults (issue 11, defect 7): a zero configuration is refused
// with every missing field named.
func TestZeroConfigsAreRefusedNamingTheFields(t *testing.T) {
	t.Parallel()
	b, _ := connectLogged(t)
	ctx := testCtx(t)
	err := b.Provision(ctx, broker.StreamsConfig{})
	for _, field := range []string{"MaxAge", "Replicas", "DuplicateWindow", "MaxBytes"} {
		if !containsText(err, field) {
			t.Errorf("Provision(StreamsConfig{}): error does not name %s: %v", field, err)
		}
	}
	_, err = b.KeyValue(ctx, broker.KVConfig{Bucket: "x"})
	for _, field := range []string{"History", "Replicas"} {
		if !containsText(err, field) {
			t.Errorf("KeyValue without History and Replicas: error does not name %s: %v", field, err)
		}
	}
}
