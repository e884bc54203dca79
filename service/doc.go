// Package service assembles a running remediator from a configuration: the NATS connection
// (or an embedded JetStream server), the streams, the optional Okta Workflows simulator, the
// worker, and the HTTP server for health and metrics. It owns the order of start-up and the
// staged shutdown; `remediator run` is a thin command over [Run].
//
// Start-up refuses what cannot work before it touches anything, in this order: values out of
// range (config.Validate), secret references that resolve to nothing (config.CheckSecrets),
// a data directory held by another instance (the store lock, before any listener, so that a
// second instance with the same ports still names the first), busy ports (before the store
// is opened), and a NATS server whose max_payload cannot carry limits.maxEventBytes. An
// external NATS that is not up yet is waited for with backoff (nats.connectAttempts), with
// /healthz up and /readyz saying why it is not ready.
//
// The package sets no process-wide state: no environment variable (a generated simulator
// token is handed to the flows directly), no OpenTelemetry global (the tracer provider comes
// in [Options]). Every tunable is mapped explicitly from the configuration (mapping.go); the
// defaults live in package config only.
package service
