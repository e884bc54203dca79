package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/internal/testwait"
)

// consumerConfig is a valid consumer configuration with the service's
// settings (AckWait 30s, MaxDeliver 10, MaxAckPending 1000).
func consumerConfig(stream, durable string, filters ...string) broker.ConsumerConfig {
	return broker.ConsumerConfig{Stream: stream, Durable: durable, FilterSubjects: filters,
		AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 1000}
}

func newConsumer(t *testing.T, b *broker.Broker, durable string, filters ...string) *broker.Consumer {
	t.Helper()
	c, err := b.Consumer(testCtx(t), consumerConfig(broker.StreamEvents, durable, filters...))
	if err != nil {
		t.Fatalf("Consumer(%s): %v", durable, err)
	}
	return c
}

func fetchOne(t *testing.T, c *broker.Consumer) *broker.Message {
	t.Helper()
	msgs, err := c.Fetch(testCtx(t), 1, 10*time.Second)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Fetch returned %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func TestFetchAck(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	ack := mustPublish(t, b, "remediation.events.itp", "risk")
	c := newConsumer(t, b, "intake")
	if c.Name() != "intake" {
		t.Fatalf("Name() = %q", c.Name())
	}

	m := fetchOne(t, c)
	if m.Subject() != "remediation.events.itp" || string(m.Data()) != "risk" {
		t.Fatalf("got %s %q", m.Subject(), m.Data())
	}
	if m.Delivered() != 1 || m.StreamSequence() != ack.Sequence {
		t.Fatalf("Delivered() = %d, StreamSequence() = %d; want 1, %d", m.Delivered(), m.StreamSequence(), ack.Sequence)
	}
	if m.Published().IsZero() || time.Since(m.Published()) > time.Minute {
		t.Fatalf("Published() = %v", m.Published())
	}
	if n, err := c.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("Pending before ack = %d, %v; want 1", n, err)
	}
	if err := m.Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	// A plain ack: the server takes it on its own time, and then nothing is pending.
	testwait.Until(t, "the ack taken", func() bool {
		n, err := c.Pending(ctx)
		return err == nil && n == 0
	})
	msgs, err := c.Fetch(ctx, 10, 100*time.Millisecond)
	if err != nil || msgs != nil {
		t.Fatalf("Fetch after ack = %v, %v; want nil, nil", msgs, err)
	}
}

func TestFetchHeadersAreACopy(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	if _, err := b.Publish(testCtx(t), "remediation.events.ispm", []byte("x"),
		broker.PublishOptions{Header: map[string][]string{"K": {"v"}}}); err != nil {
		t.Fatal(err)
	}
	m := fetchOne(t, newConsumer(t, b, "hdr"))
	h := m.Headers()
	h["K"][0] = "changed"
	if got := m.Headers()["K"][0]; got != "v" {
		t.Fatalf("header after modifying the copy = %q, want v", got)
	}
}

func TestNakWithDelayRedelivers(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ack := mustPublish(t, b, "remediation.events.ispm", "retry me")
	c := newConsumer(t, b, "nak")

	first := fetchOne(t, c)
	nakAt := time.Now()
	const delay = 300 * time.Millisecond
	if err := first.Nak(delay); err != nil {
		t.Fatalf("Nak: %v", err)
	}
	again := fetchOne(t, c)
	if since := time.Since(nakAt); since < delay-50*time.Millisecond {
		t.Fatalf("redelivered after %s, before the %s delay", since, delay)
	}
	if again.Delivered() != 2 || again.StreamSequence() != ack.Sequence {
		t.Fatalf("redelivery: Delivered() = %d, seq %d; want 2, %d", again.Delivered(), again.StreamSequence(), ack.Sequence)
	}
	if err := again.Ack(testCtx(t)); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestTermStopsRedelivery(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	mustPublish(t, b, "remediation.events.ispm", "poison")
	c := newConsumer(t, b, "term")

	m := fetchOne(t, c)
	if err := m.InProgress(); err != nil {
		t.Fatalf("InProgress: %v", err)
	}
	if err := m.Term("invalid payload"); err != nil {
		t.Fatalf("Term: %v", err)
	}
	testwait.Until(t, "the term to be recorded", func() bool {
		n, err := c.Pending(ctx)
		return err == nil && n == 0
	})
	if err := m.Nak(0); err == nil {
		t.Fatal("Nak after Term succeeded, want an already-acknowledged error")
	}
	msgs, err := c.Fetch(ctx, 1, 300*time.Millisecond)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Fetch after Term = %d messages, %v; want none", len(msgs), err)
	}
}

