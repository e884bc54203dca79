package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/service"
)

// policyOrgTimeout bounds the two reads of the org's ENTITY_RISK policy.
const policyOrgTimeout = time.Minute

// orgPolicy reads the org's ENTITY_RISK rules with the okta block's app (scope
// okta.policies.read) and maps them to the configuration's flows.
func orgPolicy(ctx context.Context, g *globals) (*config.Config, *policy.Import, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	if !cfg.Okta.Enabled() {
		return nil, nil, fmt.Errorf("%s has no okta block: configure the org (okta.orgUrl, okta.clientId, okta.privateKey) whose app is granted okta.policies.read", cfg.Source())
	}
	log := slog.New(slog.DiscardHandler)
	if g.logLevel == "debug" {
		if log, err = g.logger(); err != nil {
			return nil, nil, err
		}
	}
	oc, _, err := service.OktaClient(cfg, os.LookupEnv, log)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, policyOrgTimeout)
	defer cancel()
	_, rules, err := oc.EntityRiskRules(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the org's ENTITY_RISK policy: %w", err)
	}
	im, err := policy.ImportOktaRules(cfg, rules)
	if err != nil {
		return nil, nil, err
	}
	return cfg, im, nil
}

func newPolicyImportCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Write the org's entity-risk policy (ENTITY_RISK rules) as remediator's entityRiskPolicy block",
		Long: `import reads the org's ENTITY_RISK policy with the okta block's app (GET
/api/v1/policies?type=ENTITY_RISK, then its rules; scope ` + okta.ScopePoliciesRead + `) and prints
the equivalent entityRiskPolicy block of the configuration, to paste into it (or --out FILE).

A RUN_WORKFLOW action runs the flow whose workflowId is Okta's workflow id; a
TERMINATE_ALL_SESSIONS action stays one (the flow with action: clearSessions runs it); a rule
without action is log only (action NONE). Okta's catch-all rule (priority 99) is left out:
remediator's default rule is the same. A rule that cannot be mapped is refused, naming what to
configure, and nothing is written.

So that a remediation does not run twice, set Okta's rules to log only ("no further action")
once remediator acts on them (see the README, "Okta's own entity-risk policy").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, im, err := orgPolicy(cmd.Context(), g)
			if err != nil {
				return err
			}
			if p := im.Problems(); len(p) > 0 {
				return errors.New("policy import: the org's policy cannot be mapped to this configuration:\n  " + strings.Join(p, "\n  "))
			}
			if g.jsonOut {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(im)
			}
			y, err := config.MarshalRiskRules(im.RiskRules())
			if err != nil {
				return err
			}
			head := "# Imported from the org's ENTITY_RISK policy by `remediator policy import`.\n"
			for _, s := range im.Skipped {
				head += "# Left out: " + s + ".\n"
			}
			data := append([]byte(head), y...)
			if out != "" {
				return os.WriteFile(out, data, 0o644)
			}
			_, err = g.stdout.Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the block to `FILE` instead of printing it")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the mapping, rule by rule, as JSON")
	return cmd
}

func newPolicyDiffCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show where the configuration's entityRiskPolicy and the org's ENTITY_RISK policy disagree",
		Long: `diff reads the org's ENTITY_RISK policy as import does and compares it with the
configuration's entityRiskPolicy, rule by rule (matched by name): rules only one side has,
and for the others each field that differs (priority, status, level, detection types, users,
groups, action, and the flow it runs). It exits 1 when they disagree.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, im, err := orgPolicy(cmd.Context(), g)
			if err != nil {
				return err
			}
			diffs := policy.DiffRiskRules(cfg, im)
			if g.jsonOut {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(diffs); err != nil {
					return err
				}
			} else {
				printRuleDiffs(g, diffs)
			}
			if len(diffs) > 0 {
				return fmt.Errorf("policy diff: the configuration and Okta disagree on %d rules", len(diffs))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the differences as JSON")
	return cmd
}

func printRuleDiffs(g *globals, diffs []policy.RuleDiff) {
	if len(diffs) == 0 {
		fmt.Fprintln(g.stdout, "the configuration's entityRiskPolicy and the org's ENTITY_RISK policy agree")
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tFIELD\tCONFIGURATION\tOKTA")
	for _, d := range diffs {
		switch d.Only {
		case "configuration":
			fmt.Fprintf(tw, "%s\t\t(rule)\t(none)\n", safe(d.Rule))
		case "okta":
			fmt.Fprintf(tw, "%s\t\t(none)\t(rule)\n", safe(d.Rule))
		}
		for _, f := range d.Fields {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", safe(d.Rule), f.Field, safe(f.Config), safe(f.Okta))
		}
	}
	_ = tw.Flush()
}

// lookingUpRouter is the worker's router: with the okta block, people.groups conditions are
// decided on the user's groups in the org.
func lookingUpRouter(g *globals, cfg *config.Config) (*policy.Router, error) {
	if !cfg.Okta.Enabled() {
		return nil, usageError{fmt.Errorf("--lookup-groups: %s has no okta block to look groups up in", cfg.Source())}
	}
	oc, _, err := service.OktaClient(cfg, os.LookupEnv, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	opts, err := service.RouterOptions(cfg, oc)
	if err != nil {
		return nil, err
	}
	return policy.New(cfg, opts...), nil
}
