package broker_test

import (
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

// TestRawBaselineConsumesEveryMessageAndCleansUp runs each phase of the raw baseline on a
// real server: every phase returns only once all n messages went through, and Close leaves
// no stream behind.
func TestRawBaselineConsumesEveryMessageAndCleansUp(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := brokertest.Server(t)
	rb, err := broker.NewRawBaseline(ctx, brokertest.ConnConfig(srv.ClientURL()), 1024, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	if err := rb.Publish(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := rb.ConsumeAck(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := rb.FetchOneDoubleAck(ctx, n); err != nil {
		t.Fatal(err)
	}
	b := brokertest.ConnectTo(t, srv.ClientURL())
	infos, err := b.ConsumerInfos(ctx, rb.Stream())
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range infos {
		if ci.NumPending != 0 || ci.NumAckPending != 0 {
			t.Errorf("consumer %s: %d pending, %d awaiting ack after the phase; want none", ci.Name, ci.NumPending, ci.NumAckPending)
		}
	}
	if len(infos) != 2 {
		t.Errorf("%d consumers, want the two phases'", len(infos))
	}
	if err := rb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StreamInfo(ctx, rb.Stream(), false); err == nil {
		t.Errorf("stream %s still there after Close", rb.Stream())
	}
}
