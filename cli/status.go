package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/status"
)

func newStatusCmd(g *globals) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "status [EVENT_ID]",
		Short: "Show the full history of one event, or follow results (status tail)",
		Long: `status EVENT_ID prints every status record of one event, in time order (each attempt,
outcome, flow, HTTP status, execution id, trace id, and the error, retry delay or reason),
and its dead letters if any. EVENT_ID is the document's eventId (or id/uuid).

It reads the whole of REMEDIATION_STATUS (kept streams.maxAge, 7 days by default), which takes
a while on a large stream: bound it with --since. "status tail" follows new records live.`,
		Example: `  remediator status f73a7741-6980-4d44-b0bf-13a2fa7ac556
  remediator status f73a7741-6980-4d44-b0bf-13a2fa7ac556 --since 2h --json
  remediator status tail --outcome failed`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			var from time.Time
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usageError{fmt.Errorf("--since: %w", err)}
				}
				from = t
			}
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			h, err := ops.New(b, ops.Options{Server: redactURL(g.url()), Keys: g.verifyKeys()}).EventHistory(ctx, args[0], from)
			if err != nil {
				return hint(err)
			}
			if len(h.Statuses) == 0 && len(h.DeadLetters) == 0 {
				return fmt.Errorf("no status record or dead letter for event id %q in %s or %s — check the id (the document's eventId); an event only just published may still be in flight (`remediator status tail`); records are kept streams.maxAge (7 days by default)",
					args[0], broker.StreamStatus, broker.StreamDLQ)
			}
			if g.jsonOut {
				return writeJSON(g.stdout, h)
			}
			printHistory(g.stdout, h)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only records since this `TIME` (RFC 3339) or this long ago (2h, 7d); default: the whole stream")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the history as JSON")
	cmd.AddCommand(newStatusTailCmd(g))
	return cmd
}

const historyHeader = "TIME                           OUTCOME    FLOW                   TRY  HTTP  TRACE ID                          DETAIL"

func printHistory(w io.Writer, h ops.History) {
	records := "status records"
	if len(h.Statuses) == 1 {
		records = "status record"
	}
	fmt.Fprintf(w, "Event %s: %d %s, %s\n\n", safe(h.EventID), len(h.Statuses), records, dlq.CountLetters(len(h.DeadLetters)))
	if len(h.Statuses) > 0 {
		fmt.Fprintln(w, historyHeader)
	}
	for _, r := range h.Statuses {
		http := "-"
		if r.HTTPStatus != 0 {
			http = fmt.Sprint(r.HTTPStatus)
		}
		var detail string
		switch r.Outcome {
		case status.Retrying:
			detail = fmt.Sprintf("retry in %s: %s", time.Duration(r.Delay).Round(time.Millisecond), r.Why)
			if r.Error != "" {
				detail += " — " + oneLine(r.Error)
			}
		case status.Failed, status.Rejected:
			detail = fmt.Sprintf("%s: %s (dlq seq %d)", r.Reason, oneLine(r.Error), r.DLQSequence)
		case status.Skipped:
			detail = skippedDetail(r)
		case status.Succeeded:
			detail = "execution " + orDash(r.ExecutionID)
			if r.DurationMS > 0 {
				detail += fmt.Sprintf(", took %s", time.Duration(r.DurationMS)*time.Millisecond)
			}
		default:
			detail = strings.TrimSpace(r.Why + " " + oneLine(r.Error))
		}
		if r.OutcomeUnknown {
			detail += " (outcome unknown: the flow may have run)"
		}
		if r.ExecutionID != "" && r.Outcome != status.Succeeded {
			detail += " (execution " + r.ExecutionID + ")"
		}
		detail = markUnverified(detail, r.Unverified)
		fmt.Fprintf(w, "%-29s  %-9s  %-21s  %3d  %-4s  %-32s  %s\n",
			r.Timestamp.Local().Format("2006-01-02T15:04:05.000Z07:00"), r.Outcome, orDash(clip(safe(r.Flow), 21)), r.Attempt, http,
			orDash(safe(r.TraceID)), safe(detail))
	}
	if len(h.DeadLetters) > 0 {
		fmt.Fprintln(w, "\nDead letters (`remediator dlq show SEQ` for the details):")
		fmt.Fprintln(w, dlqHeader)
		for _, e := range h.DeadLetters {
			printDLQLine(w, e)
		}
	}
}

func newStatusTailCmd(g *globals) *cobra.Command {
	var outcome string
	var last int
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow status records as they are published (Ctrl-C to stop)",
		Example: `  remediator status tail
  remediator status tail --outcome failed --last 20 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter := status.SubjectPrefix + ">"
			if outcome != "" {
				filter = status.Outcome(outcome).Subject()
			}
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			if !g.jsonOut {
				fmt.Fprintln(g.stdout, statusHeader)
			}
			keys := g.verifyKeys()
			err = b.Tail(ctx, broker.StreamStatus, filter, last, func(m *broker.StoredMessage) {
				printStatus(g.stdout, m.Data, g.jsonOut, unverified(keys, m.Subject, m.Data, m.Header))
			})
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			return err
		},
	}
	cmd.Flags().StringVar(&outcome, "outcome", "", "only this `OUTCOME`: succeeded, retrying, failed, rejected, skipped, dry_run, held")
	cmd.Flags().IntVar(&last, "last", 0, "also show the last `N` records before following")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the records as JSON lines")
	return cmd
}

const statusHeader = "TIME                      OUTCOME    EVENT ID                               FLOW                   TRY  HTTP  DETAIL"

func printStatus(w io.Writer, data []byte, asJSON bool, unverifiedWhy string) {
	var r status.Record
	if asJSON {
		if unverifiedWhy != "" && json.Unmarshal(data, &r) == nil {
			r.Unverified = unverifiedWhy
			data, _ = json.Marshal(r)
		}
		fmt.Fprintln(w, safe(strings.TrimSpace(string(data))))
		return
	}
	if err := json.Unmarshal(data, &r); err != nil {
		fmt.Fprintf(w, "(unreadable status record: %v)\n", err)
		return
	}
	detail := r.ExecutionID
	if detail != "" {
		detail = "execution " + detail
	}
	switch r.Outcome {
	case status.Retrying:
		detail = fmt.Sprintf("retry in %s: %s", time.Duration(r.Delay).Round(time.Millisecond), r.Why)
	case status.Failed, status.Rejected:
		detail = fmt.Sprintf("%s: %s (dlq seq %d)", r.Reason, r.Error, r.DLQSequence)
	case status.Skipped:
		detail = skippedDetail(r)
	}
	detail = markUnverified(detail, unverifiedWhy)
	http := "-"
	if r.HTTPStatus != 0 {
		http = fmt.Sprint(r.HTTPStatus)
	}
	fmt.Fprintf(w, "%-25s %-10s %-38s %-22s %3d  %-4s  %s\n",
		r.Timestamp.Local().Format(time.RFC3339), r.Outcome, clip(safe(r.EventID), 38), clip(safe(r.Flow), 22), r.Attempt, http, safe(detail))
}

// skippedDetail says why a skipped event ran no flow, naming the log-only rule if one matched.
func skippedDetail(r status.Record) string {
	d := "no flow runs: " + oneLine(r.Why)
	if r.Rule != "" {
		d = "rule " + r.Rule + ": " + d
	}
	return d
}

// clip shortens s to at most n characters, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
