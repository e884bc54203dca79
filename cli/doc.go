// Package cli is the remediator command line: `run` starts the service, and the other
// commands publish events, follow results and operate the dead-letter stream against a
// running service (embedded or external NATS). Commands print tables for people and JSON
// (--json) for scripts.
package cli
