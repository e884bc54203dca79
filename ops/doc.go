// Package ops is what an operator does to a running remediator, whatever the front end: the
// command line (package cli) and the web console (package console) both call it, so that they
// cannot disagree.
//
//   - [Ops.Stats]: backlog per stream and consumer, dead letters by reason, and per flow the
//     recent succeeded / failed / retrying counts and call latency (`remediator stats`);
//   - [Ops.Outcomes]: the same status records bucketed in time, for a chart;
//   - [Ops.EventHistory] and [Ops.SearchEvents]: one event's journey (every status record and
//     dead letter) and finding events by id, user, issue or flow (`remediator status ID`);
//   - [Ops.SetSwitch] and [Ops.Switches]: the brakes — pause/resume and dry-run on/off per
//     flow or for every flow — each change written to the audit stream with who made it
//     (`remediator flows pause|resume|dry-run`).
//
// Dead letters are operated through package dlq ([Ops.DeadLetters] returns its Store).
//
// Every switch value is written through one function (writeSwitch) and read through one
// (readSwitch): where switch values are signed and verified.
package ops
