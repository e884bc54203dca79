package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/status"
)

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show results from the status stream",
	}
	cmd.AddCommand(newStatusTailCmd(g))
	return cmd
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
			err = b.Tail(ctx, broker.StreamStatus, filter, last, func(m *broker.StoredMessage) {
				printStatus(g.stdout, m.Data, g.jsonOut)
			})
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			return err
		},
	}
	cmd.Flags().StringVar(&outcome, "outcome", "", "only this outcome: succeeded, retrying, failed, rejected")
	cmd.Flags().IntVar(&last, "last", 0, "also show the last N records before following")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the records as JSON lines")
	return cmd
}

const statusHeader = "TIME                      OUTCOME    EVENT ID                               FLOW                   TRY  HTTP  DETAIL"

func printStatus(w io.Writer, data []byte, asJSON bool) {
	if asJSON {
		fmt.Fprintln(w, strings.TrimSpace(string(data)))
		return
	}
	var r status.Record
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
	}
	http := "-"
	if r.HTTPStatus != 0 {
		http = fmt.Sprint(r.HTTPStatus)
	}
	fmt.Fprintf(w, "%-25s %-10s %-38s %-22s %3d  %-4s  %s\n",
		r.Timestamp.Local().Format(time.RFC3339), r.Outcome, clip(r.EventID, 38), clip(r.Flow, 22), r.Attempt, http, detail)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
