// Package worker is remediator's pipeline: it takes events from JetStream, validates and
// routes them, invokes flows, and records every result.
//
// # Stages
//
// Intake consumes REMEDIATION_EVENTS with one durable consumer shared by all replicas. For
// each event it checks its size against MaxEventBytes (a larger one is dead-lettered as
// too_large, by reference only), validates the document, normalises it, routes it, authorizes
// its principal for every flow, and stores one dispatch job per triggered flow in
// REMEDIATION_DISPATCH; only then does it ack the event. A job (version 2, see [Job]) refers
// to its event by sequence and carries no copy of it.
//
// Dispatch consumes REMEDIATION_DISPATCH with one durable consumer per flow and priority, so
// that a saturated or failing flow never delays another and urgent work goes first. A flow's
// jobs are fetched only while it is not held (circuit breaker open, paused by an operator,
// blast-radius cap full, penalised by a 429's Retry-After, or held by an answer saying the
// target's rate-limit window is spent: flow.Result.Hold) and called only once a slot of its
// rate budget — shared by all replicas through a JetStream KV key — has come. A fetched job is
// kept alive by heartbeats from the moment of fetch; one whose slot is further away than half
// the ack wait is handed back with a delay instead of being held (and no slot is booked for
// it). Dispatch invokes the flow (with a few quick in-process retries) and records the
// result; a dead letter embeds the event, loaded by its sequence.
//
// # Fetching
//
// A runner fetches in batches as large as its free slots allow (a flow's, also at most
// 100 ms of its rate budget), most urgent priority first, and hands each message to a handler
// goroutine that then waits a while for the next. An idle dispatch runner asks JetStream
// nothing: a plain subscription on the dispatch subjects ([Doorbells]) rings the runner of
// the flow a job was published for, and a job handed back with a delay rings it when due; a
// slow safety poll catches a lost ring. So idle flows cost nothing however many there are,
// and a job published to an idle flow is taken at once — never after a poll of less urgent
// work. Intake, one consumer whatever the number of flows, long-polls. Intake parses an
// event once and publishes its jobs at once, gathering their acknowledgements before the
// event is acked.
//
// # Handler contract
//
// A stage is a [Handler] turned into a [Step] by its record middleware, wrapped in more
// middleware. The chain, outermost first, is
//
//	trace → log → record → recover → stage handler
//
// trace starts the consumer span (linked to the producer's), log writes one line per
// delivery, record turns the handler's result into stored records (status, dead letter,
// dispatch jobs, job state) and returns a [Result] saying whether it is stored, recover turns
// a panic into a dead letter so that a poison event cannot crash the worker or loop forever.
// What passes between them travels in return values: the dispatch handler returns the job
// state it changed to its recorder, the recorder returns the Result to the runner.
//
// # Outcomes are errors
//
// A handler returns nil for success, a [*RetryError] (see [Retry]) to be tried again later, or
// a [*DeadLetterError] (see [DeadLetter]) when the event cannot succeed. The runner acks,
// naks with delay, or terminates the message accordingly — and it acks or terminates only
// what the record step says is stored; anything else is nak'ed and comes back. Every consumer
// caps deliveries (MaxDeliver): on the last one, a result that would be retried is
// dead-lettered as retries_exhausted; if even that cannot be stored the message stays in its
// stream and the MAX_DELIVERIES advisory is an error log and a metric. Final records are
// written on a context detached from shutdown's cancellation, so a result obtained is never
// lost to it.
//
// # Records that cannot be forged
//
// Everything the worker writes for itself is signed with the primary record key
// ([Config.Keys]): stream records in the Remediator-Mac header, job records and switch values
// in a sealed envelope. A dispatch job that does not verify is dead-lettered as unverified,
// never run; one that verifies is re-checked against the configuration (route or rule, grant)
// before the call. A job record or a switch value that does not verify is ignored with an
// alert. Every change to the controls bucket is audited on remediation.audit.controls. Job
// keys are a keyed hash. See sealing.go and controlaudit.go.
//
// # Dependencies
//
// The worker reaches JetStream through small interfaces ([Broker], [Source], [Message], [KV],
// [Bucket], [Advisories]); [JetStream] adapts a *broker.Broker, and tests use fakes.
package worker
