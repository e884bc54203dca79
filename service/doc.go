// Package service assembles a running remediator from a configuration: the NATS connection
// (or an embedded JetStream server), the streams, the optional Okta Workflows simulator, the
// worker, and the HTTP server for health and metrics. It owns the order of start-up and the
// staged shutdown; `remediator run` is a thin command over [Run].
package service
