package worker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/status"
)

// unroutedWorker is a fake-broker worker with the real validator and the shipped policy, so
// that examples/itp-low-risk.json reaches Okta's log-only catch-all.
func unroutedWorker(t *testing.T, b *fakeBroker) *Worker {
	t.Helper()
	v, err := schema.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	return fakeWorker(t, b, func(c *Config) { c.Validator, c.Router = v, policy.New(cfg) })
}

func lowRiskDelivery(t *testing.T, delivered int, last bool) *Delivery {
	t.Helper()
	data, err := os.ReadFile("../examples/itp-low-risk.json")
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMsg(event.SubjectITP, data, delivered, 42)
	return &Delivery{Msg: m, Subject: m.subject, Data: data, Delivered: delivered, LastDelivery: last, Sequence: 42, Stage: "intake"}
}

// A redelivered unrouted event (its ack was lost) publishes its skipped status under the same
// message id, so JetStream keeps one; the last allowed delivery is skipped too, not turned into
// retries_exhausted.
func TestSkippedStatusIsKeyedByEventSequence(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	w := unroutedWorker(t, b)
	for _, d := range []*Delivery{lowRiskDelivery(t, 1, false), lowRiskDelivery(t, 2, false), lowRiskDelivery(t, 20, true)} {
		if res := w.intakeStep().Handle(context.Background(), d); res.Err != nil || !res.Recorded {
			t.Fatalf("delivery %d: result %+v; want recorded, no error (acked)", d.Delivered, res)
		}
	}
	pubs := b.publishedTo(status.SubjectPrefix)
	if len(pubs) != 3 {
		t.Fatalf("%d status publishes, want one per delivery", len(pubs))
	}
	for _, p := range pubs {
		if p.subject != status.Skipped.Subject() || p.msgID != pubs[0].msgID || p.msgID != "status:event:42:skipped:0" {
			t.Errorf("status on %s with msg id %q; want %s, each with msg id status:event:42:skipped:0", p.subject, p.msgID, status.Skipped.Subject())
		}
	}
	var r status.Record
	if err := json.Unmarshal(pubs[0].data, &r); err != nil {
		t.Fatal(err)
	}
	if r.EventID != "2b1d7c55-0e8e-4a5f-bb11-7a3c0e9d4f21" || r.EventKind != string(event.KindEntityRisk) || r.Why == "" {
		t.Errorf("skipped status %+v; want the event and why", r)
	}
	if dls := b.publishedTo(status.DLQSubjectPrefix); len(dls) != 0 {
		t.Errorf("%d dead letters, want none", len(dls))
	}
}

// If the skipped status cannot be stored, the event is not acked: it comes back.
func TestSkippedStatusNotStoredIsRetried(t *testing.T) {
	t.Parallel()
	b := newFakeBroker()
	b.publishFn = func(subject string, _ []byte) error {
		if subject == status.Skipped.Subject() {
			return errors.New("status stream unavailable")
		}
		return nil
	}
	w := unroutedWorker(t, b)
	res := w.intakeStep().Handle(context.Background(), lowRiskDelivery(t, 1, false))
	if _, ok := asRetry(res.Err); !ok || res.Recorded {
		t.Fatalf("result %+v; want an unrecorded retry", res)
	}
	if dls := b.publishedTo(status.DLQSubjectPrefix); len(dls) != 0 {
		t.Errorf("%d dead letters, want none", len(dls))
	}
}
