package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/ops"
)

// newFlowControlCmds are the safety brakes: pause and resume dispatching, dry-run on and off.
func newFlowControlCmds(g *globals) []*cobra.Command {
	var all bool
	var reason, as string
	target := func(args []string) (string, error) {
		switch {
		case all && len(args) == 0:
			return ops.AllFlows, nil
		case !all && len(args) == 1:
			return args[0], nil
		}
		return "", usageError{fmt.Errorf("name one flow, or --all")}
	}
	set := func(cmd *cobra.Command, kind, flow string, on bool) error {
		ctx := cmd.Context()
		b, err := g.connect(ctx)
		if err != nil {
			return err
		}
		defer b.Close()
		return hint(g.ops(b).SetSwitch(ctx, ops.Switch{Kind: kind, Flow: flow, On: on, Reason: reason}, ops.Operator{User: operator(as), Via: "cli"}))
	}
	pause := &cobra.Command{
		Use:   "pause (FLOW | --all)",
		Short: "Stop dispatching to a flow (or every flow); events wait in JetStream until resume",
		Long: `pause holds dispatching on every replica within moments. Intake goes on: events are still
validated, routed and stored as jobs, and wait in JetStream; nothing is lost. Calls already in
flight finish. Resume with "remediator flows resume".`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			flow, err := target(args)
			if err != nil {
				return err
			}
			if err := set(cmd, ops.Pause, flow, true); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "paused %s: its events wait in JetStream (resume with `remediator flows resume %s`)\n", flowLabel(flow), resumeArg(flow))
			return nil
		},
	}
	resume := &cobra.Command{
		Use:   "resume (FLOW | --all)",
		Short: "Resume dispatching to a paused flow (or lift a pause of every flow)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			flow, err := target(args)
			if err != nil {
				return err
			}
			if err := set(cmd, ops.Pause, flow, false); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "resumed %s\n", flowLabel(flow))
			return nil
		},
	}
	var off bool
	dry := &cobra.Command{
		Use:   "dry-run (FLOW | --all) [--off]",
		Short: "Record would-be invocations of a flow instead of making them (--off to stop)",
		Long: `dry-run makes every replica decide and record each invocation of the flow — a dry_run
status with the inputs the flow would have received — without calling it. Use it to watch a
new route or rule before it acts. A flow can also be set to dry-run in configuration (flows[].dryRun).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			flow, err := target(args)
			if err != nil {
				return err
			}
			if err := set(cmd, ops.DryRun, flow, !off); err != nil {
				return err
			}
			state := "on"
			if off {
				state = "off"
			}
			fmt.Fprintf(g.stdout, "dry-run %s for %s\n", state, flowLabel(flow))
			return nil
		},
	}
	dry.Flags().BoolVar(&off, "off", false, "turn dry-run off")
	for _, c := range []*cobra.Command{pause, resume, dry} {
		c.Flags().BoolVar(&all, "all", false, "every flow")
		c.Flags().StringVar(&as, "as", "", "operator `NAME` for the audit record (default $USER)")
	}
	pause.Flags().StringVar(&reason, "reason", "", "`WHY`, for the audit record and the other operators")
	dry.Flags().StringVar(&reason, "reason", "", "`WHY`, for the audit record")
	return []*cobra.Command{pause, resume, dry}
}

func flowLabel(flow string) string {
	if flow == ops.AllFlows {
		return "every flow"
	}
	return "flow " + flow
}

func resumeArg(flow string) string {
	if flow == ops.AllFlows {
		return "--all"
	}
	return flow
}
