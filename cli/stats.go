package cli

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/ops"
)

func newStatsCmd(g *globals) *cobra.Command {
	var window string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Backlog per stream and consumer, dead letters by reason, recent success rate and latency per flow",
		Long: `stats shows:

  - each stream's messages and bytes;
  - each durable consumer's backlog: pending (not yet delivered), ack pending (in a worker's
    hands), redelivered, and pull requests waiting. A growing pending count on
    remediator-dispatch-<flow> means the flow is slower than its input (its rate budget, a
    failing flow, an open breaker);
  - dead letters by reason (REMEDIATION_DLQ's subject counts);
  - per flow, over the last --window (default 1h) of REMEDIATION_STATUS: succeeded, failed,
    success rate = succeeded / (succeeded + failed), retrying records, the average attempt
    that succeeded, and the p50/p95 latency of succeeded calls (durationMs).

Time to remediate (an event's age when its flow succeeded) needs the event's own timestamp,
which status records do not carry; the worker exports it on /metrics as the
remediator_time_to_remediate_seconds histogram. The
per-flow part reads every status record of the window, so a long window on a busy stream
takes a while.`,
		Example: `  remediator stats
  remediator stats --window 24h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			win, err := parseDuration(window)
			if err != nil {
				return usageError{fmt.Errorf("--window: %w", err)}
			}
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			s, err := g.ops(b).Stats(ctx, win)
			if err != nil {
				return hint(err)
			}
			if g.jsonOut {
				return writeJSON(g.stdout, s)
			}
			printStats(g.stdout, s)
			switches, verified, swErr := g.readSwitches(ctx)
			printSwitches(g, switches, verified, swErr)
			return nil
		},
	}
	cmd.Flags().StringVar(&window, "window", "1h", "how far back (`DURATION`) the per-flow figures look (e.g. 15m, 24h, 7d)")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the figures as JSON")
	return cmd
}

// ops is the operator API over a connection: the figures, histories and switches the console
// shows too.
// ops is the operator logic over b, with the record keys when they can be found: switches
// are sealed with them and records read back are checked (see recordKeys; commands that
// need them say so when they are missing).
func (g *globals) ops(b *broker.Broker) *ops.Ops {
	keys, _ := g.recordKeys()
	return ops.New(b, ops.Options{Server: redactURL(g.url()), Keys: keys})
}

func printStats(w io.Writer, s *ops.Stats) {
	fmt.Fprintln(w, "STREAM                  MESSAGES       BYTES")
	for _, st := range s.Streams {
		if st.Missing {
			fmt.Fprintf(w, "%-22s  missing: remediator creates it at start (restart it once)\n", st.Name)
			continue
		}
		fmt.Fprintf(w, "%-22s  %8d  %10s\n", st.Name, st.Messages, humanBytes(st.Bytes))
	}

	width := len("CONSUMER")
	for _, c := range s.Consumers {
		width = max(width, len(c.Name))
	}
	fmt.Fprintf(w, "\n%-*s  STREAM                  PENDING  ACK PENDING  REDELIVERED  WAITING\n", width, "CONSUMER")
	if len(s.Consumers) == 0 {
		fmt.Fprintln(w, "none: no worker has bound its consumers yet")
	}
	for _, c := range s.Consumers {
		fmt.Fprintf(w, "%-*s  %-22s  %7d  %11d  %11d  %7d\n", width, c.Name, c.Stream, c.Pending, c.AckPending, c.Redelivered, c.Waiting)
	}

	if len(s.Backlog) > 0 {
		fmt.Fprintln(w, "\nJOBS WAITING (REMEDIATION_DISPATCH)  PRIORITY      JOBS")
		for _, b := range s.Backlog {
			fmt.Fprintf(w, "%-35s  %-8s  %8d\n", clip(b.Flow, 35), b.Priority, b.Jobs)
		}
	}

	fmt.Fprintf(w, "\nDEAD LETTERS BY REASON (%d in %s)\n", s.DeadLetters.Total, broker.StreamDLQ)
	reasons := slices.SortedFunc(maps.Keys(s.DeadLetters.ByReason), func(a, b string) int {
		return cmp.Or(cmp.Compare(s.DeadLetters.ByReason[b], s.DeadLetters.ByReason[a]), strings.Compare(a, b))
	})
	if len(reasons) == 0 {
		fmt.Fprintln(w, "none")
	}
	for _, r := range reasons {
		fmt.Fprintf(w, "%-22s  %8d\n", r, s.DeadLetters.ByReason[r])
	}

	fmt.Fprintf(w, "\nFLOWS, LAST %s (from %s)\n", s.Window, broker.StreamStatus)
	if len(s.Flows) == 0 {
		fmt.Fprintln(w, "no invocations in the window")
	} else {
		fmt.Fprintln(w, "FLOW                    SUCCEEDED  FAILED  SUCCESS  RETRYING  AVG TRY  CALL P50  CALL P95")
	}
	for _, f := range s.Flows {
		rate, avg, p50, p95 := "-", "-", "-", "-"
		if f.SuccessRate != nil {
			rate = fmt.Sprintf("%.1f%%", *f.SuccessRate*100)
		}
		if f.Succeeded > 0 {
			avg = fmt.Sprintf("%.2f", f.AvgAttempt)
		}
		if f.CallP50MS != nil {
			p50, p95 = millis(*f.CallP50MS), millis(*f.CallP95MS)
		}
		fmt.Fprintf(w, "%-22s  %9d  %6d  %7s  %8d  %7s  %8s  %8s\n", clip(f.Flow, 22), f.Succeeded, f.Failed, rate, f.Retrying, avg, p50, p95)
	}
	if s.Rejected > 0 {
		fmt.Fprintf(w, "rejected at intake (invalid, unroutable or unauthorized): %d\n", s.Rejected)
	}
	if s.Skipped > 0 {
		fmt.Fprintf(w, "skipped at intake (valid, but no route or rule runs a flow): %d\n", s.Skipped)
	}
	fmt.Fprintln(w, "\nTime to remediate (event age when its flow succeeded): the remediator_time_to_remediate_seconds histogram on the worker's /metrics.")
}

func millis(ms int64) string {
	if ms == 0 {
		return "<1ms"
	}
	return fmt.Sprintf("%dms", ms)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
