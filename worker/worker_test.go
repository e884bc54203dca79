package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

func TestSeedEventIsDispatchedToItsFlow(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	seed := readFixture(t, "ispm-unused-admin.json")
	res := h.publish(event.SubjectISPM, seed)

	rec := h.waitStatus("f73a7741-6980-4d44-b0bf-13a2fa7ac556", status.Succeeded, "suspend-okta-account")
	if rec.EventKind != "ispm_issue" || rec.Attempt != 1 || rec.HTTPStatus != 200 || rec.ExecutionID == "" {
		t.Errorf("succeeded record = %+v; want kind ispm_issue, attempt 1, HTTP 200, an execution id", rec)
	}
	if rec.TraceID == "" || rec.TraceID != res.TraceID {
		t.Errorf("status traceId %q, want the publisher's trace %q", rec.TraceID, res.TraceID)
	}
	if rec.Rule != "unused-admin-account" {
		t.Errorf("rule = %q, want unused-admin-account", rec.Rule)
	}

	// The flow received the event's fields, flat, with the idempotency key.
	calls := h.sim.Invocations("suspend-okta-account")
	if len(calls) != 1 {
		t.Fatalf("simulator received %d calls, want 1", len(calls))
	}
	var doc map[string]any
	if err := json.Unmarshal(seed, &doc); err != nil {
		t.Fatal(err)
	}
	for k, v := range doc {
		if k == "eventTimestamp" {
			continue // normalised to RFC 3339 UTC; same instant
		}
		if got := calls[0].Inputs[k]; got != v {
			t.Errorf("flow input %s = %v, want %v", k, got, v)
		}
	}
	if calls[0].IdempotencyKey == "" || calls[0].Inputs["idempotencyKey"] != calls[0].IdempotencyKey {
		t.Errorf("idempotency key header %q and body %v should match and be set", calls[0].IdempotencyKey, calls[0].Inputs["idempotencyKey"])
	}
	if rec.IdempotencyKey != calls[0].IdempotencyKey {
		t.Errorf("status idempotencyKey %q, flow saw %q", rec.IdempotencyKey, calls[0].IdempotencyKey)
	}
	for _, other := range []string{"reset-password", "clear-sessions", "notify-slack"} {
		if n := len(h.sim.Invocations(other)); n != 0 {
			t.Errorf("flow %s was called %d times for an event not routed to it", other, n)
		}
	}
}

func TestBadInputIsDeadLetteredAndTheWorkerCarriesOn(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	notJSON := []byte("not json")
	h.publish(event.SubjectISPM, notJSON)
	dl, subject := h.waitDeadLetter("invalid_json dead letter", func(d status.DeadLetter) bool { return d.Reason == status.ReasonInvalidJSON })
	if subject != "remediation.dlq.invalid_json" {
		t.Errorf("dead-letter subject = %q", subject)
	}
	if !bytes.Equal(dl.Payload, notJSON) {
		t.Errorf("dead-letter payload = %q, want the exact original bytes %q", dl.Payload, notJSON)
	}
	if dl.Subject != event.SubjectISPM || dl.Error == "" || dl.FirstSeen.IsZero() || dl.LastSeen.IsZero() {
		t.Errorf("dead letter lacks subject, error or times: %+v", dl)
	}

	missing := readFixture(t, "invalid-missing-issueid.json")
	h.publish(event.SubjectISPM, missing)
	dl, _ = h.waitDeadLetter("schema_violation dead letter", func(d status.DeadLetter) bool { return d.Reason == status.ReasonSchemaViolation })
	if !strings.Contains(dl.Error, "/issueId") {
		t.Errorf("schema violation error %q does not name the missing field /issueId", dl.Error)
	}
	if dl.EventID != "0d9e4c1a-5b7f-4e2a-9c3d-1f8a6b2e7d40" {
		t.Errorf("dead letter eventId = %q, want the id read from the invalid document", dl.EventID)
	}
	if !bytes.Equal(dl.Payload, missing) {
		t.Error("schema-violation dead letter does not keep the original bytes")
	}
	rej := h.waitStatus("0d9e4c1a-5b7f-4e2a-9c3d-1f8a6b2e7d40", status.Rejected, "")
	if rej.Reason != status.ReasonSchemaViolation || rej.DLQSequence == 0 {
		t.Errorf("rejected status = %+v, want reason schema_violation and the DLQ sequence", rej)
	}

	// The worker is still there.
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	h.waitStatus("f73a7741-6980-4d44-b0bf-13a2fa7ac556", status.Succeeded, "suspend-okta-account")
}

