package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/schema"
)

func newSchemaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "schema", Short: "Work with the event schemas"}
	var subject string
	validate := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Validate event files offline, with the worker's schemas and error messages",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := schema.New()
			if err != nil {
				return err
			}
			failed := 0
			for _, f := range args {
				data, err := readFile(f)
				if err != nil {
					return err
				}
				subj := subject
				if subj == "" {
					if subj, err = publish.DetectSubject(data); err != nil {
						subj = event.SubjectISPM
					}
				}
				kind, _ := event.KindForSubject(subj)
				shape, err := v.Validate(kind, data)
				if err != nil {
					failed++
					fmt.Fprintf(g.stdout, "%s: INVALID: %s\n", f, safeText(err.Error()))
					continue
				}
				fmt.Fprintf(g.stdout, "%s: valid %s (%s)\n", f, shape, v.SchemaID(shape))
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d files are invalid", failed, len(args))
			}
			return nil
		},
	}
	validate.Flags().StringVar(&subject, "subject", "", "validate as if published to this `SUBJECT` (default: detected)")
	cmd.AddCommand(validate)
	return cmd
}
