// Package event is remediator's model of an incoming finding: an Okta ISPM issue (from the
// delegated-flow "on demand" shape or the ISPM webhook envelope) or an Okta ITP entity-risk
// trigger, normalised into one [Event].
//
// The package has no dependencies. Validation against the JSON Schemas is the job of package
// schema; [Decode] assumes a document that has passed it, but still returns errors rather
// than panicking on anything else.
package event