func TestFetchEmptyReturnsNilAfterWait(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	c := newConsumer(t, b, "empty")

	const wait = 400 * time.Millisecond
	start := time.Now()
	msgs, err := c.Fetch(testCtx(t), 10, wait)
	took := time.Since(start)
	if err != nil || msgs != nil {
		t.Fatalf("Fetch = %v, %v; want nil, nil", msgs, err)
	}
	if took < wait/2 || took > wait+2*time.Second {
		t.Fatalf("Fetch took %s with wait %s", took, wait)
	}

	start = time.Now()
	msgs, err = c.Fetch(testCtx(t), 10, 0)
	if err != nil || msgs != nil || time.Since(start) > time.Second {
		t.Fatalf("Fetch with no wait = %v, %v after %s; want nil, nil at once", msgs, err, time.Since(start))
	}
}

func TestFetchCancelStopsPromptly(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	c := newConsumer(t, b, "cancel")

	ctx, cancel := context.WithCancel(testCtx(t))
	type result struct {
		msgs []*broker.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := c.Fetch(ctx, 10, time.Minute)
		done <- result{msgs, err}
	}()
	// Cancel once the pull request is waiting on the server.
	testwait.Until(t, "the pull request to wait", func() bool {
		infos, err := b.ConsumerInfos(testCtx(t), broker.StreamEvents)
		return err == nil && len(infos) == 1 && infos[0].NumWaiting > 0
	})
	cancelled := time.Now()
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) || r.msgs != nil {
			t.Fatalf("Fetch = %v, %v; want nil, context.Canceled", r.msgs, r.err)
		}
		if d := time.Since(cancelled); d > time.Second {
			t.Fatalf("Fetch returned %s after cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Fetch did not return after its context was cancelled")
	}
}

