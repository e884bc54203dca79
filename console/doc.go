// Package console is the ops console: web pages served by the service itself on the admin
// listener at /ui/, beside /healthz and /metrics.
//
//   - Overview: per flow, the last minutes' outcomes, rate budget use, breaker, brakes,
//     blast-radius window and backlog per priority; intake and dead letters by reason; a
//     server-rendered SVG chart of outcomes and time to remediate. It refreshes in place
//     (a few lines of our own JavaScript poll a fragment); without JavaScript it still reads.
//   - Events: search by event id, user, issue or flow; one event's journey.
//   - Dead letters: filter, read one (payload and headers redacted), replay with a preview
//     first and at the flow's rate budget, purge with confirmation.
//   - Brakes: pause/resume and dry-run per flow or every flow, with confirmation.
//
// Everything it reads and changes goes through package ops (and its dlq store), the same
// calls the command line makes, so the two cannot disagree.
//
// Access is never open. A request authenticates with the console token (Authorization:
// Bearer, or basic auth with the token as password), with a session cookie from the login
// page (HttpOnly, SameSite=Strict, Secure except over plain HTTP to a loopback address), or,
// when configured, through OpenID Connect sign-in with the org's Okta. The principal is
// checked against the resource sets before any change: only a principal that may run a flow
// may replay its dead letters, purge them, or switch its brakes. Every change is audited with
// who made it. Every POST must carry the page's CSRF token and pass net/http's
// CrossOriginProtection.
//
// Middleware, outermost first: recover → security headers → request timeout → cross-origin
// protection → authenticate → CSRF check (POST) → page.
//
// Templates and static files are embedded (go:embed); nothing is fetched from a CDN.
package console
