package status_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/status"
)

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		outcome  status.Outcome
		subject  string
		terminal bool
	}{
		{status.Succeeded, "remediation.status.succeeded", true},
		{status.Retrying, "remediation.status.retrying", false},
		{status.Failed, "remediation.status.failed", true},
		{status.Rejected, "remediation.status.rejected", true},
		{status.DryRun, "remediation.status.dry_run", true},
		{status.Held, "remediation.status.held", false},
		{status.Skipped, "remediation.status.skipped", true},
	}
	for _, tt := range tests {
		if got := tt.outcome.Subject(); got != tt.subject {
			t.Errorf("%s.Subject() = %q, want %q", tt.outcome, got, tt.subject)
		}
		if got := tt.outcome.Terminal(); got != tt.terminal {
			t.Errorf("%s.Terminal() = %v, want %v", tt.outcome, got, tt.terminal)
		}
		if !strings.HasPrefix(tt.subject, status.SubjectPrefix) {
			t.Errorf("subject %q does not start with SubjectPrefix %q", tt.subject, status.SubjectPrefix)
		}
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	// The README's list, in its order.
	tests := []struct {
		reason  status.Reason
		text    string
		subject string
	}{
		{status.ReasonInvalidJSON, "invalid_json", "remediation.dlq.invalid_json"},
		{status.ReasonSchemaViolation, "schema_violation", "remediation.dlq.schema_violation"},
		{status.ReasonNoRoute, "no_route", "remediation.dlq.no_route"},
		{status.ReasonUnauthorized, "unauthorized", "remediation.dlq.unauthorized"},
		{status.ReasonPermanentFailure, "permanent_failure", "remediation.dlq.permanent_failure"},
		{status.ReasonRetriesExhausted, "retries_exhausted", "remediation.dlq.retries_exhausted"},
		{status.ReasonTooLarge, "too_large", "remediation.dlq.too_large"},
		{status.ReasonUnverified, "unverified", "remediation.dlq.unverified"},
	}
	var listed []status.Reason
	for _, tt := range tests {
		listed = append(listed, tt.reason)
		if got := tt.reason.Subject(); got != tt.subject {
			t.Errorf("%s.Subject() = %q, want %q", tt.reason, got, tt.subject)
		}
		got, err := status.ParseReason(tt.text)
		if err != nil || got != tt.reason {
			t.Errorf("ParseReason(%q) = %q, %v; want %q", tt.text, got, err, tt.reason)
		}
	}
	if !slices.Equal(status.Reasons, listed) {
		t.Errorf("Reasons = %v, want %v", status.Reasons, listed)
	}
}

func TestParseReasonRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "timeout", "NO_ROUTE", "no_route ", "remediation.dlq.no_route"} {
		got, err := status.ParseReason(s)
		if err == nil {
			t.Errorf("ParseReason(%q) = %q, want an error", s, got)
			continue
		}
		if got != "" {
			t.Errorf("ParseReason(%q) returned %q with its error", s, got)
		}
		// The message names what was given and what is allowed.
		for _, want := range []string{`"` + s + `"`, "retries_exhausted", "invalid_json"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParseReason(%q): error %q does not contain %s", s, err, want)
			}
		}
	}
}

// jsonKeys marshals v and returns its top-level object.
func jsonKeys(t *testing.T, v any) (map[string]json.RawMessage, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Unmarshal %s: %v", b, err)
	}
	return m, b
}