func TestWebhookShapeIsNormalisedAndRouted(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	h.publish(event.SubjectISPM, readFixture(t, "ispm-webhook-issue-created.json"))
	h.waitStatus("f73a7741-6980-4d44-b0bf-13a2fa7ac556", status.Succeeded, "suspend-okta-account")
	in := h.sim.Invocations("suspend-okta-account")[0].Inputs
	if in["entityDisplayName"] != "john.smith@okta.com" || in["entityIdInService"] != "00ktw0utvzPBXxny16x7" || in["issueTitle"] != "Unused Admin Account" {
		t.Errorf("webhook event reached the flow as %v", in)
	}
	for k, v := range in {
		switch v.(type) {
		case string, float64, bool:
		default:
			t.Errorf("flow input %s is a %T; delegated flows take only scalars", k, v)
		}
	}
}

func TestOneEventFansOutToEachRoutedFlowOnce(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	h.publish(event.SubjectISPM, readFixture(t, "ispm-compromised-account.json"))
	id := "7c4e1b9d-2a3f-4d8e-b6c5-0e1f2a3b4c5d"
	a := h.waitStatus(id, status.Succeeded, "clear-sessions")
	b := h.waitStatus(id, status.Succeeded, "reset-password")
	if a.IdempotencyKey == b.IdempotencyKey {
		t.Error("two flows of one event share an idempotency key; it must be per (event, flow)")
	}
	for _, f := range []string{"clear-sessions", "reset-password"} {
		if n := len(h.sim.Invocations(f)); n != 1 {
			t.Errorf("flow %s called %d times, want 1", f, n)
		}
	}
}

func TestEntityRiskFollowsPolicyRules(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	h.publish(event.SubjectITP, readFixture(t, "itp-high-risk.json"))
	rec := h.waitStatus("9f5b2c1e-4d7a-4b8e-9a31-2f0c6d8e7b14", status.Succeeded, "clear-sessions")
	if rec.EventKind != "entity_risk" || rec.Rule != "high-risk-clear-sessions" {
		t.Errorf("entity-risk status = %+v", rec)
	}
	in := h.sim.Invocations("clear-sessions")[0].Inputs
	if in["userId"] != "00u8k2j4abCDefGH5d7" || in["riskLevel"] != "HIGH" {
		t.Errorf("clear-sessions got inputs %v", in)
	}

	// LOW matches no custom rule: Okta's default rule only records, so it is skipped (see
	// unrouted_test.go).
	h.publish(event.SubjectITP, readFixture(t, "itp-low-risk.json"))
	if r := h.waitStatus("2b1d7c55-0e8e-4a5f-bb11-7a3c0e9d4f21", status.Skipped, ""); !strings.Contains(r.Why, "default rule") {
		t.Errorf("skipped status = %+v", r)
	}
}

func TestPermanentFailureIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	h := start(t, options{faults: map[string]flowsim.Faults{"suspend-okta-account": {Status: 400}}})
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	id := "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
	rec := h.waitStatus(id, status.Failed, "suspend-okta-account")
	if rec.Reason != status.ReasonPermanentFailure || rec.HTTPStatus != 400 || rec.DLQSequence == 0 {
		t.Errorf("failed status = %+v", rec)
	}
	dl, subject := h.waitDeadLetter("permanent_failure", func(d status.DeadLetter) bool { return d.EventID == id })
	if subject != "remediation.dlq.permanent_failure" || dl.Flow != "suspend-okta-account" || dl.Attempts != 1 || len(dl.History) != 1 || dl.History[0].HTTPStatus != 400 {
		t.Errorf("dead letter = %+v on %s", dl, subject)
	}
	if !bytes.Equal(dl.Payload, readFixture(t, "ispm-unused-admin.json")) {
		t.Error("dispatch dead letter does not hold the original event bytes")
	}
	if n := h.sim.Stats("suspend-okta-account").Received; n != 1 {
		t.Errorf("a 400 was retried: the flow received %d calls", n)
	}
}

