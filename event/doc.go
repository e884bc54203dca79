// Package event is remediator's model of an incoming finding: an Okta ISPM issue (from the
// delegated-flow "on demand" shape or the ISPM webhook envelope) or an Okta ITP entity-risk
// event (remediator's trigger, or Okta's own user.risk.detect / user.risk.change System Log
// LogEvent), normalised into one [Event].
//
// The package has no dependencies. Validation against the JSON Schemas is the job of package
// schema; [Decode] assumes a document that has passed it, but still returns errors rather
// than panicking on anything else.
//
// What every door shares:
//
//   - [CheckJSON] refuses JSON that can be read two ways (duplicate keys, invalid UTF-8,
//     unpaired surrogates). Decode and package schema call it; an HTTP ingress calls it on
//     a body before anything else, so it refuses what the intake would dead-letter as
//     invalid_json.
//   - [SplitHookDelivery] splits an Okta event-hook delivery into its LogEvents, each with
//     its raw bytes, eventType and uuid, so an ingress publishes each risk LogEvent as it is.
//   - [ParseRiskData], [RiskValue] and [DetectionTypeForName] read the debugData.risk string
//     of a risk LogEvent and map its detection name to a riskDetectionTypes value (or
//     [DetectionUnknown]).
package event
