package broker_test

import (
	"errors"
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

func TestPublishDeduplicatesByMsgID(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	opts := broker.PublishOptions{MsgID: "evt-1", Header: map[string][]string{"Traceparent": {"00-abc-def-01"}}}

	first, err := b.Publish(ctx, "remediation.events.ispm", []byte(`{"id":1}`), opts)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if first.Duplicate || first.Stream != broker.StreamEvents || first.Sequence != 1 {
		t.Fatalf("first PubAck = %+v, want stream %s seq 1, not duplicate", first, broker.StreamEvents)
	}
	second, err := b.Publish(ctx, "remediation.events.ispm", []byte(`{"id":1}`), opts)
	if err != nil {
		t.Fatalf("Publish again: %v", err)
	}
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second PubAck = %+v, want a duplicate of seq %d", second, first.Sequence)
	}
	m, err := b.GetMessage(ctx, broker.StreamEvents, 1)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if got := m.Header[broker.HeaderMsgID]; len(got) != 1 || got[0] != "evt-1" {
		t.Fatalf("stored %s = %v, want [evt-1]", broker.HeaderMsgID, got)
	}
	if got := m.Header["Traceparent"]; len(got) != 1 || got[0] != "00-abc-def-01" {
		t.Fatalf("stored Traceparent = %v", got)
	}
}

func TestPublishWithoutStream(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	_, err := b.Publish(testCtx(t), "nowhere.at.all", []byte("x"), broker.PublishOptions{})
	if !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("err = %v, want ErrStreamNotFound", err)
	}
}
