package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/status"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Understand routing and authorization decisions"}
	cmd.AddCommand(newPolicyExplainCmd(g), newPolicyImportCmd(g), newPolicyDiffCmd(g)) // import, diff: policyimport.go
	return cmd
}

// explanation is what `policy explain` reports: the worker's intake decisions for one event.
type explanation struct {
	File           string         `json:"file"`
	Subject        string         `json:"subject"`
	EventID        string         `json:"eventId,omitempty"`
	Kind           string         `json:"eventKind,omitempty"`
	Shape          string         `json:"shape,omitempty"`
	Principal      *principalJSON `json:"principal,omitempty"`
	PrincipalError string         `json:"principalError,omitempty"`
	Steps          []policy.Step  `json:"steps,omitempty"`
	Flows          []flowVerdict  `json:"flows,omitempty"`
	// Verdict is "dispatch", "skipped" (with Error saying why) or "dead-letter" (with Reason
	// and Error).
	Verdict string        `json:"verdict"`
	Reason  status.Reason `json:"reason,omitempty"`
	Error   string        `json:"error,omitempty"`
}

type principalJSON struct {
	ID     string   `json:"id"`
	Groups []string `json:"groups,omitempty"`
	From   string   `json:"from"`
}

// flowVerdict is the authorization verdict and inputs of one flow the event is routed to.
type flowVerdict struct {
	Flow       string         `json:"flow"`
	Rule       string         `json:"rule"`
	Authorized bool           `json:"authorized"`
	GrantedBy  []string       `json:"grantedBy,omitempty"`
	Denied     string         `json:"denied,omitempty"`
	Mapped     bool           `json:"mapped"`
	Inputs     map[string]any `json:"inputs,omitempty"`
	InputError string         `json:"inputError,omitempty"`
}

