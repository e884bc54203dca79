// Package status defines the records remediator publishes about every event: a [Record] on
// the status stream for each attempt and result, and a [DeadLetter] on the dead-letter
// stream for each event that cannot succeed. Both are JSON, and both are public contract:
// other tools, dashboards and the remediator CLI read them.
//
// The package only describes and encodes records; publishing them is the worker's job.
package status
