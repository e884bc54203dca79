// Package e2e holds remediator's end-to-end fault-injection tests and throughput benchmarks.
// They run the real remediator binary as separate processes (so a worker can be killed with
// SIGKILL mid-call, mid-budget-wait or mid-shutdown) against an embedded JetStream server, or
// a 3-node JetStream cluster with replicated streams (brokertest.Cluster) whose servers the
// tests shut down and restart, and the Okta Workflows simulator.
//
// The tests run with the rest of the suite, with small counts; the benchmarks, which take
// minutes because Okta's per-flow limit is 10 invocations per second, run only when asked
// for. BENCHMARKS.md lists the commands and the figures.
package e2e
