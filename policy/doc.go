// Package policy decides which flows an event triggers, on whose behalf, whether that
// principal may run them, and what each flow receives.
//
// ISPM issues follow routes: every route whose conditions all match (title, category,
// severity, entity type, source product; case-insensitive; an empty list matches anything)
// adds its flows, and each flow runs once per event however many routes name it.
//
// Entity-risk triggers follow Okta's entity-risk policy: active rules are tried in priority
// order, lowest first; the first whose conditions match (risk level, detection types included
// or excluded, users and groups included or excluded) runs its one flow. Okta's default rule,
// priority 99, matches everything and only records; an event that reaches it is reported as
// having no route, so that it is seen rather than silently dropped. [Router.Explain] reports
// every route or rule in order with whether it matched and why.
//
// Authorization follows Okta's delegated flows: a flow runs only for a principal assigned a
// resource set that holds the flow with the run permission (view lets it see the flow only).
// [Router.Principal] finds who asks: for an ISPM issue the Remediator-Principal header, else
// the event's oktaUserId, else the subject's default principal; for an entity-risk trigger the
// rule that routes it, "rule:<name>". [Router.Authorize] checks one flow and explains a
// refusal with an error wrapping [ErrUnauthorized]; [Router.Permissions] answers for tools.
// [Router.Inputs] applies a flow's input mapping.
package policy
