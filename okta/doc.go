// Package okta is remediator's client of one Okta org: an API Services app that
// authenticates with OAuth 2.0 client credentials and private_key_jwt, caches its access
// tokens, and calls the Okta management API and Workflows flows secured with OAuth 2.0.
//
// # Tokens
//
// A token is asked of the org authorization server, never a custom one (Workflows and the
// management API accept only org tokens):
//
//	POST https://{org}/oauth2/v1/token
//	grant_type=client_credentials&scope=okta.workflows.invoke.manage
//	&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
//	&client_assertion=<JWT signed with the app's private key>
//
// The client assertion is signed by go-jose with the configured [Key] (RS256 for RSA keys,
// ES256/384/512 for EC keys), carries the key id in its "kid" header, and has iss = sub =
// the client id, aud = the token URL, a fresh random jti (Okta refuses a jti it has seen),
// iat = now and a short exp ([DefaultAssertionLifetime], at most an hour). The request and
// its answer go through golang.org/x/oauth2's clientcredentials.
//
// [Client.AccessToken] keeps one token per scope set (order and duplicates do not matter)
// until [DefaultRefreshBefore] before it expires, measured on the client's clock from the
// moment the request was sent. Every goroutine shares it; concurrent callers needing a new
// token share one request (singleflight), which runs on its own timeout so that one caller
// giving up does not fail the others. When an API answers 401, the caller drops exactly the
// token that was refused ([Client.Invalidate]: a token already replaced is left alone) and
// sends once more with a fresh one: [Transport] and [Client.Do] do this for the management
// API, flow.OAuth2 for Workflows. A second 401 is returned as it is.
//
// # Calls
//
// [Client.Do] calls any management API path with the scopes it needs. Typed calls cover
// what remediator uses: [Client.UserGroups] (people.groups conditions),
// [Client.ClearSessions] (TERMINATE_ALL_SESSIONS), [Client.Suspend], [Client.ExpirePassword],
// [Client.RemoveFromGroup], [Client.SetUserRisk], [Client.EntityRiskRules] (policy import), and
// [Client.LogPage] with [LogsPath] (System Log polling, following Okta's next link, which a
// polling query always gets). [GroupCache] keeps [Client.UserGroups] answers for a short TTL
// and a bounded number of users, for the people.groups conditions. [ParseRateLimit] reads X-Rate-Limit-Limit/Remaining/Reset so
// a caller can budget per endpoint; [RateLimit.Wait] measures the reset from the response's
// Date, as Okta's SDK does.
//
// [Actions] is the table of native remediation actions (name, call, scope, params) that
// configuration and package action share. [Client.Send] makes a call and returns Okta's
// answer as it came (status, headers, a capped body) for callers that keep it;
// [Client.UserStatus] reads a user's status, which tells an action already in effect from a
// refusal.
//
// # Errors
//
// Failures are [*Error], matched with errors.Is against a kind (ErrInvalidClient,
// ErrScopeNotGranted, ErrDPoPRequired, ErrTokenRejected, ErrForbidden, ErrNotFound,
// ErrRateLimited, ErrUnavailable, …). It carries Okta's error object (errorCode,
// errorSummary, errorId, errorCauses) or OAuth error (error, error_description, also read
// from a WWW-Authenticate challenge) and a hint an Okta admin can act on: a refused
// assertion names the key id and client id to check, an ungranted scope names the scope
// and the app's "Okta API Scopes" tab, and an app that demands DPoP names the setting to
// turn off ("Require Demonstrating Proof of Possession (DPoP) header in token requests";
// remediator does not send DPoP proofs). [Error.Retryable] is true only for rate limits,
// 5xx and network failures.
//
// # Secrets
//
// No token, assertion or key material is ever logged, put in an error, or printed: [Key],
// [Client] and [TokenSource] format themselves (String, GoString, Format, LogValue,
// MarshalJSON) as the key id, algorithm, org and client id only. The logs say when a token
// was fetched (scopes, lifetime) or refused (the error), never what it was.
//
// # Testing
//
// flowsim serves an org (Config.Org) whose token endpoint verifies assertions the way Okta
// documents it, so this package is tested over real HTTP against it.
package okta
