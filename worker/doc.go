// Package worker is remediator's pipeline: it takes events from JetStream, validates and
// routes them, invokes flows, and records every result.
//
// # Stages
//
// Intake consumes REMEDIATION_EVENTS with one durable consumer shared by all replicas. For
// each event it validates the document, normalises it, routes it, authorizes its principal for
// every flow, and stores one dispatch job per triggered flow in REMEDIATION_DISPATCH; only then
// does it ack the event.
//
// Dispatch consumes REMEDIATION_DISPATCH with one durable consumer per flow and priority, so
// that a saturated or failing flow never delays another and urgent work goes first. A flow's
// jobs are fetched only while it is not held (circuit breaker open, paused by an operator,
// blast-radius cap full) and called only once a slot of its rate budget — shared by all
// replicas through a JetStream KV key — has come. It invokes the flow (with a few quick
// in-process retries) and records the result.
//
// # Handler contract
//
// Both stages are a [Handler] wrapped in [Middleware]. The chain, outermost first, is
//
//	trace → log → record → recover → stage handler
//
// trace starts the consumer span (linked to the producer's), log writes one line per
// delivery, record turns the handler's result into stored records (status, dead letter,
// dispatch jobs), recover turns a panic into a dead letter so that a poison event cannot crash
// the worker or loop forever.
//
// # Outcomes are errors
//
// A handler returns nil for success, a [*RetryError] (see [Retry]) to be tried again later, or
// a [*DeadLetterError] (see [DeadLetter]) when the event cannot succeed. The runner acks,
// naks with delay, or terminates the message accordingly — and it acks or terminates only
// what the record middleware has stored; anything else is nak'ed and comes back.
package worker