func newPolicyExplainCmd(g *globals) *cobra.Command {
	var subject, as, groups string
	var lookupGroups bool
	cmd := &cobra.Command{
		Use:   "explain EVENT.json",
		Short: "Explain what the worker would do with an event: routes and rules, principal, authorization",
		Long: `Explain runs an event document through the worker's intake decisions, offline, with the
configuration (--config, or the built-in one): it validates the document, evaluates every
ISPM route or entity-risk policy rule in order with whether it matches and why, finds the
event's principal, and says for each flow chosen whether the principal may run it and what
the flow would receive. The verdict is what the worker would do: dispatch, skip, or dead-letter
with a reason.

--as and --groups stand for the Remediator-Principal and Remediator-Principal-Groups headers
a trusted ingress would set. The exit code is 0 whenever the event could be explained,
whatever the verdict.

An Okta document is explained event by event: a raw event-hook delivery (as Okta POSTs it
to /hooks/okta), a JSON array of System Log LogEvents, or one LogEvent. Each user.risk.detect
or user.risk.change event gets its own verdict; other event types are reported as ignored.`,
		Example: `  remediator policy explain examples/ispm-unused-admin.json
  remediator policy explain examples/okta-event-hook-delivery.json
  remediator policy explain --as 00u1admin examples/ispm-compromised-account.json
  remediator policy explain --json examples/itp-high-risk.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if subject != "" {
				if _, ok := event.KindForSubject(subject); !ok {
					return usageError{fmt.Errorf("--subject %q: use %s or %s", subject, event.SubjectISPM, event.SubjectITP)}
				}
			}
			data, err := readFile(args[0])
			if err != nil {
				return err
			}
			v, err := schema.New()
			if err != nil {
				return err
			}
			header := map[string][]string{}
			if as != "" {
				header[policy.HeaderPrincipal] = []string{as}
			}
			if groups != "" {
				header[policy.HeaderPrincipalGroups] = []string{groups}
			}
			router := policy.New(cfg)
			if lookupGroups {
				if router, err = lookingUpRouter(g, cfg); err != nil {
					return err
				}
			}
			if subject == "" && isOktaDocument(data) {
				return explainOkta(g, data, v, router)
			}
			x := explain(args[0], data, subject, header, v, router, cfg.Unrouted)
			if g.jsonOut {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(x)
			}
			x.print(g.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "explain as if published to this `SUBJECT` (default: detected from the document)")
	cmd.Flags().StringVar(&as, "as", "", "as if a trusted ingress set the Remediator-Principal header to this `PRINCIPAL`")
	cmd.Flags().StringVar(&groups, "groups", "", "as if the Remediator-Principal-Groups header held these Okta group ids (`GROUPS`, comma-separated)")
	cmd.Flags().BoolVar(&lookupGroups, "lookup-groups", false, "look the user's groups up in the okta block's org, as the worker does, for rules with people.groups conditions (default: only the groups the event carries)")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the explanation as JSON")
	return cmd
}

// explain reproduces the intake's decisions (worker/intake.go) for one document.
func explain(file string, data []byte, subject string, header map[string][]string, v *schema.Validator, r *policy.Router, unrouted string) *explanation {
	x := &explanation{File: file, Subject: subject}
	if x.Subject == "" {
		s, err := publish.DetectSubject(data)
		if err != nil {
			s = event.SubjectISPM
		}
		x.Subject = s
	}
	deadLetter := func(reason status.Reason, err error) *explanation {
		x.Verdict, x.Reason, x.Error = "dead-letter", reason, err.Error()
		return x
	}
	kind, _ := event.KindForSubject(x.Subject)
	shape, err := v.Validate(kind, data)
	if err != nil {
		var syn *schema.SyntaxError
		if errors.As(err, &syn) {
			return deadLetter(status.ReasonInvalidJSON, err)
		}
		return deadLetter(status.ReasonSchemaViolation, err)
	}
	ev, err := event.Decode(shape, data)
	if err != nil {
		return deadLetter(status.ReasonSchemaViolation, err)
	}
	x.EventID, x.Kind, x.Shape = ev.ID, string(ev.Kind), string(shape)
	x.Steps = r.Explain(ev)

	decisions, err := r.Route(ev)
	switch {
	case errors.Is(err, policy.ErrUnrouted) && unrouted != config.UnroutedDeadLetter:
		// The worker records a terminal skipped status and runs nothing.
		x.Verdict, x.Error = "skipped", err.Error()
		return x
	case errors.Is(err, policy.ErrUnauthorized):
		return deadLetter(status.ReasonUnauthorized, err)
	case err != nil:
		// The worker dead-letters it before looking for a principal.
		return deadLetter(status.ReasonNoRoute, err)
	}
	p, perr := r.Principal(ev, header, x.Subject)
	if perr != nil {
		x.PrincipalError = perr.Error()
	} else {
		x.Principal = &principalJSON{p.ID, p.Groups, p.From}
	}
	var denied []string
	var inputErr error
	for _, dec := range decisions {
		fv := flowVerdict{Flow: dec.Flow, Rule: dec.Rule}
		if perr == nil {
			if aerr := r.Authorize(ev, p, dec.Flow); aerr != nil {
				fv.Denied = aerr.Error()
				denied = append(denied, aerr.Error())
			} else {
				fv.Authorized = true
				_, _, fv.GrantedBy = r.Permissions(p.ID, p.Groups, dec.Flow)
			}
		}
		in, ierr := r.Inputs(ev, dec.Flow)
		if ierr != nil {
			fv.InputError = ierr.Error()
			if inputErr == nil {
				inputErr = ierr
			}
		} else {
			fv.Inputs = in
			fv.Mapped = !mapsEqual(in, ev.Inputs())
		}
		x.Flows = append(x.Flows, fv)
	}
	switch {
	case perr != nil:
		return deadLetter(status.ReasonUnauthorized, perr)
	case len(denied) > 0:
		msg := strings.Join(denied, "; ")
		if len(denied) < len(decisions) {
			msg += fmt.Sprintf(" (none of the event's %d flows runs when one is denied)", len(decisions))
		}
		return deadLetter(status.ReasonUnauthorized, errors.New(msg))
	case inputErr != nil:
		return deadLetter(status.ReasonSchemaViolation, inputErr)
	}
	x.Verdict = "dispatch"
	return x
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (x *explanation) print(w io.Writer) {
	fmt.Fprintf(w, "file       %s\n", x.File)
	if x.EventID != "" || x.Kind != "" {
		fmt.Fprintf(w, "event      %s\n", safe(x.EventID))
		fmt.Fprintf(w, "kind       %s (%s) on %s\n", x.Kind, x.Shape, x.Subject)
	} else {
		fmt.Fprintf(w, "subject    %s\n", x.Subject)
	}
	switch {
	case x.Principal != nil:
		s := fmt.Sprintf("%s (from %s)", x.Principal.ID, x.Principal.From)
		if len(x.Principal.Groups) > 0 {
			s += ", groups " + strings.Join(x.Principal.Groups, ", ")
		}
		fmt.Fprintf(w, "principal  %s\n", safe(s))
	case x.PrincipalError != "":
		fmt.Fprintf(w, "principal  none: %s\n", safeText(x.PrincipalError))
	}
	if len(x.Steps) > 0 {
		fmt.Fprintln(w)
		if x.Kind == string(event.KindEntityRisk) {
			fmt.Fprintln(w, "entity-risk policy rules, by priority (the first match wins):")
		} else {
			fmt.Fprintln(w, "routes, in order (every matching route adds its flows):")
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for i, s := range x.Steps {
			n := fmt.Sprint(i + 1)
			if s.Kind != policy.StepRoute {
				n = fmt.Sprint(s.Priority)
			}
			verdict := stepVerdict(s)
			reason := s.Reason
			if s.Match && len(s.Flows) > 0 {
				reason += " → " + strings.Join(s.Flows, ", ")
			}
			if s.Action != "" {
				reason += " [action " + s.Action + "]"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n, s.Name, verdict, reason)
		}
		_ = tw.Flush()
	}
	if len(x.Flows) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "flows:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range x.Flows {
			var auth string
			switch {
			case f.Authorized:
				auth = "ALLOWED  run granted by " + grantingSets(f.GrantedBy)
			case f.Denied != "":
				why := f.Denied
				if i := strings.Index(why, "missing permission"); i >= 0 {
					why = why[i:]
				}
				auth = "DENIED   " + why
			default:
				auth = "DENIED   no principal"
			}
			inputs := fmt.Sprintf("inputs: all %d event inputs", len(f.Inputs))
			switch {
			case f.InputError != "":
				inputs = "inputs: " + f.InputError
			case f.Mapped:
				inputs = "inputs (mapped): " + strings.Join(slices.Sorted(maps.Keys(f.Inputs)), ", ")
			}
			by := "route " + f.Rule
			if x.Kind == string(event.KindEntityRisk) {
				by = "rule " + f.Rule
			}
			fmt.Fprintf(tw, "  %s\t(%s)\t%s\n", f.Flow, by, auth)
			fmt.Fprintf(tw, "  \t\t%s\n", inputs)
		}
		_ = tw.Flush()
	}
	fmt.Fprintln(w)
	switch x.Verdict {
	case "dispatch":
		var flows []string
		for _, f := range x.Flows {
			flows = append(flows, f.Flow)
		}
		fmt.Fprintf(w, "verdict: dispatch to %s\n", strings.Join(flows, ", "))
	case "skipped":
		fmt.Fprintf(w, "verdict: skipped (a terminal skipped status; no flow runs): %s\n", safeText(x.Error))
	default:
		fmt.Fprintf(w, "verdict: dead-letter on %s: %s\n", x.Reason.Subject(), safeText(x.Error))
	}
}

func grantingSets(s []string) string {
	if len(s) == 1 {
		return "resource set " + s[0]
	}
	return "resource sets " + strings.Join(s, ", ")
}

// isOktaDocument reports whether data is an Okta event-hook delivery, a JSON array of
// LogEvents, or a single risk LogEvent: what [policy.Router.ExplainOkta] explains.
func isOktaDocument(data []byte) bool {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return true
	}
	var head struct {
		EventType string `json:"eventType"`
		UUID      string `json:"uuid"`
	}
	if json.Unmarshal(trimmed, &head) != nil {
		return false
	}
	return head.EventType == event.EventTypeHookDelivery || (event.IsRiskEventType(head.EventType) && head.UUID != "")
}

// explainOkta explains every LogEvent of an Okta document, decoding each as the intake does.
func explainOkta(g *globals, data []byte, v *schema.Validator, r *policy.Router) error {
	dec := policy.OktaDecoding{
		Split: func(delivery []byte) ([][]byte, error) {
			events, err := event.SplitHookDelivery(delivery)
			if err != nil {
				return nil, err
			}
			raw := make([][]byte, len(events))
			for i, e := range events {
				raw[i] = e.Raw
			}
			return raw, nil
		},
		Decode: func(logEvent []byte) (*event.Event, error) {
			shape, err := v.Validate(event.KindEntityRisk, logEvent)
			if err != nil {
				return nil, err
			}
			return event.Decode(shape, logEvent)
		},
	}
	xs, err := r.ExplainOkta(data, dec)
	if err != nil {
		return err
	}
	if g.jsonOut {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(xs)
	}
	for i, x := range xs {
		if i > 0 {
			fmt.Fprintln(g.stdout)
		}
		w := g.stdout
		fmt.Fprintf(w, "event %d    %s %s\n", x.Index, safe(x.EventType), safe(x.UUID))
		if x.UserID != "" {
			fmt.Fprintf(w, "user       %s, risk %s, detection %s\n", safe(x.UserID), safe(x.RiskLevel), safe(x.DetectionType))
		}
		if x.Principal != "" {
			fmt.Fprintf(w, "principal  %s\n", safe(x.Principal))
		}
		for _, s := range x.Steps {
			verdict := stepVerdict(s)
			reason := s.Reason
			if s.Action != "" {
				reason += " [action " + s.Action + "]"
			}
			fmt.Fprintf(w, "  %-3d %-28s %-8s %s\n", s.Priority, safe(s.Name), verdict, safeText(reason))
		}
		for _, f := range x.Flows {
			if why, denied := x.Denied[f]; denied {
				fmt.Fprintf(w, "flow       %s: DENIED: %s\n", safe(f), safeText(why))
				continue
			}
			fmt.Fprintf(w, "flow       %s: allowed\n", safe(f))
		}
		line := "verdict    " + x.Verdict
		if x.Reason != "" {
			line += ": " + safeText(x.Reason)
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

// stepVerdict is how a rule or route step reads in a table.
func stepVerdict(s policy.Step) string {
	switch {
	case s.Match:
		return "MATCH"
	case !s.Evaluated:
		return "skipped"
	}
	return "no match"
}
