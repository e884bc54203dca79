// Package schema validates incoming event documents against remediator's JSON Schemas
// before package event normalises them.
//
// # Schemas
//
// The schemas are JSON Schema draft 2020-12 documents embedded in the binary (see [Files])
// and compiled once by [New]; nothing is ever loaded from the network. One schema per
// [event.Shape]:
//
//   - ispm-issue-ondemand.v1.json: the flat, all-string input set Okta ISPM sends to a
//     delegated flow when an admin runs a remediation on demand ([event.ShapeISPMOnDemand]).
//   - ispm-issue-webhook.v1.json: the ISPM outbound webhook envelope, type "issue.created"
//     ([event.ShapeISPMWebhook]).
//   - entity-risk-trigger.v1.json: remediator's flat entity-risk trigger, modelled on Okta
//     ITP's user.risk.detect and entity-risk policy rules ([event.ShapeEntityRisk]).
//   - okta-logevent-risk.v1.json: Okta's own System Log LogEvent for user.risk.detect and
//     user.risk.change, as an event hook delivers it (one element of data.events; see
//     [event.SplitHookDelivery]) or any other path forwards it ([event.ShapeOktaLogEventRisk]).
//
// [Validator.Validate] picks the shape from the event kind and the document: for ISPM
// issues a top-level "eventData" or "type" member means the webhook envelope; for
// entity-risk events a top-level "uuid", "published" or "cloudEventsVersion" member means
// an Okta LogEvent, anything else remediator's trigger. Both entity-risk shapes are
// accepted on remediation.events.itp.
//
// A LogEvent's risk is a free-text {key=value, ...} string (debugData.risk) that no schema
// can describe: after the schema check, Validate decodes a LogEvent and reports what
// decoding refuses (no readable risk level, or one that is not NONE, LOW, MEDIUM or HIGH)
// as a violation with the keyword "decode", so that a LogEvent that validates always
// decodes. Risk levels are read in any case in both shapes (the "risk-level" format of the
// trigger schema).
//
// The schemas are open: unknown properties are accepted (and ignored by package event) so
// that a field Okta adds later does not send events to the dead-letter stream. What a schema
// does say is enforced: required fields, string types, enums and, for the entity-risk
// eventTime, the RFC 3339 date-time format (format assertion is on).
//
// # Versioning
//
// Each schema's $id ends in <shape>.v<N>.json, e.g.
// https://github.com/remediator/remediator/schema/ispm-issue-ondemand.v1.json, and
// [Validator.SchemaID] reports it so that dead-letter records can name the schema an event
// failed. A compatible change (a new optional field, a looser constraint) edits the file in
// place; an incompatible one adds a v<N+1> file with a new $id.
//
// # Errors
//
// Validation fails with one of two error types, both usable with errors.As:
//
//   - *[SyntaxError]: the bytes are not a single JSON value (including empty input and
//     trailing data); or they are JSON that can be read two ways, which RFC 8259 leaves
//     open and I-JSON (RFC 7493) forbids: an object with the same member name twice at any
//     depth (`invalid JSON at byte 71: duplicate key "issueTitle" at /`), or a string with
//     invalid UTF-8 or an unpaired surrogate escape (`invalid JSON at byte 49: invalid UTF-8
//     in string`), see [event.CheckJSON]; or the document is larger than [MaxDocumentBytes]
//     (then it also matches [ErrTooLarge] with errors.Is). Intake dead-letters all of these
//     as invalid_json.
//   - *[ViolationError]: the bytes are JSON but break the schema, including a top level that
//     is not an object. It lists every leaf [Violation], sorted, each with a JSON pointer into
//     the document; a missing required property is reported at the pointer of the missing
//     property itself.
//
// Both are permanent: retrying the same bytes gives the same answer. Other errors
// ([ErrUnknownKind], [ErrUnknownShape]) are programming errors of the caller. Types of the
// underlying jsonschema library never cross this package's boundary.
package schema
