package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/remediator/remediator/event"
)

// DispatchSubjectPrefix is the prefix of dispatch job subjects:
// remediation.dispatch.<flow>.<priority>.
const DispatchSubjectPrefix = "remediation.dispatch."

// DispatchSubject returns the subject of a job for flow at priority p.
func DispatchSubject(flow string, p event.Priority) string {
	return DispatchSubjectPrefix + flow + "." + string(p)
}

// Job is one (event, flow) invocation to make: what intake hands to dispatch. It carries the
// original event so that a dead letter written by dispatch holds the exact original bytes.
type Job struct {
	Version int `json:"v"`
	// Key identifies the (event, flow) pair: the same for every retry, duplicate and replay.
	Key            string         `json:"key"`
	IdempotencyKey string         `json:"idempotencyKey"`
	EventID        string         `json:"eventId"`
	EventKind      event.Kind     `json:"eventKind"`
	EventTime      time.Time      `json:"eventTime,omitzero"`
	Flow           string         `json:"flow"`
	Rule           string         `json:"rule"`
	Priority       event.Priority `json:"priority"`
	Inputs         map[string]any `json:"inputs"`
	// Subject, Headers and Payload are the original event message.
	Subject string              `json:"subject"`
	Headers map[string][]string `json:"headers,omitempty"`
	Payload []byte              `json:"payload"`
	// EventSequence is the event's sequence in REMEDIATION_EVENTS. A new sequence for the same
	// Key (a re-publish or a replay) is a new generation of the job.
	EventSequence uint64    `json:"eventSequence"`
	FirstSeen     time.Time `json:"firstSeen"`
}

const jobVersion = 1

// JobKey derives the key of the (event, flow) pair. It is a hash so that any event id is safe
// as a KV key and a header value.
func JobKey(kind event.Kind, eventID, flow string) string {
	h := sha256.Sum256([]byte(string(kind) + "\x00" + eventID + "\x00" + flow))
	return hex.EncodeToString(h[:16])
}

// IdempotencyKey is what the flow receives (header Idempotency-Key and body idempotencyKey): the
// same on every retry and replay of the event for that flow.
func IdempotencyKey(kind event.Kind, eventID, flow string) string {
	return idempotencyKeyPrefix + JobKey(kind, eventID, flow)
}

const idempotencyKeyPrefix = "rmd-"

func decodeJob(b []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("dispatch job is not valid JSON: %w", err)
	}
	if j.Version != jobVersion || j.Key == "" || j.Flow == "" {
		return nil, fmt.Errorf("dispatch job is malformed (version %d, key %q, flow %q)", j.Version, j.Key, j.Flow)
	}
	return &j, nil
}
