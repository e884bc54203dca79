// Package backfill polls an Okta org's System Log for the risk events remediator acts on and
// publishes each one to remediation.events.itp, so that no event is lost to a gap in the
// event hook's delivery, and so that an org which cannot reach remediator over HTTPS can feed
// it at all.
//
// # Why
//
// Okta retries an event-hook delivery once, on a 5xx, and never on a timeout or a 4xx: a
// delivery made while remediator or JetStream was down is gone from the hook. The System Log
// keeps it (90 days). The poller reads /api/v1/logs with the configured filter (default
// eventType eq "user.risk.detect" or eventType eq "user.risk.change"), in ascending order,
// following the next link Okta gives every polling query, and publishes what it reads.
//
// # Exactly once
//
// Each LogEvent is published with the de-duplication id the event-hook ingress gives it: its
// uuid as Nats-Msg-Id (a LogEvent without one: "sha256:" and the hash of its bytes). An event
// that both the hook and the poller deliver within JetStream's duplicate window
// (streams.duplicateWindow) is stored once. Beyond the window it is stored twice, but it is
// remediated once: its dispatch jobs have the same keys (event id, flow), whose terminal
// records in remediation_jobs (kept streams.maxAge) stop a second run. That is why the
// configuration refuses a lookback longer than streams.maxAge, and why no separate record of
// seen uuids is kept: it would repeat, with its own expiry to get right, what the job records
// already guarantee where it matters, at the flow call.
//
// # Cursor and lease
//
// The cursor (where the next poll starts: Okta's next link and the published time of the
// last event read) lives in the remediation_backfill bucket, key "cursor", written only after
// every event of the page is stored by JetStream; a restart resumes from it, and a first
// start reads Lookback back. Only one replica polls: it holds the "lease" key, renewed every
// poll and taken over by another replica once it has expired (three intervals, at least
// 30s); every write is a compare-and-set on the revision last seen, so a replica that lost
// the lease stops writing. A next link Okta no longer accepts is replaced by a query from the
// last published time (an event at that time is read again and is a duplicate).
//
// # Rate limit
//
// The System Log has its own rate limit, shared by every client of the org. The poller reads
// X-Rate-Limit-Remaining and -Reset on each answer: once a tenth of the window or less is
// left, it waits for the reset (measured from the answer's Date), leaving the rest to other
// clients; a 429 waits for the reset too. It reads page after page while pages come back
// full, then waits Interval.
package backfill