func TestTransientFailuresAreRetriedUntilTheFlowSucceeds(t *testing.T) {
	t.Parallel()
	h := start(t, options{faults: map[string]flowsim.Faults{"suspend-okta-account": {ErrorRate: 1}}})
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	id := "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
	r := h.waitStatus(id, status.Retrying, "suspend-okta-account")
	if r.HTTPStatus < 500 || r.Why == "" || r.Delay <= 0 || r.Error == "" {
		t.Errorf("retrying status = %+v; want a 5xx, a delay and why", r)
	}
	if err := h.sim.SetFaults("suspend-okta-account", flowsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	ok := h.waitStatus(id, status.Succeeded, "suspend-okta-account")
	if ok.Attempt < 2 {
		t.Errorf("succeeded at attempt %d, want > 1", ok.Attempt)
	}
	if st := h.sim.Stats("suspend-okta-account"); st.Succeeded != 1 {
		t.Errorf("flow succeeded %d times, want exactly 1", st.Succeeded)
	}
}

func TestRetriesExhaustedKeepsEveryAttempt(t *testing.T) {
	t.Parallel()
	h := start(t, options{
		faults:       map[string]flowsim.Faults{"suspend-okta-account": {ErrorRate: 1}},
		workerConfig: func(c *worker.Config) { c.MaxAttempts = 4; c.QuickRetries = 1 },
	})
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	id := "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
	dl, subject := h.waitDeadLetter("retries_exhausted", func(d status.DeadLetter) bool { return d.EventID == id })
	if subject != "remediation.dlq.retries_exhausted" || dl.Attempts != 4 || len(dl.History) != 4 {
		t.Fatalf("dead letter on %s with %d attempts (%d in history), want retries_exhausted with 4", subject, dl.Attempts, len(dl.History))
	}
	for i, a := range dl.History {
		if a.Attempt != i+1 || a.HTTPStatus < 500 || a.Error == "" || a.At.IsZero() {
			t.Errorf("history[%d] = %+v", i, a)
		}
	}
	if n := h.sim.Stats("suspend-okta-account").Received; n != 4 {
		t.Errorf("flow received %d calls, want 4 (the attempt budget)", n)
	}
	var retrying int
	for _, r := range h.statuses() {
		if r.EventID == id && r.Outcome == status.Retrying {
			retrying++
		}
	}
	if retrying != 3 {
		t.Errorf("%d retrying statuses, want one per failed attempt before the last (3)", retrying)
	}
}

func TestDuplicateEventDoesNotInvokeTheFlowAgain(t *testing.T) {
	t.Parallel()
	h := start(t, options{})
	seed := readFixture(t, "ispm-unused-admin.json")
	id := "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
	h.publish(event.SubjectISPM, seed)
	h.waitStatus(id, status.Succeeded, "suspend-okta-account")
	// The same event again under another de-duplication id: JetStream stores it, the worker
	// must recognise it.
	if _, err := h.pub.Publish(context.Background(), seed, publishOpts("again")); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "duplicate recognised", func() bool { return strings.Contains(h.logs.String(), "duplicate event") })
	if n := h.sim.Stats("suspend-okta-account").Received; n != 1 {
		t.Errorf("flow received %d calls for one event published twice, want 1", n)
	}
	var terminal int
	for _, r := range h.statuses() {
		if r.EventID == id && r.Outcome.Terminal() {
			terminal++
		}
	}
	if terminal != 1 {
		t.Errorf("%d terminal statuses for the event, want 1", terminal)
	}
}

func TestStopFinishesInFlightWorkAndLosesNothing(t *testing.T) {
	t.Parallel()
	h := start(t, options{faults: map[string]flowsim.Faults{"suspend-okta-account": {Latency: 200 * time.Millisecond}}})
	const n = 12
	seed := readFixture(t, "ispm-unused-admin.json")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("evt-shutdown-%02d", i)
		h.publish(event.SubjectISPM, withID(t, seed, ids[i]))
	}
	testwait.Until(t, "some flow calls in flight", func() bool { return h.sim.Stats("suspend-okta-account").Received > 0 })
	h.stop() // mid-stream
	h.run()  // a new worker on the same streams picks up the rest
	for _, id := range ids {
		h.waitStatus(id, status.Succeeded, "suspend-okta-account")
	}
	st := h.sim.Stats("suspend-okta-account")
	if st.Executed != n || st.MaxExecutionsPerKey != 1 {
		t.Errorf("flow executed %d times (max %d per key) for %d events; want each exactly once", st.Executed, st.MaxExecutionsPerKey, n)
	}
}

func withID(t *testing.T, doc []byte, id string) []byte {
	t.Helper()
	return replaceJSON(t, doc, "eventId", id)
}

func replaceJSON(t *testing.T, doc []byte, k, v string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m[k] = v
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
