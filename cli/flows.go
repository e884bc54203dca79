package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/worker"
)

func newFlowsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "flows", Short: "Show the configured flows and who may run them; pause, resume or dry-run them"}
	cmd.AddCommand(newFlowsListCmd(g))
	cmd.AddCommand(newFlowControlCmds(g)...)
	cmd.AddCommand(newOktaCheckCmd(g)) // flows check: the same check as okta check
	return cmd
}

// flowRow is one line of `flows list`.
type flowRow struct {
	Flow         string   `json:"flow"`
	Host         string   `json:"host"`
	RoutedBy     []string `json:"routedBy"`
	ResourceSets []string `json:"resourceSets"`
	// For --as only.
	View      *bool    `json:"view,omitempty"`
	Run       *bool    `json:"run,omitempty"`
	GrantedBy []string `json:"grantedBy,omitempty"`
	// Switches set on the flow (its own and those for every flow), when NATS is reachable;
	// those with unverified set are ignored by the workers.
	Switches []worker.Switch `json:"switches,omitempty"`
}

func newFlowsListCmd(g *globals) *cobra.Command {
	var as, groups string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the flows: invoke host, routes and rules, resource sets, and what --as USER may do",
		Long: `List prints each configured flow with the host of its invoke URL (never the token), the
routes and entity-risk rules that send events to it, and the resource sets that hold it.
Below, when NATS is reachable, the switches set in remediation_controls (pause, dry-run),
who set them, when and why; a value remediator did not write is shown as IGNORED.

With --as, it also says whether that principal may view and run each flow, as the worker
decides: an Okta user id or login, a default principal's name, or rule:<name> for an
entity-risk rule. --groups adds the principal's Okta group ids (what a trusted ingress sends
in the Remediator-Principal-Groups header).`,
		Example: `  remediator flows list
  remediator flows list --as ispm-console
  remediator flows list --as jane.doe@example.com --groups 00g1secops --json
  remediator flows list --as rule:high-risk-clear-sessions`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			rows := flowRows(cfg, policy.New(cfg), as, policy.ParseGroups(groups))
			switches, verified, swErr := g.readSwitches(cmd.Context())
			for i := range rows {
				for _, sw := range switches {
					if sw.Flow == rows[i].Flow || sw.Flow == worker.AllFlows {
						rows[i].Switches = append(rows[i].Switches, sw)
					}
				}
			}
			if g.jsonOut {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			printFlowRows(g, rows, as != "")
			printSwitches(g, switches, verified, swErr)
			return nil
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "say whether this `PRINCIPAL` (user id, login, default principal or rule:<name>) may view and run each flow")
	cmd.Flags().StringVar(&groups, "groups", "", "with --as: the principal's Okta group ids (`GROUPS`), comma-separated")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the flows as JSON")
	return cmd
}

func flowRows(cfg *config.Config, r *policy.Router, as string, groups []string) []flowRow {
	rows := make([]flowRow, 0, len(cfg.Flows))
	for _, f := range cfg.Flows {
		row := flowRow{Flow: f.Name, Host: invokeHost(f.URL), RoutedBy: flowRoutedBy(cfg, f.Name), ResourceSets: r.ResourceSets(f.Name)}
		if row.RoutedBy == nil {
			row.RoutedBy = []string{}
		}
		if row.ResourceSets == nil {
			row.ResourceSets = []string{}
		}
		if as != "" {
			view, run, sets := r.Permissions(as, groups, f.Name)
			row.View, row.Run, row.GrantedBy = &view, &run, sets
		}
		rows = append(rows, row)
	}
	return rows
}

// urlHost is the host of an invoke URL; the rest (the flow alias) is left out.
func invokeHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "?"
	}
	return u.Host
}

// routedBy names the routes and rules that send events to flow.
func flowRoutedBy(cfg *config.Config, flow string) []string {
	var out []string
	for _, rt := range cfg.Routes {
		for _, f := range rt.Flows {
			if f == flow {
				out = append(out, "route "+rt.Name)
			}
		}
	}
	for _, rule := range cfg.RiskRules {
		if rule.Flow == flow {
			s := "rule " + rule.Name
			if rule.Status != "ACTIVE" {
				s += " (" + strings.ToLower(rule.Status) + ")"
			}
			out = append(out, s)
		}
	}
	return out
}

func printFlowRows(g *globals, rows []flowRow, withAs bool) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	if withAs {
		fmt.Fprintln(tw, "FLOW\tHOST\tROUTED BY\tRESOURCE SETS\tVIEW\tRUN")
	} else {
		fmt.Fprintln(tw, "FLOW\tHOST\tROUTED BY\tRESOURCE SETS")
	}
	for _, r := range rows {
		line := fmt.Sprintf("%s\t%s\t%s\t%s", r.Flow, r.Host, joinOrDash(r.RoutedBy), joinOrDash(r.ResourceSets))
		if withAs {
			line += fmt.Sprintf("\t%s\t%s", flowsYesNo(*r.View), flowsYesNo(*r.Run))
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
}

func joinOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func flowsYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// readSwitches reads the switches set in remediation_controls, verified with the record keys
// when they are at hand (verified says so).
func (g *globals) readSwitches(ctx context.Context) (switches []worker.Switch, verified bool, err error) {
	b, err := g.connect(ctx)
	if err != nil {
		return nil, false, err
	}
	defer b.Close()
	kv, err := b.OpenKeyValue(ctx, worker.ControlsBucket)
	if err != nil {
		return nil, false, err
	}
	keys := g.verifyKeys()
	switches, err = worker.ReadSwitches(ctx, kv, keys)
	return switches, keys != nil, err
}

// printSwitches lists the switches under the flows, those in force first.
func printSwitches(g *globals, switches []worker.Switch, verified bool, err error) {
	w := g.stdout
	if err != nil {
		fmt.Fprintf(w, "\nSwitches: unknown (%s)\n", safe(oneLine(err.Error())))
		return
	}
	if len(switches) == 0 {
		fmt.Fprintln(w, "\nSwitches: none set (every flow dispatches as configured)")
		return
	}
	fmt.Fprintln(w, "\nSwitches set (remediation_controls):")
	for _, sw := range switches {
		what := "pause"
		if sw.Kind == "dryrun" {
			what = "dry-run"
		}
		target := "flow " + sw.Flow
		if sw.Flow == worker.AllFlows {
			target = "every flow"
		}
		if !verified {
			fmt.Fprintf(w, "  %s %s: set, not verified (no record keys here: see the warning above)\n", what, safe(target))
			continue
		}
		if sw.Unverified != "" {
			fmt.Fprintf(w, "  IGNORED %s %s: not written by remediator (%s); the workers do not obey it\n", what, safe(target), safe(sw.Unverified))
			continue
		}
		line := fmt.Sprintf("  %s %s: set by %s at %s", what, target, orDash(sw.Control.By), sw.Control.At.Local().Format(time.RFC3339))
		if sw.Control.Reason != "" {
			line += " — " + oneLine(sw.Control.Reason)
		}
		fmt.Fprintln(w, safe(line))
	}
}
