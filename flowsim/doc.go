// Package flowsim simulates Okta Workflows API Endpoint flows: an [http.Handler] that answers
// /api/flo/{alias}/invoke the way Okta does, enforces Okta's per-flow rate limit, injects
// faults on demand, and records every call so tests and operators can see what a dispatcher
// really did. remediator's worker runs against it in tests, in docker-compose, and behind
// `remediator flowsim`.
//
// # The invoke API it imitates
//
//	POST|GET /api/flo/{alias}/invoke
//	x-api-client-token: <token>        (or ?clientToken=<token>)
//	Idempotency-Key: <key>             (or body/query field "idempotencyKey")
//	{"eventId": "…", "issueSeverity": "High", "idempotencyKey": "…"}
//
//	200 {"executionId": "…", "status": "ok"}   X-Execution-Id: …
//
// A call is checked in this order, and the first check that fails answers it:
//
//  1. route: unknown alias → 404 E0000007; a method other than GET/POST → 405 E0000022.
//  2. auth: a flow with a Token needs it in x-api-client-token or ?clientToken= (compared in
//     constant time); an OAuth flow needs "Authorization: Bearer" with a live token of the
//     org's authorization server carrying okta.workflows.invoke.manage (and, if
//     [Simulator.SetFlowClients] was called, of an assigned client) → else 401 E0000011
//     "Invalid token provided".
//  3. rate limit: a token bucket per flow, rate = Flow.RateLimit (default 10/s, Okta's
//     per-flow limit), burst = ceil(rate) → else 429 E0000047 with X-Rate-Limit-Limit,
//     X-Rate-Limit-Remaining and X-Rate-Limit-Reset (epoch second by which the next call
//     will be admitted). Like Okta, no Retry-After.
//  4. injected faults ([Faults]): a fixed Status; RateLimitRate → 429 with Retry-After: 1;
//     ErrorRate → 500, 502 or 503.
//  5. body: a JSON object of scalars (text, number, true/false, null), because a Workflows
//     card input cannot hold a list or an object → else 400 E0000001. A GET takes its inputs
//     from the query string.
//  6. execute, then answer 200; or, for a TimeoutRate fault, execute and never answer.
//
// Every answer waits Latency (+ jitter) first. Rate-limit headers are on every answer from
// step 3 on. Error bodies are Okta error objects
// ({"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}).
//
// # Idempotency
//
// Each flow behaves like a well-built flow that de-duplicates in a Workflows table: a call
// whose idempotency key has already executed is answered 200 with the same execution id,
// is recorded with Duplicate set, and does not run again. A call whose answer was lost (a
// TimeoutRate hang, or a client that gave up during Latency) still executed, so its retry is
// a duplicate. Like the table row, the key is written when the execution finishes (after
// Latency): two calls with the same key that overlap both execute, and
// [Stats].MaxExecutionsPerKey shows it. It stays 1 when the dispatcher never sends the same
// job twice at once. Calls without a key always execute. The key table grows with distinct
// keys until [Simulator.Reset].
//
// # Inspection
//
// The Go methods ([Simulator.Invocations], [Simulator.Stats], [Simulator.SetFaults],
// [Simulator.Reset]) have HTTP twins under /_sim/:
//
//	GET    /_sim/flows                           flows with faults and stats
//	GET    /_sim/flows/{alias}/invocations?limit=N   the last N recorded calls (JSON)
//	DELETE /_sim/flows/{alias}/invocations       Reset
//	GET    /_sim/flows/{alias}/faults            current Faults
//	PUT    /_sim/flows/{alias}/faults            replace Faults, e.g. {"errorRate":0.2,"latency":"250ms"}
//
// Neither they nor the Debug log line written per call ever show a token; recorded headers
// have the client-token and Authorization values replaced by "REDACTED".
//
// # The org
//
// With [Config].Org the simulator is also an Okta org:
//
//	POST   /oauth2/v1/token                            client credentials + private_key_jwt
//	GET    /api/v1/users/{id}                          okta.users.read (or .manage): id, status, login
//	GET    /api/v1/users/{id}/groups                   okta.users.read (or .manage, okta.groups.read)
//	DELETE /api/v1/users/{id}/sessions                 okta.users.manage, 204
//	POST   /api/v1/users/{id}/lifecycle/suspend        okta.users.manage, ACTIVE → SUSPENDED; else 400
//	                                                   E0000001 "Cannot suspend a user that is not active"
//	GET|PUT /api/v1/users/{id}/risk                    okta.userRisk.read / .manage
//	POST   /api/v1/users/{id}/lifecycle/expire_password okta.users.manage
//	DELETE /api/v1/groups/{gid}/users/{id}             okta.groups.manage, 204 (OKTA_GROUP only)
//	GET    /api/v1/policies?type=ENTITY_RISK           okta.policies.read, the one system policy
//	GET    /api/v1/policies/{id}/rules                 its rules ([OrgConfig].EntityRiskRules + catch-all)
//	GET    /api/v1/logs                                okta.logs.read, since/until/filter/limit/after
//
// The token endpoint verifies the client assertion the way Okta documents it: signature by
// the registered public key its kid names, iss = sub = client id, aud = the token URL, exp in
// the future and at most an hour ahead, a jti used once; then it checks that every
// requested scope is granted and issues an opaque Bearer token living
// [OrgConfig].TokenLifetime. An app with RequireDPoP gets Okta's invalid_dpop_proof.
// Management API answers carry X-Rate-Limit-Limit/Remaining/Reset (a 60 s window per
// endpoint, [OrgConfig].APIRateWindow) and a Date on the simulator's clock, and 429 E0000047
// past the limit. [Simulator.OrgCalls] lists every management call answered, with its time,
// status and rate-limit headers, so tests can check when calls were made against what the
// headers announced. A polling /api/v1/logs request (no until)
// always gets a next link. Exact error texts Okta does not document are guessed and marked
// so in the code. Tests revoke tokens ([Simulator.RevokeToken], [Simulator.RevokeTokens]),
// rotate keys ([Simulator.SetClientKeys]), add System Log events
// ([Simulator.AddLogEvents]) and read users back ([Simulator.User], [Simulator.OrgStats]);
// /_sim/org/ has HTTP twins (stats, users/{id}, clients/{id}/jwks, revoke, logs).
//
// The org evaluates its own ENTITY_RISK policy ([Simulator.EvaluateEntityRisk]: the first
// ACTIVE rule by priority whose level, detection types and people conditions match, the user's
// groups taken from the directory), so tests can compare an imported policy with the org's
// verdicts; where Okta documents no semantics the code says it guessed. With an event hook
// ([Simulator.SetEventHook]) the org POSTs the risk events [Simulator.AddLogEvents] logs as a
// com.okta.event_hook delivery, with Okta's 3 s timeout and one retry on a 5xx, and counts
// deliveries lost ([OrgStats]); the events stay in the System Log.
//
// Fault draws come from a per-flow generator seeded from [Config].Seed, so a sequential run
// with a fixed seed is reproducible. The simulator is safe for concurrent use.
package flowsim
