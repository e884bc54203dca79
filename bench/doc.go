// Package bench measures remediator against its baselines in one run on one machine: what
// JetStream alone does (broker.RawBaseline: publish, consume and ack of the same number and
// size of messages), what the simplest correct pipeline does (pull, validate with the same
// schema, POST to the flow, publish a status, ack: plain.go), and what the full pipeline does
// (service.Run in-process, N flows answered by a no-op HTTP 200 server with rate limits
// lifted, one flow per event, priorities mixed), and the full pipeline again across numbers
// of flows and of worker replicas, and at a fixed publish rate for latency per priority.
// `remediator bench` is a thin command over [Run].
//
// Every figure comes from this process: events/s from the first publish to the last
// terminal status (read from REMEDIATION_STATUS, matched by event id, stamped by the server
// that stored it), CPU per event from getrusage over the same span (the embedded server runs
// in this process, so it counts remediator and the server, and the publisher and the no-op
// flow server too, the same for every row), peak RSS per measurement (Linux: reset through
// /proc/self/clear_refs; elsewhere the process's peak so far). Each measurement of the full
// pipeline gets a fresh embedded server, so none inherits another's streams or consumers.
//
// A benchmark is not a test: [Run] fails only when the run cannot be completed or an event
// is unaccounted for (no terminal record, or more than one), never because a figure is low.
package bench
