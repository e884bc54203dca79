// Package broker owns everything NATS: the connection, JetStream streams,
// consumers and key-value buckets, and the optional embedded nats-server. It
// is the only package in remediator that imports nats.go, nats.go/jetstream
// or nats-server, and its API exposes none of their types: callers see
// [Broker], [Consumer], [Message], [KV], plain structs and the sentinel errors
// of this package.
//
// # Embedded or external
//
// [StartEmbedded] runs a single nats-server with JetStream inside the
// process (file storage in [EmbeddedConfig.StoreDir]); it is meant for a
// one-box install and for tests. A production deployment points [Connect] at
// an external NATS cluster instead. Either way the rest of the program talks
// to NATS through a [Broker] from [Connect], over a normal client connection
// ([Embedded.ClientURL] for the embedded server), so the code path is the
// same. The embedded server never traps signals; the caller stops it with
// [Embedded.Shutdown] after draining the [Broker].
//
// The embedded server locks its store directory (an OS file lock on
// remediator.lock, naming the holder's pid and address) for its lifetime: a
// second [StartEmbedded] on the same directory fails before touching the
// store, since two servers on one store lose each other's data.
//
// Durability note for the embedded server: JetStream acknowledges a publish
// once the message is written to the operating system, not once it is
// fsync'ed. By default the server fsyncs every two minutes, so a power loss
// (not a process crash) can lose up to that window of acknowledged messages.
// [EmbeddedConfig.SyncInterval] shortens the window at the cost of disk I/O.
//
// # Authentication
//
// Three roles use NATS ([Role]): the worker (`remediator run`), the operator (the CLI) and
// the publisher (whoever hands in findings). [Permissions] lists the subjects each may
// publish and subscribe to, remediator's own streams and buckets only, and the JetStream
// API operations per stream; each role subscribes only to its own inbox prefix
// ([Role.InboxPrefix], [ConnConfig.InboxPrefix]). [EnsureCredentials] keeps one NKey seed
// per role in a private directory (0700, files 0600), generated once and reused; given to
// [EmbeddedConfig.Credentials], the embedded server admits those keys only, each with its
// role's permissions. deployments/nats/remediator-auth.conf is the same for an external
// server, generated from [Permissions].
//
// # Configuration
//
// The configs of this package ([ConnConfig], [StreamsConfig],
// [ConsumerConfig], [KVConfig], [EmbeddedConfig]) hide no numeric defaults:
// every count and duration is set by the caller (package config holds the
// service's defaults) and a missing or out-of-range value is an error naming
// the field. Where "none" or "forever" makes sense it is an explicit value
// documented on the field (MaxReconnects -1 = forever, 0 = none; MaxDeliver
// and MaxAckPending -1 = unlimited; TTL and InactiveThreshold 0 = never).
// Package brokertest has the service's settings for tests.
//
// # Connecting
//
// [Connect] tries once and fails with a message saying what to do, as a CLI
// command should. A service started by an orchestrator before NATS sets
// [ConnConfig.RetryConnect] to keep trying with exponential backoff (each
// attempt logged) until its ctx ends. [Broker.Connected] is false while the
// connection is down or reconnecting, for readiness.
//
// # Errors and retries
//
// Errors wrap the sentinels of this package ([ErrStreamNotFound],
// [ErrConsumerNotFound], [ErrKeyExists], [ErrPayloadTooLarge]…). They are
// classified by the types and JetStream API error codes nats.go and the
// server give, never by their text.
//
// Set-up calls ([Broker.Provision], [Broker.KeyValue], [Broker.Consumer],
// [Consumer.Recreate]) retry with backoff, until ctx ends, what passes by
// itself: timeouts, no responders, a cluster without a meta or stream leader
// or that has not heard from its peers yet, and another replica creating the
// same stream, bucket or consumer at the same moment. So replicas started
// together against a fresh server or cluster all come up.
//
// [Broker.Publish] sends a message again when no stream answered (it was not
// stored), and when its acknowledgement was lost if it carries a Nats-Msg-Id
// (the duplicate window then stores it once); a message larger than
// [Broker.MaxPayload] fails at once with [ErrPayloadTooLarge].
//
// # Streams
//
// [Broker.Provision] creates, or updates in place, the five streams of the
// public contract (see ARCHITECTURE.md):
//
//	REMEDIATION_EVENTS    remediation.events.>    limits retention  incoming findings
//	REMEDIATION_DISPATCH  remediation.dispatch.>  work-queue        one job per (event, flow)
//	REMEDIATION_STATUS    remediation.status.>    limits retention  outcome records
//	REMEDIATION_DLQ       remediation.dlq.>       limits retention  dead-letter records
//	REMEDIATION_AUDIT     remediation.audit.>     limits retention  operator audit records
//
// All five keep messages for [StreamsConfig.MaxAge] and de-duplicate
// publishes carrying the same Nats-Msg-Id ([PublishOptions.MsgID]) within
// [StreamsConfig.DuplicateWindow]. Provision refuses (with a
// [*ProvisionError]) to touch a stream whose storage type or retention policy
// differs from what is wanted, because JetStream cannot change those in place.
// The DISPATCH stream is a work queue: an acked job is removed, and the server
// rejects two consumers on it whose filter subjects overlap.
//
// # Consuming and acknowledging
//
// Consumers are durable pull consumers with explicit acks; the caller asks
// for messages with [Consumer.Fetch] only when it has capacity, so waiting
// work stays in JetStream and nothing is prefetched beyond what was asked.
// Every message ends with exactly one of:
//
//   - [Message.Ack]: done. Ack is a plain ack, not a double ack: waiting for
//     the server's confirmation was a request per message and cost a quarter
//     of the dispatch throughput. The caller acks only after the message's
//     result is stored, so an ack lost on the way (a reconnect at the wrong
//     moment) only makes the message come back after AckWait, and its
//     handling finds the stored result (a job publish de-duplicated by its
//     Nats-Msg-Id, a job's terminal record) and acks it again.
//   - [Message.Nak] with a delay: retry later, without holding a worker. The
//     consumer's AckWait/BackOff does not apply to naks, so the caller picks
//     the delay.
//   - [Message.Term]: never redeliver (after dead-lettering it).
//
// [ConsumerConfig.MaxDeliver] caps deliveries: JetStream then stops
// delivering the message (it stays in the stream) and publishes an advisory
// when the consumer is next pulled; [Broker.WatchMaxDeliveries] reports it.
//
// A consumer deleted under a running Fetch (an operator, or its inactive
// threshold) makes Fetch fail with [ErrConsumerNotFound]; the caller brings
// it back with [Consumer.Recreate]. Fetch does not recreate it by itself,
// so that the caller sees, logs and reports (readiness) the event.
//
// Every goroutine a Fetch starts has ended when Fetch returns: a cancelled
// Fetch waits for its pull to end on the server (at most 300ms), handing
// back anything it brought.
//
// [Message.InProgress] extends AckWait for slow work. Nak, Term and
// InProgress are not confirmed by the server; if one is lost the message is
// simply redelivered after AckWait, which the worker tolerates anyway because
// every record it writes carries a de-duplication id.
//
// # Reading streams
//
// [Broker.GetMessage], [Broker.Scan], [Broker.Tail], [Broker.StreamInfo] and
// [Broker.ConsumerInfos] serve the operator CLI (dead-letter list, show,
// replay and purge; status history; tail). Scan and Tail use short-lived
// ordered consumers that never acknowledge, so reading a stream never changes
// what a worker will receive.
//
// # Key-value
//
// [Broker.KeyValue] opens a JetStream key-value bucket, used by the worker for
// attempt history, idempotency markers, kill switches and shared rate budgets.
// [KV.Create] and [KV.Update] are compare-and-set operations that fail with
// [ErrKeyExists] and [ErrRevisionMismatch].
package broker
