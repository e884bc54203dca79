package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/publish"
)

func newPublishCmd(g *globals) *cobra.Command {
	var subject, msgID string
	cmd := &cobra.Command{
		Use:   "publish FILE...",
		Short: "Publish event documents (use - for standard input) to remediator",
		Long: `Publish sends each file, byte for byte, to its subject: entity-risk triggers to
remediation.events.itp and ISPM issues to remediation.events.ispm (detected from the
document, or --subject). The event id becomes the de-duplication id (Nats-Msg-Id), and
the W3C trace context of a producer span travels in the headers.`,
		Example: `  remediator publish examples/ispm-unused-admin.json
  echo 'not json' | remediator publish --subject remediation.events.ispm -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if subject != "" {
				if _, ok := event.KindForSubject(subject); !ok {
					return usageError{fmt.Errorf("--subject %q: use %s or %s", subject, event.SubjectISPM, event.SubjectITP)}
				}
			}
			ctx := cmd.Context()
			tr, flush, err := startTracing(ctx)
			if err != nil {
				return err
			}
			defer flush()
			b, err := g.connectAs(ctx, broker.RolePublisher)
			if err != nil {
				return err
			}
			defer b.Close()
			p := publish.New(b, tr.Provider)
			for _, f := range args {
				data, err := readFile(f)
				if err != nil {
					return err
				}
				res, err := p.Publish(ctx, data, publish.Options{Subject: subject, MsgID: msgID})
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				if g.jsonOut {
					_ = json.NewEncoder(g.stdout).Encode(res)
					continue
				}
				dup := ""
				if res.Duplicate {
					dup = " (duplicate: JetStream already had this event id within its de-duplication window; not stored again)"
				}
				fmt.Fprintf(g.stdout, "%s → %s: %s sequence %d, event id %q, trace id %s%s\n",
					f, res.Subject, res.Stream, res.Sequence, res.EventID, res.TraceID, dup)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "`SUBJECT` to publish to (default: detected from the document)")
	cmd.Flags().StringVar(&msgID, "msg-id", "", "de-duplication `ID` (default: the document's event id)")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print results as JSON lines")
	return cmd
}

func readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return b, nil
}
