package policy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
)

// Headers a trusted ingress may set on an event message. They are only as trustworthy as
// whoever may publish on the event subject: restrict publishing with NATS subject permissions.
const (
	// HeaderPrincipal names the Okta user (id or login) who asks for the run.
	HeaderPrincipal = "Remediator-Principal"
	// HeaderPrincipalGroups lists the principal's Okta group ids, comma-separated.
	HeaderPrincipalGroups = "Remediator-Principal-Groups"
)

// ErrUnauthorized is returned (wrapped, saying who, which flow and which permission is
// missing) when an event's principal may not run a flow, or when the event has no principal.
var ErrUnauthorized = errors.New("unauthorized")

// ErrInputMapping is returned (wrapped) when an event's inputs do not fit a flow's input mapping.
var ErrInputMapping = errors.New("input mapping")

// Principal is who asks for a run: an Okta user, a default principal, or an entity-risk rule.
type Principal struct {
	// ID is an Okta user id or login, a default principal's name, or "rule:<name>".
	ID string
	// Groups are the principal's Okta group ids, from the Remediator-Principal-Groups header.
	Groups []string
	// From says where ID came from: "header Remediator-Principal", "oktaUserId",
	// "defaultPrincipals[<subject>]" or "entity-risk rule <name>".
	From string
}

// String renders the principal for messages: `"00u1" (from oktaUserId)`.
func (p Principal) String() string {
	s := fmt.Sprintf("principal %q", p.ID)
	if len(p.Groups) > 0 {
		s += fmt.Sprintf(" (groups %s)", strings.Join(p.Groups, ", "))
	}
	if p.From != "" {
		s += " (from " + p.From + ")"
	}
	return s
}

// RulePrincipal is the principal of an entity-risk trigger routed by the named rule.
func RulePrincipal(rule string) string { return config.RulePrincipalPrefix + rule }

func (r *Router) compileAuthz(cfg *config.Config) {
	r.sets = slices.Clone(cfg.ResourceSets)
	r.defaultPrincipals = maps.Clone(cfg.DefaultPrincipals)
	r.flows = map[string]config.Flow{}
	for _, f := range cfg.Flows {
		r.flows[f.Name] = f
	}
}

// Principal finds who asks for ev, received on subject with the message header.
//
// An entity-risk trigger's principal is the rule that routes it, "rule:<name>" (remediator's
// own evaluation of entityRiskPolicy, not the ruleId the trigger claims); headers and
// oktaUserId do not change it. An ISPM issue's principal is, in order: the
// Remediator-Principal header, the event's oktaUserId (the admin who ran the flow from the ISPM
// console), or the subject's entry in defaultPrincipals. A header and an oktaUserId that
// disagree, a header given twice with different values, a "rule:" principal on an ISPM issue,
// and an ISPM issue with no principal at all are errors wrapping [ErrUnauthorized].
// Remediator-Principal-Groups gives the principal's groups.
func (r *Router) Principal(ev *event.Event, header map[string][]string, subject string) (Principal, error) {
	if ev.Risk != nil {
		// The same evaluation as RouteContext, on the groups it recorded in the event.
		rule, err := r.firstRiskRule(context.Background(), ev.Risk)
		if err != nil {
			return Principal{}, err // wraps ErrUnauthorized, or is a *GroupLookupError
		}
		if rule == nil {
			return Principal{}, fmt.Errorf("%w: entity-risk trigger %q matches no rule of entityRiskPolicy, so it has no principal", ErrUnauthorized, ev.ID)
		}
		return Principal{ID: RulePrincipal(rule.Name), From: "entity-risk rule " + rule.Name}, nil
	}
	hdr, err := headerValue(header, HeaderPrincipal)
	if err != nil {
		return Principal{}, err
	}
	var p Principal
	switch {
	case hdr != "" && ev.Principal != "" && hdr != ev.Principal:
		return Principal{}, fmt.Errorf("%w: event %q names two principals: header %s %q and oktaUserId %q",
			ErrUnauthorized, ev.ID, HeaderPrincipal, hdr, ev.Principal)
	case hdr != "":
		p = Principal{ID: hdr, From: "header " + HeaderPrincipal}
	case ev.Principal != "":
		p = Principal{ID: ev.Principal, From: "oktaUserId"}
	case r.defaultPrincipals[subject] != "":
		p = Principal{ID: r.defaultPrincipals[subject], From: "defaultPrincipals[" + subject + "]"}
	default:
		return Principal{}, fmt.Errorf("%w: event %q names no principal: it has no oktaUserId (the admin who runs the flow), no %s header from a trusted ingress, and no default principal is configured for %s (defaultPrincipals)",
			ErrUnauthorized, ev.ID, HeaderPrincipal, subject)
	}
	if strings.HasPrefix(p.ID, config.RulePrincipalPrefix) {
		return Principal{}, fmt.Errorf("%w: principal %q (from %s): the %s prefix is reserved for entity-risk rules",
			ErrUnauthorized, p.ID, p.From, config.RulePrincipalPrefix)
	}
	groups, err := headerValue(header, HeaderPrincipalGroups)
	if err != nil {
		return Principal{}, err
	}
	p.Groups = ParseGroups(groups)
	return p, nil
}

