// Package policy decides which flows an event triggers, on whose behalf, whether that
// principal may run them, and what each flow receives.
//
// ISPM issues follow routes: every route whose conditions all match (title, category,
// severity, entity type, source product; case-insensitive; an empty list matches anything)
// adds its flows, and each flow runs once per event however many routes name it.
//
// Entity-risk triggers follow Okta's entity-risk policy: active rules are tried in priority
// order, lowest first; the first whose conditions match (risk level, detection types included
// or excluded, users and groups included or excluded) decides. A rule with a flow runs it; a
// rule without one is log-only (Okta's "no further action") and stops evaluation. Okta's
// default rule, priority 99, matches everything and only records. A detection type UNKNOWN
// (a detection name Okta added later) matches rules with no detection condition or an exclude
// condition, never an include. An event that carries no group membership (Okta's
// user.risk.detect never does) is refused with [ErrGroupMembershipUnknown] when it reaches a
// rule that excludes groups, rather than have the exclusion ignored; a group inclusion does not
// include such a user.
//
// An event that runs no flow although nothing is wrong with it (no ISPM route takes it; it
// matches no custom rule; a log-only rule matches) gets an [UnroutedError] matching
// [ErrUnrouted]: the intake records it as skipped, naming why. [Router.Explain] reports every
// route or rule in order with whether it matched and why; [Router.ExplainOkta] does it for
// each risk event of a raw Okta event hook delivery or LogEvent file.
//
// Authorization follows Okta's delegated flows: a flow runs only for a principal assigned a
// resource set that holds the flow with the run permission (view lets it see the flow only).
// [Router.Principal] finds who asks: for an ISPM issue the Remediator-Principal header, else
// the event's oktaUserId, else the subject's default principal; for an entity-risk trigger the
// rule that routes it, "rule:<name>". [Router.Authorize] checks one flow and explains a
// refusal with an error wrapping [ErrUnauthorized]; [Router.Permissions] answers for tools.
// [Router.Inputs] applies a flow's input mapping.
package policy
