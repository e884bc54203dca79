// Package flow invokes Okta Workflows flows through their API Endpoint and classifies every
// possible outcome of that call.
//
// # What it calls
//
// An API Endpoint flow is invoked with
//
//	POST https://{org}.workflows.okta.com/api/flo/{alias}/invoke
//	Content-Type: application/json
//	Idempotency-Key: <key>
//	x-api-client-token: <client token>
//
//	{"eventId": "…", "issueSeverity": "High", …, "idempotencyKey": "<key>"}
//
// The body is one flat JSON object: each [Request.Inputs] value must be text, a number,
// true/false or a [time.Time] (sent as RFC 3339 in UTC), because that is all a Workflows
// card input can hold. Lists, maps, structs, pointers and nil are refused before anything
// is sent. The idempotency key travels twice, as the Idempotency-Key header and as the body
// field "idempotencyKey", so a flow can de-duplicate on either (Okta does not de-duplicate
// invocations itself; a flow that dedupes keeps the key in a Workflows table).
//
// The response body is the flow's output. The Return card always answers 200; Return Raw
// may answer 200 or 400–599. The execution id comes back in a response header whose name
// Okta does not document: [Endpoint.ExecutionIDHeader] (default "X-Execution-Id") is read
// first, then any header whose name contains "execution-id". [Result.Header] carries every
// response header so callers can record them, redacted ([RedactHeader]: secret-looking
// names, and the request's credentials wherever they are echoed); [Result.Body] keeps the
// start of the output (ClientConfig.MaxResultBody), credentials cut out too.
//
// An [Endpoint] may name an Okta native action (Endpoint.Action) instead of a URL: such an
// endpoint is for package action's invoker, and [Client] refuses it. [NewError] lets such a
// target report its failures with this package's outcome classes.
//
// # Authentication
//
// An [Authorizer] adds credentials to each request. [ClientToken] sends the flow's client
// token in the x-api-client-token header, read from a [TokenSource]: [TokenFromEnv],
// [TokenFromFile] (re-read when the file changes, for Kubernetes secret rotation) or
// [StaticToken]. [OAuth2] sends "Authorization: Bearer <token>" for a flow secured with
// OAuth 2.0; its tokens come from a [BearerSource] (in production *okta.TokenSource for scope
// okta.workflows.invoke.manage, cached and shared by every goroutine). When such a flow
// answers 401, Invoke invalidates the rejected token and sends the request once more with a
// fresh one (a 401 means the flow did not run, so this cannot run it twice); a second 401 is
// permanent. A client token is never retried. A nil Authorizer sends no
// credentials (a public flow, or a client token already in the URL's ?clientToken= query).
// Credentials, Authorization values and the URL's query string never appear in an error.
//
// # Outcome table
//
// [Client.Invoke] returns nil on success and otherwise an [*Error] whose [Error.Class] says
// what the caller should do next. [Classify] is the HTTP part of this table.
//
//	outcome                                          class      OutcomeUnknown
//	-----------------------------------------------  ---------  ------------------------------
//	2xx                                              success    –
//	408, 425, 429, any 5xx                           retryable  false
//	any other 4xx, 1xx, 3xx (redirects not followed) permanent  false
//	invalid input or endpoint (nothing sent)         permanent  false
//	connection refused / reset, DNS, dial, TLS       retryable  true if the request was written
//	per-call timeout or caller's deadline            retryable  true if the request was written
//	caller cancelled ctx (wraps context.Canceled)    retryable  true if the request was written
//	credentials could not be loaded (nothing sent)   retryable  false
//
// Okta's error object in a failed answer ({errorCode, errorSummary, errorId, errorCauses})
// is kept in [Error.Okta].
//
// A failed credential load is retryable because a rotating secret may reappear; a 401 from
// the flow is permanent. RetryAfter is taken from Retry-After (delta-seconds or HTTP-date)
// on any failed response, else from X-Rate-Limit-Reset (Okta's UTC epoch seconds) on a 429,
// measured from the response's Date header when present, so clock skew does not matter.
// It is capped at one hour.
//
// # Why a timeout after sending is "outcome unknown"
//
// Okta Workflows closes the caller's connection after 60 s but keeps the flow running, and
// a flow that answers early (API Connector Close) runs on after answering. So once the
// request has been written (observed with net/http/httptrace's WroteRequest), a timeout or a
// broken connection says nothing about whether the flow ran: [Error.OutcomeUnknown] is set,
// the caller must retry with the same idempotency key, and the flow must de-duplicate. The
// per-call [Endpoint.Timeout] (default 30 s) must stay below Okta's 60 s cut-off so that we,
// not Okta, decide when to give up. Note that Go's HTTP transport may itself resend a
// request carrying an Idempotency-Key once, on a reused keep-alive connection the server
// closed before answering; the key makes that safe.
package flow