// ParseGroups splits a comma-separated list of group ids, dropping blanks.
func ParseGroups(s string) []string {
	var out []string
	for g := range strings.SplitSeq(s, ",") {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// headerValue returns the one value of a header, matching its name case-insensitively. Values
// that disagree are an error: a principal must be unambiguous.
func headerValue(h map[string][]string, name string) (string, error) {
	var val string
	for k, vs := range h {
		if !strings.EqualFold(k, name) {
			continue
		}
		for _, v := range vs {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if val != "" && v != val {
				return "", fmt.Errorf("%w: header %s is given twice, as %q and %q", ErrUnauthorized, name, val, v)
			}
			val = v
		}
	}
	return val, nil
}

// Authorize returns nil when p may run flow, and otherwise an error wrapping
// [ErrUnauthorized] that says who, which flow, that the run permission is missing, and why.
func (r *Router) Authorize(ev *event.Event, p Principal, flow string) error {
	if p.ID == "" {
		return fmt.Errorf("%w: event %q has no principal; nobody may run flow %q for it", ErrUnauthorized, eventID(ev), flow)
	}
	view, run, granting := r.Permissions(p.ID, p.Groups, flow)
	if run {
		return nil
	}
	var why string
	switch holding := r.ResourceSets(flow); {
	case len(holding) == 0:
		why = "the flow is in no resource set"
	case view:
		why = fmt.Sprintf("%s grant%s it view only", setList(granting), plural(len(granting)))
	default:
		who := "it"
		if len(p.Groups) > 0 {
			who = "it or its groups"
		}
		why = fmt.Sprintf("the flow is in %s, none of which is assigned to %s", setList(holding), who)
		if len(holding) == 1 {
			why = fmt.Sprintf("the flow is in %s, which is not assigned to %s", setList(holding), who)
		}
	}
	return fmt.Errorf("%w: %s may not run flow %q: missing permission %s: %s", ErrUnauthorized, p, flow, config.PermissionRun, why)
}

func eventID(ev *event.Event) string {
	if ev == nil {
		return ""
	}
	return ev.ID
}

func setList(sets []string) string {
	q := make([]string, len(sets))
	for i, s := range sets {
		q[i] = fmt.Sprintf("%q", s)
	}
	if len(sets) == 1 {
		return "resource set " + q[0]
	}
	return "resource sets " + strings.Join(q, ", ")
}

func plural(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

// Permissions says whether principal, a member of groups, may view and run flow, and through
// which resource sets (those holding the flow and assigned to the principal, one of its groups
// or, for "rule:<name>", the rule). Run implies view.
func (r *Router) Permissions(principal string, groups []string, flow string) (view, run bool, sets []string) {
	for _, s := range r.sets {
		if !slices.Contains(s.Flows, flow) || !assigned(s, principal, groups) {
			continue
		}
		v, x := s.Grants()
		if !v && !x {
			continue
		}
		view, run = view || v, run || x
		sets = append(sets, s.Name)
	}
	return view, run, sets
}

// ResourceSets names the resource sets that hold flow, in configuration order.
func (r *Router) ResourceSets(flow string) []string {
	var out []string
	for _, s := range r.sets {
		if slices.Contains(s.Flows, flow) {
			out = append(out, s.Name)
		}
	}
	return out
}

// assigned reports whether the set is assigned to principal: a rule principal by rule name;
// a user by id (exact) or login (case-insensitive); or through one of its groups.
func assigned(s config.ResourceSet, principal string, groups []string) bool {
	if name, ok := strings.CutPrefix(principal, config.RulePrincipalPrefix); ok {
		return slices.Contains(s.Rules, name)
	}
	if principal == "" {
		return false
	}
	for _, u := range s.Users {
		if u == principal || (strings.Contains(u, "@") && strings.EqualFold(u, principal)) {
			return true
		}
	}
	return overlaps(s.Groups, groups)
}

// Inputs returns what flow receives for ev: the event's flat inputs passed through the flow's
// input mapping (see [config.Flow.MapInputs]); all of them when the flow has none. An event
// that does not fit the mapping is an error wrapping [ErrInputMapping].
func (r *Router) Inputs(ev *event.Event, flow string) (map[string]any, error) {
	f, ok := r.flows[flow]
	if !ok {
		return ev.Inputs(), nil
	}
	in, err := f.MapInputs(ev.Inputs())
	if err != nil {
		return nil, fmt.Errorf("%w: event %q: %w", ErrInputMapping, ev.ID, err)
	}
	return in, nil
}