func TestRecordJSON(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 11, 23, 10, 2, 41, 123456789, time.UTC)
	rec := status.Record{
		EventID:        "f73a7741-6980-4d44-b0bf-13a2fa7ac556",
		EventKind:      "ispm_issue",
		Flow:           "suspend-okta-account",
		Rule:           "unused-admin-account",
		Outcome:        status.Retrying,
		Attempt:        2,
		HTTPStatus:     429,
		ExecutionID:    "0f5c",
		Error:          "429 Too Many Requests",
		Reason:         status.ReasonRetriesExhausted,
		Delay:          status.Duration(1500 * time.Millisecond),
		Why:            "rate limited",
		OutcomeUnknown: true,
		IdempotencyKey: "ik-1",
		DurationMS:     87,
		DLQSequence:    12,
		TraceID:        "4bf92f3577b34da6a3ce929d0e0e4736",
		Timestamp:      ts,
		Okta: &status.OktaError{Code: "E0000011", Summary: "Invalid token provided", ID: "oae1",
			Causes: []status.OktaErrorCause{{Summary: "token revoked"}}},
	}
	m, b := jsonKeys(t, rec)
	want := map[string]string{
		"eventId":        `"f73a7741-6980-4d44-b0bf-13a2fa7ac556"`,
		"eventKind":      `"ispm_issue"`,
		"flow":           `"suspend-okta-account"`,
		"rule":           `"unused-admin-account"`,
		"outcome":        `"retrying"`,
		"attempt":        `2`,
		"httpStatus":     `429`,
		"executionId":    `"0f5c"`,
		"error":          `"429 Too Many Requests"`,
		"reason":         `"retries_exhausted"`,
		"delay":          `"1.5s"`,
		"why":            `"rate limited"`,
		"outcomeUnknown": `true`,
		"idempotencyKey": `"ik-1"`,
		"durationMs":     `87`,
		"dlqSequence":    `12`,
		"traceId":        `"4bf92f3577b34da6a3ce929d0e0e4736"`,
		"timestamp":      `"2026-11-23T10:02:41.123456789Z"`,
		// Okta's error body, in Okta's shape (issue 10).
		"okta": `{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorId":"oae1","errorCauses":[{"errorSummary":"token revoked"}]}`,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok {
			t.Errorf("record JSON has no %q: %s", k, b)
		} else if string(got) != v {
			t.Errorf("record JSON %q = %s, want %s", k, got, v)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("record JSON has unexpected field %q", k)
		}
	}

	var back status.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(back, rec) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, rec)
	}
}

// A succeeded record carries only what applies; optional fields are left out.
func TestRecordJSONOmitsEmpty(t *testing.T) {
	t.Parallel()
	m, b := jsonKeys(t, status.Record{Outcome: status.Succeeded, Attempt: 1, Timestamp: time.Unix(0, 0).UTC()})
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"attempt", "outcome", "timestamp"}; !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v: %s", keys, want, b)
	}
}

func TestDeadLetterJSON(t *testing.T) {
	t.Parallel()
	first := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	last := first.Add(5 * time.Minute)
	// Not valid UTF-8 and not JSON: the payload must survive byte for byte.
	payload := []byte("{\"issueId\": \xff\xfe not json\n")
	dl := status.DeadLetter{
		Reason:         status.ReasonInvalidJSON,
		Error:          "invalid character '\\xff' looking for beginning of value",
		EventID:        "e1",
		EventKind:      "ispm_issue",
		Flow:           "notify-slack",
		Rule:           "no-mfa",
		Subject:        "remediation.events.ispm",
		Headers:        map[string][]string{"Nats-Msg-Id": {"e1"}, "traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		Payload:        payload,
		IdempotencyKey: "ik-1",
		Attempts:       3,
		History: []status.Attempt{
			{Attempt: 1, HTTPStatus: 503, Error: "503 Service Unavailable", At: first},
			{Attempt: 2, Error: "timeout", OutcomeUnknown: true, At: first.Add(time.Minute)},
		},
		FirstSeen:     first,
		LastSeen:      last,
		TraceID:       "4bf92f3577b34da6a3ce929d0e0e4736",
		EventSequence: 42,
		Replays:       1,
		Okta:          &status.OktaError{Code: "E0000011", Summary: "Invalid token provided"},
	}
	m, b := jsonKeys(t, dl)
	want := map[string]string{
		"reason":    `"invalid_json"`,
		"eventId":   `"e1"`,
		"subject":   `"remediation.events.ispm"`,
		"payload":   `"` + base64.StdEncoding.EncodeToString(payload) + `"`,
		"attempts":  `3`,
		"firstSeen": `"2026-11-23T10:00:00Z"`,
		"lastSeen":  `"2026-11-23T10:05:00Z"`,
		"okta":      `{"errorCode":"E0000011","errorSummary":"Invalid token provided"}`,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok {
			t.Errorf("dead letter JSON has no %q: %s", k, b)
		} else if string(got) != v {
			t.Errorf("dead letter JSON %q = %s, want %s", k, got, v)
		}
	}
	for _, k := range []string{"error", "headers", "eventKind", "flow", "rule", "history", "traceId", "eventSequence", "idempotencyKey"} {
		if _, ok := m[k]; !ok {
			t.Errorf("dead letter JSON has no %q: %s", k, b)
		}
	}
	var headers map[string][]string
	if err := json.Unmarshal(m["headers"], &headers); err != nil || headers["Nats-Msg-Id"][0] != "e1" {
		t.Errorf("headers = %s (%v), want an object of lists", m["headers"], err)
	}

	var back status.DeadLetter
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if string(back.Payload) != string(payload) {
		t.Errorf("payload round trip: %q, want %q", back.Payload, payload)
	}
	if !reflect.DeepEqual(back, dl) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, dl)
	}
}

