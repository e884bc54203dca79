// Package policy decides which flows an event triggers.
//
// ISPM issues follow routes: every route whose conditions all match (title, category,
// severity, entity type, source product; case-insensitive; an empty list matches anything)
// adds its flows, and each flow runs once per event however many routes name it.
//
// Entity-risk triggers follow Okta's entity-risk policy: active rules are tried in priority
// order, lowest first; the first whose conditions match (risk level, detection types included
// or excluded, users and groups included or excluded) runs its one flow. Okta's default rule,
// priority 99, matches everything and only records; an event that reaches it is reported as
// having no route, so that it is seen rather than silently dropped.
package policy
