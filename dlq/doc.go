// Package dlq operates the dead-letter stream (REMEDIATION_DLQ): it lists and reads dead
// letters, loads the original event a dead letter refers to, plans and performs replays, and
// purges letters, recording every replay and purge on the audit stream (REMEDIATION_AUDIT).
//
// A [Store] wraps a broker connection. The command line (package cli) parses flags and prints
// what a Store returns; a web console can reuse the same API:
//
//	s := dlq.New(b, dlq.Options{})
//	s.Scan(ctx, dlq.Filter{Reason: status.ReasonPermanentFailure}, fn) // dlq list
//	s.Get(ctx, seq) and s.OriginalEvent(ctx, letter)                   // dlq show
//	plan, _ := s.PlanReplay(ctx, sel, operator)                        // dlq replay --dry-run
//	s.Replay(ctx, plan, dlq.ReplayOptions{Rate: 200})                  // dlq replay
//	refs, _ := s.Select(ctx, sel); s.Purge(ctx, sel.Describe, seqs, operator) // dlq purge
//
// A dead letter normally embeds the original event (subject, headers less secrets, bytes). One
// whose event was too large to copy, or whose event could not be read when it was written,
// holds only a reference: its sequence in REMEDIATION_EVENTS. Show and replay then load the
// event from that stream, and say so clearly ([ErrEventGone]) when retention removed it.
package dlq
