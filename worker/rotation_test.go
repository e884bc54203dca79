package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

func testKeyring(t *testing.T, ids ...string) *seal.Keyring {
	t.Helper()
	var keys []seal.Key
	for _, id := range ids {
		keys = append(keys, seal.Key{ID: id, Secret: []byte("rotation-test-secret-of-key-" + id + "-0123456789")})
	}
	k, err := seal.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Key rotation (issue 13): jobs in flight keep the key and MAC they were written with. After a
// new key is put first (the old one kept), they verify, run once each, and their job records
// are found under their old keys. Once the old key is retired, a job it signed that is still
// in the stream is no longer trusted: it is dead-lettered as unverified, not run — which is why
// the README says to retire a key only once nothing it signed is in flight.
func TestKeyRotationKeepsJobsInFlight(t *testing.T) {
	t.Parallel()
	k1, rotated, retired := testKeyring(t, "k1"), testKeyring(t, "k2", "k1"), testKeyring(t, "k2")
	const flow, held = "suspend-okta-account", "clear-sessions"
	h := start(t, options{workerConfig: func(c *worker.Config) { c.Keys = k1 }})
	kv := h.controls()
	for _, f := range []string{flow, held} {
		if err := worker.SetSignedControl(context.Background(), kv, k1, worker.PauseKey(f), &worker.Control{By: "t", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	seed := readFixture(t, "ispm-unused-admin.json")
	ids := []string{"rot-1", "rot-2"}
	for _, id := range ids {
		h.publish(event.SubjectISPM, withID(t, seed, id))
	}
	h.publish(event.SubjectITP, readFixture(t, "itp-high-risk.json"))
	testwait.Until(t, "3 jobs signed with k1 waiting", func() bool { return h.dispatchBacklog() == 3 })

	// Rotation: k2 signs, k1 still verifies.
	h.stop()
	h.wc.Keys = rotated
	h.run()
	if err := worker.SetControl(context.Background(), kv, worker.PauseKey(flow), nil); err != nil {
		t.Fatal(err)
	}
	jobs, err := h.b.OpenKeyValue(context.Background(), "remediation_jobs")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		h.waitStatus(id, status.Succeeded, flow)
		// The job record is under the k1-derived key, now sealed with k2.
		key := worker.JobKey(k1, event.KindISPMIssue, id, flow)
		rec, _, err := jobs.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("job record of %s under its k1 key: %v", id, err)
		}
		if _, kid, err := rotated.OpenValue("remediation_jobs", key, rec); err != nil || kid != "k2" {
			t.Errorf("job record of %s: key %q, %v; want sealed with the new primary", id, kid, err)
		}
	}
	if st := h.sim.Stats(flow); st.Executed != len(ids) {
		t.Errorf("after rotation the flow ran %d times for %d events", st.Executed, len(ids))
	}

	// Retirement while a k1 job is still waiting: it is refused, not run.
	h.stop()
	h.wc.Keys = retired
	h.run()
	if err := worker.SetControl(context.Background(), kv, worker.PauseKey(held), nil); err != nil {
		t.Fatal(err)
	}
	dl, subject := h.waitDeadLetter("the k1 job dead-lettered as unverified", func(dl status.DeadLetter) bool { return dl.Reason == status.ReasonUnverified })
	if !strings.Contains(dl.Error, `key id "k1"`) || subject != status.ReasonUnverified.Subject() {
		t.Errorf("dead letter on %s: %q; want it to name the retired key", subject, dl.Error)
	}
	if n := h.sim.Stats(held).Received; n != 0 {
		t.Errorf("a job signed with a retired key ran the flow %d times", n)
	}
}
