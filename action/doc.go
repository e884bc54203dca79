// Package action runs Okta's native remediation actions — clear the user's sessions,
// suspend, expire the password, remove from a group, set the user's risk — as a second kind
// of dispatch target beside Workflows flows. A configured flow with `action:` instead of
// `url:` becomes a [flow.Endpoint] whose Action and Params are set; the worker dispatches its
// jobs exactly like a flow's (same job records, retries, rate budget, breaker, idempotency,
// dry-run, blast-radius cap) and hands them to an [Invoker] through the same Invoke method
// the Workflows client has. The service routes action endpoints here and URL endpoints to
// flow.Client.
//
// # The user
//
// The user acted on is the job's input userId (the user at risk of an entity-risk event);
// else, for an ISPM issue, entityIdInService when entitySourceProductName is Okta (or
// absent). Never oktaUserId: for an ISPM issue it is the admin who ran the flow. A flow's
// input mapping can put any event input into userId. A job without a user is a permanent
// failure naming the inputs looked at.
//
// # Already in effect is success
//
// An action whose effect already holds succeeds, with a note in the status record's why:
//
//	clearSessions    Okta answers 204 whether or not the user had sessions.
//	suspend          Okta refuses a user who is not ACTIVE (HTTP 400, E0000001, "Cannot suspend
//	                 a user that is not active"): the user's status is read
//	                 (GET /api/v1/users/{id}); SUSPENDED is already in effect, any other status
//	                 is a permanent failure naming it.
//	expirePassword   a refusal (HTTP 400 or 403) is checked the same way: PASSWORD_EXPIRED is
//	                 already in effect.
//	removeFromGroup  Okta answers 204 whether or not the user was a member.
//	setUserRisk      an upsert: 200 (updated) or 201 (created).
//
// # Rate limits
//
// Every answer's X-Rate-Limit-Limit/Remaining/Reset is read. When Remaining is 0, the
// Result's Hold is the time until Reset (measured from the answer's Date, plus a second, as
// Okta's SDK does), and the dispatcher keeps the flow away that long, shared by every replica.
// A 429 (E0000047) is retryable with RetryAfter taken from X-Rate-Limit-Reset the same way.
// So an action's own rateLimit may be set high: Okta's headers bind.
//
// # Outcomes
//
// 2xx (and already in effect) is success; 429, 5xx and network failures are retryable; a
// token Okta still refuses after one refresh (E0000011), a missing scope, a refused
// client assertion and any other 4xx are permanent. Okta's error object is carried in
// flow.Error.Okta, so it reaches the status and the dead letter. The Result keeps Okta's
// answer: its body (capped) and its headers (redacted).
package action
