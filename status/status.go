package status

import (
	"encoding/json"
	"fmt"
	"time"
)

// Outcome is the result a status record reports. Its value is the last token of the status
// subject (remediation.status.<outcome>).
type Outcome string

const (
	// Succeeded: the flow accepted the invocation (2xx). Terminal.
	Succeeded Outcome = "succeeded"
	// Retrying: an attempt failed transiently; the event will be tried again after Delay.
	Retrying Outcome = "retrying"
	// Failed: the event could not be remediated and is in the dead-letter stream. Terminal.
	Failed Outcome = "failed"
	// Rejected: the event was refused before any call (invalid, unroutable, unauthorized) and
	// is in the dead-letter stream. Terminal.
	Rejected Outcome = "rejected"
	// DryRun: the flow is in dry-run mode; the would-be invocation is recorded, not made. Terminal.
	DryRun Outcome = "dry_run"
	// Held: dispatch is paused or capped for the flow; the event waits in JetStream. Not terminal.
	Held Outcome = "held"
	// Skipped: the event is valid but runs no flow (an ISPM issue no route takes, an
	// entity-risk event that matches no custom rule or a log-only rule), and the configuration
	// (unrouted: skip, the default) records it here instead of on the dead-letter stream. Rule
	// names the matching log-only rule, if any, and Why says why nothing runs. Terminal.
	Skipped Outcome = "skipped"
)

// Terminal reports whether an outcome ends the event's journey for its flow.
func (o Outcome) Terminal() bool {
	return o == Succeeded || o == Failed || o == Rejected || o == DryRun || o == Skipped
}

// SubjectPrefix is the prefix of every status subject.
const SubjectPrefix = "remediation.status."

// Subject returns the status subject for an outcome.
func (o Outcome) Subject() string { return SubjectPrefix + string(o) }

// Record is one status message.
type Record struct {
	EventID   string  `json:"eventId,omitempty"`
	EventKind string  `json:"eventKind,omitempty"`
	Flow      string  `json:"flow,omitempty"`
	Rule      string  `json:"rule,omitempty"`
	Outcome   Outcome `json:"outcome"`
	// Attempt is the 1-based number of the invocation attempt this record reports.
	Attempt     int    `json:"attempt"`
	HTTPStatus  int    `json:"httpStatus,omitempty"`
	ExecutionID string `json:"executionId,omitempty"`
	// Error is a human-readable account of what went wrong; empty on success.
	Error string `json:"error,omitempty"`
	// Reason is the dead-letter reason for failed and rejected records.
	Reason Reason `json:"reason,omitempty"`
	// Delay is how long the event waits before the next attempt (retrying records), with Why.
	// Why also says why a skipped event runs no flow, and why a native action succeeded
	// without changing anything ("already in effect: …").
	Delay Duration `json:"delay,omitempty"`
	Why   string   `json:"why,omitempty"`
	// OutcomeUnknown marks an attempt whose request was sent but whose answer never came: the
	// flow may have run. Retries reuse the same IdempotencyKey.
	OutcomeUnknown bool   `json:"outcomeUnknown,omitempty"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	DryRun         bool   `json:"dryRun,omitempty"`
	// Inputs are the flow inputs of a dry run (what the flow would have received).
	Inputs map[string]any `json:"inputs,omitempty"`
	// DurationMS is how long the invocation took.
	DurationMS int64 `json:"durationMs,omitempty"`
	// Okta is the error object Okta answered with ({errorCode, errorSummary, errorId,
	// errorCauses}) when the attempt this record reports failed with one; absent otherwise.
	Okta *OktaError `json:"okta,omitempty"`
	// Output is the start of the answer the attempt got: the flow's output (its response
	// body) or, for a native action, Okta's answer; at most limits.maxOutputBytes, with the
	// credentials the call carried removed. OutputTruncated says it was cut.
	Output          string `json:"output,omitempty"`
	OutputTruncated bool   `json:"outputTruncated,omitempty"`
	// ResponseHeaders are the answer's headers, so that a Workflows execution id can be
	// found whatever its header name; secret ones (Authorization, cookies, anything naming a
	// token, secret, password or credential) read "[REDACTED]".
	ResponseHeaders map[string][]string `json:"responseHeaders,omitempty"`
	// DLQSequence is the dead-letter stream sequence of failed and rejected records.
	DLQSequence uint64    `json:"dlqSequence,omitempty"`
	TraceID     string    `json:"traceId,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
	// Unverified is set by readers, never stored by the worker: why the record's MAC (header
	// Remediator-Mac) does not verify with the record keys — remediator did not write it.
	Unverified string `json:"unverified,omitempty"`
}

// Duration is a time.Duration that encodes as a Go duration string ("1.5s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler; it accepts a duration string or nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: want a string like \"1.5s\": %w", err)
	}
	*d = Duration(n)
	return nil
}

// OktaError is the error object Okta answered a failed call with, in Okta's own shape:
// errorCode (such as E0000011, an invalid token), errorSummary, errorId (quote it to Okta
// support) and errorCauses. Part of the record contract: the field names are Okta's, and each
// is absent when Okta sent none. Secrets the call carried are redacted from the values.
type OktaError struct {
	Code    string           `json:"errorCode,omitempty"`
	Summary string           `json:"errorSummary,omitempty"`
	ID      string           `json:"errorId,omitempty"`
	Causes  []OktaErrorCause `json:"errorCauses,omitempty"`
}

// OktaErrorCause is one of Okta's errorCauses.
type OktaErrorCause struct {
	Summary string `json:"errorSummary"`
}
