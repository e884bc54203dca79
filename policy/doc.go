// Package policy decides which flows an event triggers, on whose behalf, whether that
// principal may run them, and what each flow receives.
//
// ISPM issues follow routes: every route whose conditions all match (title, category,
// severity, entity type, source product; case-insensitive; an empty list matches anything)
// adds its flows, and each flow runs once per event however many routes name it.
//
// Entity-risk triggers follow Okta's entity-risk policy: active rules are tried in priority
// order, lowest first; the first whose conditions match (risk level, detection types included
// or excluded, users and groups included or excluded) decides. Its action says what runs:
// RUN_WORKFLOW its flow, TERMINATE_ALL_SESSIONS its flow or the configured clearSessions flow
// (config.RuleFlow), NONE nothing (Okta's "no further action": evaluation stops). Okta's
// default rule, priority 99, matches everything and only records. A detection type UNKNOWN
// (a detection name Okta added later) matches rules with no detection condition or an exclude
// condition, never an include.
//
// Okta's user.risk.detect carries no group membership. With [WithGroupLookup] (the service
// gives it one over the org client, cached), a rule with people.groups conditions is decided on
// the user's groups, looked up once per evaluation; a look-up that fails is a
// [*GroupLookupError] ([ErrGroupLookup]), which the intake retries: never a guess either way.
// Without a look-up, an event that carries no membership is refused with
// [ErrGroupMembershipUnknown] when it reaches a rule that excludes groups, rather than have
// the exclusion ignored; a group inclusion does not include such a user.
//
// [ImportOktaRules] maps the org's ENTITY_RISK rules (as the Policy API returns them) to
// remediator rules, Okta's integer workflow ids to the flows with that workflowId, refusing
// what cannot be mapped rule by rule; [DiffRiskRules] says where a configuration and the org
// disagree.
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