func TestFetchReturnsFirstArrivalWithoutWaitingForBatch(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	c := newConsumer(t, b, "first")

	done := make(chan []*broker.Message, 1)
	go func() {
		msgs, err := c.Fetch(testCtx(t), 10, 20*time.Second)
		if err != nil {
			t.Errorf("Fetch: %v", err)
		}
		done <- msgs
	}()
	testwait.Until(t, "the pull request to wait", func() bool {
		infos, err := b.ConsumerInfos(testCtx(t), broker.StreamEvents)
		return err == nil && len(infos) == 1 && infos[0].NumWaiting > 0
	})
	mustPublish(t, b, "remediation.events.ispm", "late")
	select {
	case msgs := <-done:
		if len(msgs) != 1 || string(msgs[0].Data()) != "late" {
			t.Fatalf("Fetch returned %d messages, want the one published", len(msgs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Fetch waited for a full batch instead of returning the first message")
	}
}

func TestFetchNeverTakesMoreThanAsked(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	for i := range 5 {
		mustPublish(t, b, "remediation.events.ispm", fmt.Sprint(i))
	}
	c := newConsumer(t, b, "bounded")

	msgs, err := c.Fetch(ctx, 2, time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Fetch(2) = %d messages, %v", len(msgs), err)
	}
	infos, err := b.ConsumerInfos(ctx, broker.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].NumAckPending != 2 || infos[0].NumPending != 3 {
		t.Fatalf("after Fetch(2): ack pending %d, pending %d; want 2 and 3", infos[0].NumAckPending, infos[0].NumPending)
	}
	rest, err := c.Fetch(ctx, 10, time.Second)
	if err != nil || len(rest) != 3 {
		t.Fatalf("Fetch(10) = %d messages, %v; want the 3 left", len(rest), err)
	}
	for i, m := range append(msgs, rest...) {
		if string(m.Data()) != fmt.Sprint(i) {
			t.Fatalf("message %d = %q, out of order", i, m.Data())
		}
	}
}

func TestConsumerFilterAndDeletedConsumer(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	mustPublish(t, b, "remediation.events.ispm", "ispm")
	mustPublish(t, b, "remediation.events.itp", "itp")
	c := newConsumer(t, b, "itp-only", "remediation.events.itp")
	m := fetchOne(t, c)
	if m.Subject() != "remediation.events.itp" {
		t.Fatalf("filtered consumer got %s", m.Subject())
	}

	_, err := b.Consumer(ctx, consumerConfig("NOPE", "x"))
	if !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("Consumer on a missing stream: err = %v, want ErrStreamNotFound", err)
	}
	_, err = b.Consumer(ctx, consumerConfig(broker.StreamEvents, "a.b"))
	if err == nil {
		t.Fatal("Consumer accepted a durable name with a dot")
	}
}

func TestDispatchWorkQueueRemovesAckedJobs(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	mustPublish(t, b, "remediation.dispatch.reset-mfa.high", "job")
	c, err := b.Consumer(ctx, consumerConfig(broker.StreamDispatch, "remediator-dispatch-reset-mfa", "remediation.dispatch.reset-mfa.>"))
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	msgs, err := c.Fetch(ctx, 5, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Fetch = %d, %v", len(msgs), err)
	}
	if err := msgs[0].Ack(ctx); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	info, err := b.StreamInfo(ctx, broker.StreamDispatch, false)
	if err != nil || info.Messages != 0 {
		t.Fatalf("dispatch stream holds %d messages after the ack (%v), want 0", info.Messages, err)
	}
	_, err = b.Consumer(ctx, consumerConfig(broker.StreamDispatch, "overlap", "remediation.dispatch.>"))
	if err == nil {
		t.Fatal("a second, overlapping consumer on the work queue was accepted")
	}
}

// A dispatch consumer moved from file to memory state (an upgrade to the default) is replaced,
// not refused, and the messages its predecessor had delivered but not acknowledged are
// delivered again: nothing waiting in the work-queue stream is lost.
func TestConsumerStateMovedToMemoryDeliversUnackedAgain(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	for i := range 3 {
		mustPublish(t, b, "remediation.dispatch.moved.high", fmt.Sprint(i))
	}
	cfg := consumerConfig(broker.StreamDispatch, "moved", "remediation.dispatch.moved.high")
	onFile, err := b.Consumer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	held, err := onFile.Fetch(ctx, 2, time.Second)
	if err != nil || len(held) != 2 {
		t.Fatalf("Fetch = %d, %v", len(held), err)
	}
	if err := held[0].Ack(ctx); err != nil { // one done; one delivered and not acknowledged
		t.Fatal(err)
	}

	cfg.StateInMemory = true
	inMemory, err := b.Consumer(ctx, cfg)
	if err != nil {
		t.Fatalf("Consumer with its state moved to memory: %v", err)
	}
	var got []string
	testwait.Until(t, "the two unacknowledged messages", func() bool {
		msgs, err := inMemory.Fetch(ctx, 10, 100*time.Millisecond)
		if err != nil {
			return false
		}
		for _, m := range msgs {
			got = append(got, string(m.Data()))
			_ = m.Ack(ctx)
		}
		return len(got) >= 2
	})
	if len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("the replaced consumer delivered %v; want [1 2] (the acknowledged one gone, the held one again)", got)
	}
}
