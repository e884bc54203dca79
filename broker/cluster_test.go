package broker_test

import (
	"fmt"
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

// A publish while the stream elects a new leader is sent again (same
// Nats-Msg-Id) until the stream answers, and stored once.
func TestPublishSurvivesTheLossOfTheStreamLeader(t *testing.T) {
	t.Parallel()
	c := brokertest.Cluster(t, 3)
	ctx := testCtx(t)
	b, err := broker.Connect(ctx, brokertest.ConnConfig(c.ClientURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	streams := brokertest.Streams()
	streams.Replicas = 3
	if err := b.Provision(ctx, streams); err != nil {
		t.Fatalf("Provision R3: %v", err)
	}
	if _, err := b.Publish(ctx, "remediation.dlq.x", []byte("before"), broker.PublishOptions{MsgID: "before"}); err != nil {
		t.Fatalf("Publish before: %v", err)
	}

	lost := c.ShutdownStreamLeader(broker.StreamDLQ)
	for i := range 5 {
		ack, err := b.Publish(ctx, "remediation.dlq.x", fmt.Appendf(nil, "during %d", i), broker.PublishOptions{MsgID: fmt.Sprintf("during-%d", i)})
		if err != nil {
			t.Fatalf("Publish %d after the stream leader (server %d) stopped: %v", i, lost, err)
		}
		if ack.Duplicate {
			t.Fatalf("Publish %d stored as a duplicate", i)
		}
	}
	c.Restart(lost)
	c.WaitMetaLeader()
	for _, stream := range []string{broker.StreamEvents, broker.StreamDispatch, broker.StreamStatus, broker.StreamDLQ, broker.StreamAudit} {
		c.WaitStreamCurrent(stream)
	}
	info, err := b.StreamInfo(ctx, broker.StreamDLQ, false)
	if err != nil {
		t.Fatal(err)
	}
	if info.Messages != 6 {
		t.Fatalf("%s holds %d messages, want 6 (each publish once)", broker.StreamDLQ, info.Messages)
	}
}
