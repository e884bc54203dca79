package status

import (
	"fmt"
	"time"
)

// Reason says why an event is in the dead-letter stream. Its value is the last token of the
// dead-letter subject (remediation.dlq.<reason>).
type Reason string

const (
	// ReasonInvalidJSON: the payload is not JSON.
	ReasonInvalidJSON Reason = "invalid_json"
	// ReasonSchemaViolation: the payload is JSON but breaks the event schema.
	ReasonSchemaViolation Reason = "schema_violation"
	// ReasonNoRoute: no routing rule or policy rule matches the event.
	ReasonNoRoute Reason = "no_route"
	// ReasonUnauthorized: the event's principal may not run the flow.
	ReasonUnauthorized Reason = "unauthorized"
	// ReasonPermanentFailure: the flow answered with an error that retrying cannot fix.
	ReasonPermanentFailure Reason = "permanent_failure"
	// ReasonRetriesExhausted: every allowed attempt failed transiently, or the last delivery
	// JetStream allows (max deliveries) could not handle the event.
	ReasonRetriesExhausted Reason = "retries_exhausted"
	// ReasonTooLarge: the event is larger than the size limit (limits.maxEventBytes), or a
	// record made from it cannot be stored. Its dead letter carries no payload and no
	// headers: only Stream and EventSequence, a reference to the event, and an error naming
	// the size and the limit.
	ReasonTooLarge Reason = "too_large"
	// ReasonUnverified: a dispatch job whose MAC (header Remediator-Mac) is missing or does not
	// verify with the record keys: not written by remediator (forged on NATS), altered, or
	// signed with a key since retired. It is never run; its bytes are kept for inspection.
	ReasonUnverified Reason = "unverified"
)

// Reasons lists every dead-letter reason.
var Reasons = []Reason{
	ReasonInvalidJSON, ReasonSchemaViolation, ReasonNoRoute, ReasonUnauthorized,
	ReasonPermanentFailure, ReasonRetriesExhausted, ReasonTooLarge, ReasonUnverified,
}

// ParseReason checks s against [Reasons].
func ParseReason(s string) (Reason, error) {
	for _, r := range Reasons {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown dead-letter reason %q (want one of %v)", s, Reasons)
}

// DLQSubjectPrefix is the prefix of every dead-letter subject.
const DLQSubjectPrefix = "remediation.dlq."

// Subject returns the dead-letter subject for a reason.
func (r Reason) Subject() string { return DLQSubjectPrefix + string(r) }

// DeadLetter is one dead-letter message: everything needed to understand the failure and to
// replay the original event.
//
// Usually it embeds the event (Payload, Headers). A reference-only dead letter has an empty
// Payload and no Headers but Stream and EventSequence set: the event is message
// EventSequence of Stream (REMEDIATION_EVENTS). It is written for a too_large event, for a
// dead letter that would be too large to store, and when the event was no longer in its
// stream when the dead letter was written. Readers (dlq show, replay) load the event by
// sequence, and say so when it is gone.
type DeadLetter struct {
	Reason Reason `json:"reason"`
	// Error says exactly what is wrong (for a schema violation: the JSON pointer and the rule).
	Error     string `json:"error"`
	EventID   string `json:"eventId,omitempty"`
	EventKind string `json:"eventKind,omitempty"`
	Flow      string `json:"flow,omitempty"`
	Rule      string `json:"rule,omitempty"`
	// Subject is the subject the original event was published to; replay publishes there.
	Subject string `json:"subject"`
	// Headers are the original message headers, less secrets.
	Headers map[string][]string `json:"headers,omitempty"`
	// Payload is the original event, byte for byte (base64 in JSON); empty in a
	// reference-only dead letter.
	Payload []byte `json:"payload"`
	// IdempotencyKey is the key the flow saw (or would have seen); replays keep it.
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	Attempts       int       `json:"attempts"`
	History        []Attempt `json:"history,omitempty"`
	FirstSeen      time.Time `json:"firstSeen"`
	LastSeen       time.Time `json:"lastSeen"`
	TraceID        string    `json:"traceId,omitempty"`
	// Stream is the stream holding the original event (REMEDIATION_EVENTS) when
	// EventSequence is set.
	Stream string `json:"stream,omitempty"`
	// EventSequence is the sequence of the original event in Stream (REMEDIATION_EVENTS).
	EventSequence uint64 `json:"eventSequence,omitempty"`
	// Replays counts how many times this event has been replayed from the DLQ before.
	Replays int `json:"replays,omitempty"`
	// Okta is the error object Okta answered the last attempt with (see [OktaError]);
	// absent when the last failure carried none.
	Okta *OktaError `json:"okta,omitempty"`
	// Output, OutputTruncated and ResponseHeaders are the last attempt's answer, as in the
	// status [Record].
	Output          string              `json:"output,omitempty"`
	OutputTruncated bool                `json:"outputTruncated,omitempty"`
	ResponseHeaders map[string][]string `json:"responseHeaders,omitempty"`
}

// Attempt is one invocation attempt kept in a dead letter's history.
type Attempt struct {
	Attempt        int       `json:"attempt"`
	HTTPStatus     int       `json:"httpStatus,omitempty"`
	Error          string    `json:"error,omitempty"`
	OutcomeUnknown bool      `json:"outcomeUnknown,omitempty"`
	At             time.Time `json:"at"`
}