// Readers in other languages decode the public field names; a dead letter written by hand
// (or by an older remediator) decodes into the same record.
func TestDeadLetterDecodesPublicNames(t *testing.T) {
	t.Parallel()
	doc := `{"reason":"schema_violation","error":"ispm-issue-ondemand v1: /issueId: missing required property (required)",
		"eventId":"e1","subject":"remediation.events.ispm","headers":{"Nats-Msg-Id":["e1"]},
		"payload":"eyJldmVudElkIjoiZTEifQ==","attempts":0,
		"firstSeen":"2026-11-23T10:00:00Z","lastSeen":"2026-11-23T10:00:01Z"}`
	var dl status.DeadLetter
	if err := json.Unmarshal([]byte(doc), &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Reason != status.ReasonSchemaViolation || dl.EventID != "e1" || dl.Subject != "remediation.events.ispm" ||
		string(dl.Payload) != `{"eventId":"e1"}` || dl.Headers["Nats-Msg-Id"][0] != "e1" ||
		!dl.LastSeen.Equal(time.Date(2026, 11, 23, 10, 0, 1, 0, time.UTC)) ||
		!strings.Contains(dl.Error, "/issueId") {
		t.Errorf("decoded %+v", dl)
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(status.Duration(1500 * time.Millisecond))
	if err != nil || string(b) != `"1.5s"` {
		t.Errorf("Marshal(1.5s) = %s, %v; want \"1.5s\"", b, err)
	}

	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{`"1.5s"`, 1500 * time.Millisecond, false},
		{`"2m30s"`, 150 * time.Second, false},
		{`"0s"`, 0, false},
		{`1500000000`, 1500 * time.Millisecond, false},
		{`0`, 0, false},
		{`"1.5 seconds"`, 0, true},
		{`""`, 0, true},
		{`1.5`, 0, true},
		{`true`, 0, true},
		{`{}`, 0, true},
	}
	for _, tt := range tests {
		var d status.Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if tt.wantErr {
			if err == nil {
				t.Errorf("Unmarshal(%s) = %v, want an error", tt.in, time.Duration(d))
			}
			continue
		}
		if err != nil || time.Duration(d) != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", tt.in, time.Duration(d), err, tt.want)
		}
	}
}

// A retrying record's delay as a number (nanoseconds) decodes too.
func TestRecordDelayAsNumber(t *testing.T) {
	t.Parallel()
	var rec status.Record
	if err := json.Unmarshal([]byte(`{"outcome":"retrying","attempt":1,"delay":2000000000,"timestamp":"2026-11-23T10:00:00Z"}`), &rec); err != nil {
		t.Fatal(err)
	}
	if time.Duration(rec.Delay) != 2*time.Second || rec.Outcome != status.Retrying {
		t.Errorf("decoded %+v, want delay 2s", rec)
	}
}
