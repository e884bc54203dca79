package broker_test

import (
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

// A doorbell rings with the subject of every message published on its subjects, while the
// stream still stores the message for a consumer; after stop it rings no more.
func TestDoorbellRingsForEveryPublish(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	rings := make(chan string, 4)
	stop, err := b.Doorbell(ctx, broker.SubjectsDispatch, func(subject string) { rings <- subject })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "remediation.dispatch.f.high", []byte(`{}`), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-rings:
		if got != "remediation.dispatch.f.high" {
			t.Errorf("rang for %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ring for a published job")
	}
	info, err := b.StreamInfo(ctx, broker.StreamDispatch, false)
	if err != nil || info.Messages != 1 {
		t.Errorf("the stream holds %d messages (%v); a doorbell must not take the job", info.Messages, err)
	}
	stop()
	if _, err := b.Publish(ctx, "remediation.dispatch.f.low", []byte(`{}`), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	// The publish's acknowledgement came after the server routed the message: a ring would
	// be on its way by now, and none comes after stop.
	select {
	case got := <-rings:
		t.Errorf("rang for %q after stop", got)
	default:
	}
}
