package worker

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/seal"
)

// DispatchSubjectPrefix is the prefix of dispatch job subjects:
// remediation.dispatch.<flow>.<priority>.
const DispatchSubjectPrefix = "remediation.dispatch."

// DispatchSubject returns the subject of a job for flow at priority p.
func DispatchSubject(flow string, p event.Priority) string {
	return DispatchSubjectPrefix + flow + "." + string(p)
}

// Job is one (event, flow) invocation to make: what intake hands to dispatch.
//
// A job refers to its event by the event's sequence in REMEDIATION_EVENTS instead of carrying
// a copy of it, so that a waiting job is a fraction of its event's size and an event near the
// size limit can always be stored as a job. Version 2 stopped copying the payload and
// headers; version 3 stops copying the flow's inputs as well: dispatch reads the event back
// when it calls the flow and maps the inputs with the configuration in force then (as it
// re-checks the route and the grant). A dispatch dead letter loads the event the same way to
// embed it.
type Job struct {
	Version int `json:"v"`
	// Key identifies the (event, flow) pair: the same for every retry, duplicate and replay.
	Key            string     `json:"key"`
	IdempotencyKey string     `json:"idempotencyKey"`
	EventID        string     `json:"eventId"`
	EventKind      event.Kind `json:"eventKind"`
	// EventShape is the layout intake validated the event in: dispatch decodes the event it
	// reads back in that shape without validating it again (version 3).
	EventShape event.Shape    `json:"eventShape,omitempty"`
	EventTime  time.Time      `json:"eventTime,omitzero"`
	Flow       string         `json:"flow"`
	Rule       string         `json:"rule"`
	Priority   event.Priority `json:"priority"`
	// Inputs are what the flow receives: carried by version 2 jobs (still read when an older
	// worker left them in the stream), mapped from the event at dispatch for version 3.
	Inputs map[string]any `json:"inputs,omitempty"`
	// Subject is the subject the event was published to (a replay publishes there).
	Subject string `json:"subject"`
	// Principal is the id of the principal the event was authorized for.
	Principal string `json:"principal,omitempty"`
	// PrincipalGroups are the principal's groups as intake saw them (header
	// Remediator-Principal-Groups), for dispatch's re-check of the grant.
	PrincipalGroups []string `json:"principalGroups,omitempty"`
	// EventSequence is the event's sequence in REMEDIATION_EVENTS: where the event itself is.
	// A new sequence for the same Key (a re-publish or a replay) is a new generation of the
	// job.
	EventSequence uint64    `json:"eventSequence"`
	FirstSeen     time.Time `json:"firstSeen"`
}

// jobVersion is the version intake writes. Dispatch also reads version 1 and 2 jobs left in
// the stream by an older worker (version 1 carried the payload and headers, now ignored;
// both carried the inputs, which are used as they are).
const jobVersion = 3

// JobKey derives the key of the (event, flow) pair: a keyed hash with the primary record key
// (see sealing.go), safe as a KV key and a header value, and unpredictable without a key.
func JobKey(keys *seal.Keyring, kind event.Kind, eventID, flow string) string {
	return jobKey(keys, kind, eventID, flow)
}

// IdempotencyKey is what the flow receives (header Idempotency-Key and body idempotencyKey): the
// same on every retry and replay of the event for that flow.
func IdempotencyKey(keys *seal.Keyring, kind event.Kind, eventID, flow string) string {
	return idempotencyKeyPrefix + JobKey(keys, kind, eventID, flow)
}

const idempotencyKeyPrefix = "rmd-"

func decodeJob(b []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("dispatch job is not valid JSON: %w", err)
	}
	if j.Version < 1 || j.Version > jobVersion || j.Key == "" || j.Flow == "" {
		return nil, fmt.Errorf("dispatch job is malformed (version %d, key %q, flow %q)", j.Version, j.Key, j.Flow)
	}
	return &j, nil
}
