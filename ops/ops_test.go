package ops_test

import (
	"context"
	"encoding/json"
	"github.com/remediator/remediator/seal"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

func TestMain(m *testing.M) { brokertest.VerifyTestMain(m) }

func publishJSON(t *testing.T, b *broker.Broker, subject string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(context.Background(), subject, data, broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A switch is set in the controls bucket the workers watch, listed with who set it, written to
// the audit stream with who and through what, and lifted again.
func TestSetSwitchIsListedAndAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := brokertest.Connect(t)
	if _, err := b.KeyValue(ctx, broker.KVConfig{Bucket: worker.ControlsBucket, History: 1, Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	keys, err := seal.NewKeyring(seal.Key{ID: "k1", Secret: []byte("ops-test-record-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	o := ops.New(b, ops.Options{Host: "test-host", Keys: keys})
	if err := o.SetSwitch(ctx, ops.Switch{Kind: ops.Pause, Flow: "clear-sessions", On: true, Reason: "flow broken"}, ops.Operator{User: "jane", Via: "console"}); err != nil {
		t.Fatal(err)
	}
	sw, err := o.Switches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw) != 1 || sw[0].Kind != ops.Pause || sw[0].Flow != "clear-sessions" || sw[0].By != "jane" || sw[0].Reason != "flow broken" || sw[0].Unverified != "" {
		t.Fatalf("switches = %+v", sw)
	}
	var audits []ops.SwitchAudit
	err = b.Scan(ctx, broker.StreamAudit, ops.AuditSubjectPrefix+">", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var a ops.SwitchAudit
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Error(err)
		}
		if m.Subject != ops.AuditSubjectPrefix+a.Action {
			t.Errorf("audit on %s for action %s", m.Subject, a.Action)
		}
		audits = append(audits, a)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(audits) != 1 || audits[0].Action != "flows.pause" || audits[0].User != "jane" || audits[0].Via != "console" || audits[0].Host != "test-host" {
		t.Fatalf("audit = %+v", audits)
	}
	if err := o.SetSwitch(ctx, ops.Switch{Kind: ops.Pause, Flow: "clear-sessions"}, ops.Operator{User: "jane"}); err != nil {
		t.Fatal(err)
	}
	if sw, err := o.Switches(ctx); err != nil || len(sw) != 0 {
		t.Fatalf("after resume: switches = %+v, %v", sw, err)
	}
	if err := o.SetSwitch(ctx, ops.Switch{Kind: "explode", Flow: "x", On: true}, ops.Operator{}); err == nil {
		t.Error("an unknown switch kind was accepted")
	}
}

// Stats, history, search and outcomes read the same records: an event found by a user login
// its document holds, by its id and by flow, with its journey in order.
func TestHistorySearchAndStatsAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := brokertest.Connect(t)
	now := time.Now().UTC()
	publishJSON(t, b, event.SubjectISPM, map[string]any{"eventId": "ev-1", "user": map[string]any{"login": "Jane.Doe@example.com"}, "issueId": "ISS-42"})
	publishJSON(t, b, event.SubjectISPM, map[string]any{"eventId": "ev-2", "user": map[string]any{"login": "bob@example.com"}})
	publishJSON(t, b, status.Retrying.Subject(), status.Record{EventID: "ev-1", Flow: "clear", Outcome: status.Retrying, Attempt: 1, HTTPStatus: 503, Timestamp: now})
	publishJSON(t, b, status.Succeeded.Subject(), status.Record{EventID: "ev-1", Flow: "clear", Outcome: status.Succeeded, Attempt: 2, HTTPStatus: 200, DurationMS: 12, Timestamp: now.Add(time.Second)})
	publishJSON(t, b, status.Succeeded.Subject(), status.Record{EventID: "ev-2", Flow: "suspend", Outcome: status.Succeeded, Attempt: 1, HTTPStatus: 200, Timestamp: now})
	for range 2 {
		publishJSON(t, b, "remediation.dispatch.clear.high", map[string]any{"job": "waiting"})
	}
	o := ops.New(b, ops.Options{})

	h, err := o.EventHistory(ctx, "ev-1", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Found() || len(h.Statuses) != 2 || h.Statuses[0].Outcome != status.Retrying || h.Statuses[1].Outcome != status.Succeeded {
		t.Fatalf("history = %+v", h)
	}
	for _, q := range []ops.Query{{Text: "jane.doe@example.com"}, {Text: "ISS-42"}, {Text: "ev-1"}, {Flow: "clear"}} {
		got, err := o.SearchEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].EventID != "ev-1" || got[0].Outcome != status.Succeeded || got[0].Records != 2 {
			t.Errorf("search %+v = %+v", q, got)
		}
	}
	s, err := o.Stats(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Flow("clear"); f.Succeeded != 1 || f.Retrying != 1 || f.Calls != 2 {
		t.Errorf("stats for clear = %+v", f)
	}
	if s.Jobs("clear", "high") != 2 || s.Jobs("clear", "low") != 0 {
		t.Errorf("backlog = %+v, want 2 high jobs of clear", s.Backlog)
	}
	buckets, err := o.Outcomes(ctx, 10*time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var succeeded, retrying int
	var ttr bool
	for _, bk := range buckets {
		succeeded, retrying = succeeded+bk.Succeeded, retrying+bk.Retrying
		ttr = ttr || bk.RemediateP50MS != nil
	}
	if succeeded != 2 || retrying != 1 || !ttr {
		t.Errorf("outcomes: %d succeeded, %d retrying, time to remediate %v: %+v", succeeded, retrying, ttr, buckets)
	}
}

func TestRedactInputs(t *testing.T) {
	t.Parallel()
	in := map[string]any{"userId": "00u1", "apiToken": "s3cret", "nested": map[string]any{"Authorization": "Bearer x", "ok": []any{map[string]any{"password": "p"}}}}
	out := ops.RedactInputs(in)
	b, _ := json.Marshal(out)
	for _, secret := range []string{"s3cret", "Bearer x", `"p"`} {
		if strings.Contains(string(b), secret) {
			t.Errorf("redacted inputs still hold %s: %s", secret, b)
		}
	}
	if out["userId"] != "00u1" {
		t.Errorf("userId = %v", out["userId"])
	}
}
