package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/remediator/remediator/event"
)

// ResourceSet grants principals permissions on flows, as an Okta resource set assigned with a
// custom admin role does for delegated flows: users, groups and entity-risk rules are assigned
// the set, and may view (Okta's okta.workflows.read) or view and run (okta.workflows.invoke)
// the flows in it. A flow may be in several sets; a principal's permissions on a flow are the
// union of the sets that contain the flow and are assigned to it.
type ResourceSet struct {
	// Name identifies the set in errors, `remediator flows list` and authorization messages.
	Name string `yaml:"name"`
	// Flows in the set, by name.
	Flows []string `yaml:"flows"`
	// Users assigned the set: Okta user ids (00u…) matched exactly, or logins (anything with an
	// "@") matched case-insensitively. Default principals (see Config.DefaultPrincipals) are
	// listed here too.
	Users []string `yaml:"users"`
	// Groups assigned the set, by Okta group id (00g…): a principal whose groups (the
	// Remediator-Principal-Groups header) include one is assigned.
	Groups []string `yaml:"groups"`
	// Rules assigned the set, by entityRiskPolicy rule name: an entity-risk trigger routed by
	// the rule has the principal "rule:<name>".
	Rules []string `yaml:"rules"`
	// Permissions granted: "view" and/or "run" ("run" implies "view"). Okta's names
	// okta.workflows.read and okta.workflows.invoke are accepted too.
	Permissions []string `yaml:"permissions"`
}

// Resource-set permissions.
const (
	// PermissionView lets a principal see a flow (`remediator flows list`), not run it.
	PermissionView = "view"
	// PermissionRun lets a principal run a flow; it implies PermissionView.
	PermissionRun = "run"
)

// RulePrincipalPrefix starts the principal of an entity-risk trigger: "rule:" followed by the
// name of the entityRiskPolicy rule that routed it. No user principal may start with it.
const RulePrincipalPrefix = "rule:"

// Grants reports what the set's permissions allow: run implies view.
func (s ResourceSet) Grants() (view, run bool) {
	for _, p := range s.Permissions {
		switch canonicalPermission(p) {
		case PermissionRun:
			view, run = true, true
		case PermissionView:
			view = true
		}
	}
	return view, run
}

func canonicalPermission(p string) string {
	switch q := strings.ToLower(strings.TrimSpace(p)); q {
	case "okta.workflows.read":
		return PermissionView
	case "okta.workflows.invoke":
		return PermissionRun
	default:
		return q
	}
}

// Input is one input of a flow's input mapping: which event input (or constant) becomes
// which flow input, and of which type. The types are those of a delegated-flow card's fields.
type Input struct {
	// Name of the flow input (the card's field name).
	Name string `yaml:"name"`
	// From is the event input it takes its value from: a name of event.Event.Inputs, such as
	// entityDisplayName or userId (see event.ISPMInputNames and event.RiskInputNames), or any
	// additionalData… name for ISPM issues. Set From or Value, not both.
	From string `yaml:"from"`
	// Value is a constant instead of an event input.
	Value any `yaml:"value"`
	// Type is text (default), number, boolean or datetime: the card's Text, Number,
	// True/False and Date & Time. Lists and objects are refused.
	Type string `yaml:"type"`
	// Required makes an event without the From input fail (schema_violation) instead of
	// leaving the input out. Default false.
	Required bool `yaml:"required"`
}

// Input types, as a delegated-flow card's field types.
const (
	InputText     = "text"
	InputNumber   = "number"
	InputBoolean  = "boolean"
	InputDateTime = "datetime"
)

// InputTypes lists the accepted input types.
var InputTypes = []string{InputText, InputNumber, InputBoolean, InputDateTime}

// MapInputs turns an event's flat inputs (event.Event.Inputs) into what the flow receives.
// Without an input mapping the inputs are returned as they are (a copy). With one, the flow
// receives exactly the mapped inputs, each converted to its type: numbers from numeric text,
// booleans from "true"/"false", date-times normalised to RFC 3339 in UTC. An input whose
// source the event lacks is left out, or is an error when Required. The error names the flow,
// the input and the value.
func (f *Flow) MapInputs(in map[string]any) (map[string]any, error) {
	if len(f.Inputs) == 0 {
		return maps.Clone(in), nil
	}
	out := make(map[string]any, len(f.Inputs))
	for _, m := range f.Inputs {
		typ := m.typ()
		v, src := m.Value, "a constant"
		if m.From != "" {
			src = "event input " + m.From
			raw, ok := in[m.From]
			if !ok || raw == nil || raw == "" {
				if m.Required {
					return nil, fmt.Errorf("flow %s: input %q (%s) is required, but the event has no %s", f.Name, m.Name, typ, m.From)
				}
				continue
			}
			v = raw
		}
		cv, err := ConvertInput(typ, v)
		if err != nil {
			return nil, fmt.Errorf("flow %s: input %q (%s, from %s): %w", f.Name, m.Name, typ, src, err)
		}
		out[m.Name] = cv
	}
	return out, nil
}

func (m Input) typ() string {
	if m.Type == "" {
		return InputText
	}
	return strings.ToLower(m.Type)
}

// jsonNumberRE is the JSON number grammar.
var jsonNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// dateTimeLayouts are the date-time forms a datetime input accepts besides RFC 3339: a date
// (ISPM's issueDetectedAt, "2024-06-18") and a US date (ISPM's additionalDataLastLogin,
// "03/28/2024"), both read as midnight UTC.
var dateTimeLayouts = []string{"2006-01-02", "01/02/2006"}

// ConvertInput converts v to an input of type typ (one of [InputTypes]): text to a string,
// number to a json.Number, boolean to a bool, datetime to an RFC 3339 string in UTC. It
// refuses lists and objects, and values that do not convert, saying why.
func ConvertInput(typ string, v any) (any, error) {
	switch rv := reflect.ValueOf(v); {
	case v == nil:
		return nil, fmt.Errorf("no value")
	case rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array || rv.Kind() == reflect.Map ||
		(rv.Kind() == reflect.Struct && rv.Type() != reflect.TypeFor[time.Time]()):
		return nil, fmt.Errorf("%s is a list or an object; delegated flows cannot take lists or objects (flatten it, e.g. join to text)", short(v))
	}
	switch typ {
	case InputText:
		switch x := v.(type) {
		case string:
			return x, nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
		return fmt.Sprint(v), nil
	case InputNumber:
		switch x := v.(type) {
		case json.Number:
			return x, nil
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
			return json.Number(fmt.Sprint(x)), nil
		case float32, float64:
			f := reflect.ValueOf(x).Float()
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%v is not a finite number", f)
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		case string:
			s := strings.TrimSpace(x)
			f, err := strconv.ParseFloat(s, 64)
			switch {
			case err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xX_"):
			case jsonNumberRE.MatchString(s):
				return json.Number(s), nil // as written, so that long integers keep every digit
			default:
				return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
			}
		}
		return nil, fmt.Errorf("%s is not a number", short(v))
	case InputBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, fmt.Errorf("%s is not true or false", short(v))
	case InputDateTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		case string:
			s := strings.TrimSpace(x)
			if t, ok := event.ParseTime(s); ok {
				return t.UTC().Format(time.RFC3339Nano), nil
			}
			for _, layout := range dateTimeLayouts {
				if t, err := time.Parse(layout, s); err == nil {
					return t.UTC().Format(time.RFC3339), nil
				}
			}
		}
		return nil, fmt.Errorf("%s is not a date-time (want RFC 3339, YYYY-MM-DD or MM/DD/YYYY)", short(v))
	}
	return nil, fmt.Errorf("unknown input type %q (want %s)", typ, strings.Join(InputTypes, ", "))
}

// short quotes a value for an error message, clipped.
func short(v any) string {
	var s string
	if str, ok := v.(string); ok {
		s = strconv.Quote(str)
	} else {
		b, err := json.Marshal(v)
		if err != nil {
			s = fmt.Sprint(v)
		} else {
			s = string(b)
		}
	}
	if len(s) > 60 {
		s = s[:57] + "…"
	}
	return s
}

// validateInputs checks a flow's input mapping; kinds are the event kinds routed to it (both
// when none is).
func (f Flow) validateInputs(kinds []event.Kind) []string {
	var p []string
	names := map[string]int{}
	for i, m := range f.Inputs {
		where := fmt.Sprintf("inputs[%d] (%s)", i, m.Name)
		bad := func(format string, args ...any) { p = append(p, where+": "+fmt.Sprintf(format, args...)) }
		switch j, dup := names[m.Name]; {
		case strings.TrimSpace(m.Name) == "":
			bad("name is required")
		case dup:
			bad("input %q is also defined by inputs[%d]", m.Name, j)
		case m.Name == "idempotencyKey":
			bad(`name "idempotencyKey" is reserved: every flow receives it`)
		default:
			names[m.Name] = i
		}
		typ := m.typ()
		typeOK := true
		switch {
		case typ == "list" || typ == "object" || typ == "array":
			bad("type %q: delegated flows cannot take lists or objects; flatten it, e.g. join to text", m.Type)
			typeOK = false
		case !slices.Contains(InputTypes, typ):
			bad("type %q is not text, number, boolean or datetime (the delegated card's Text, Number, True/False, Date & Time)", m.Type)
			typeOK = false
		}
		switch {
		case m.From != "" && m.Value != nil:
			bad("set from (an event input) or value (a constant), not both")
		case m.From == "" && m.Value == nil:
			bad("set from (an event input) or value (a constant)")
		case m.From != "":
			if known := knownFor(kinds, m.From); !known {
				bad("from %q is not an input of %s; known: %s", m.From, kindNames(kinds), knownNames(kinds))
			}
		case typeOK:
			if _, err := ConvertInput(typ, m.Value); err != nil {
				bad("value: %v", err)
			}
		}
	}
	return p
}

func knownFor(kinds []event.Kind, name string) bool {
	for _, k := range kinds {
		if event.IsInputName(k, name) {
			return true
		}
	}
	return false
}

func kindNames(kinds []event.Kind) string {
	var s []string
	for _, k := range kinds {
		switch k {
		case event.KindISPMIssue:
			s = append(s, "ISPM issues")
		case event.KindEntityRisk:
			s = append(s, "entity-risk triggers")
		default:
			s = append(s, string(k))
		}
	}
	return strings.Join(s, " or ")
}

func knownNames(kinds []event.Kind) string {
	var names []string
	ispm := false
	for _, k := range kinds {
		names = append(names, event.InputNames(k)...)
		ispm = ispm || k == event.KindISPMIssue
	}
	slices.Sort(names)
	names = slices.Compact(names)
	s := strings.Join(names, ", ")
	if ispm {
		s += ", or any " + event.AdditionalDataPrefix + "… name"
	}
	return s
}

// validateResourceSets checks resourceSets; flows and rules are the defined names.
func (c *Config) validateResourceSets(bad func(where, format string, args ...any), flows map[string]bool) {
	rules := map[string]bool{}
	for _, r := range c.RiskRules {
		rules[r.Name] = true
	}
	names := map[string]int{}
	for i, s := range c.ResourceSets {
		where := fmt.Sprintf("resourceSets[%d] (%s)", i, s.Name)
		switch j, dup := names[s.Name]; {
		case !nameRE.MatchString(s.Name):
			bad(where, "name %q must be 1-64 letters, digits, '-' or '_'", s.Name)
		case dup:
			bad(where, "name %q is also used by resourceSets[%d]", s.Name, j)
		default:
			names[s.Name] = i
		}
		if len(s.Flows) == 0 {
			bad(where, "flows is empty: a resource set needs at least one flow")
		}
		for _, f := range s.Flows {
			if !flows[f] {
				bad(where, "flow %q is not defined under flows", f)
			}
		}
		if len(s.Users)+len(s.Groups)+len(s.Rules) == 0 {
			bad(where, "assigns no one: list users, groups or rules")
		}
		for _, u := range s.Users {
			switch {
			case strings.TrimSpace(u) == "":
				bad(where, "users has an empty entry")
			case strings.HasPrefix(u, RulePrincipalPrefix):
				bad(where, "user %q: list entity-risk rules under rules, by name", u)
			}
		}
		for _, g := range s.Groups {
			if strings.TrimSpace(g) == "" {
				bad(where, "groups has an empty entry")
			}
		}
		for _, r := range s.Rules {
			if !rules[r] {
				bad(where, "rule %q is not defined under entityRiskPolicy", r)
			}
		}
		if len(s.Permissions) == 0 {
			bad(where, "permissions is empty: grant view or run")
		}
		for _, p := range s.Permissions {
			if q := canonicalPermission(p); q != PermissionView && q != PermissionRun {
				bad(where, "permission %q is not view or run", p)
			}
		}
	}
}

// validateDefaultPrincipals checks defaultPrincipals.
func (c *Config) validateDefaultPrincipals(bad func(where, format string, args ...any)) {
	for _, subject := range slices.Sorted(maps.Keys(c.DefaultPrincipals)) {
		p := c.DefaultPrincipals[subject]
		where := fmt.Sprintf("defaultPrincipals[%s]", subject)
		kind, ok := event.KindForSubject(subject)
		switch {
		case !ok:
			bad(where, "%q is not an event subject; the one that takes a default principal is %s", subject, event.SubjectISPM)
		case kind == event.KindEntityRisk:
			bad(where, "entity-risk triggers are authorized as the rule that routes them (%s<name>); a default principal does not apply", RulePrincipalPrefix)
		}
		switch {
		case strings.TrimSpace(p) == "":
			bad(where, "the principal is empty")
		case strings.HasPrefix(p, RulePrincipalPrefix):
			bad(where, "principal %q: the %s prefix is reserved for entity-risk rules", p, RulePrincipalPrefix)
		}
	}
}

// validatePeople checks the users and groups conditions of a rule: no empty ids, no id both
// included and excluded.
func (c RiskConditions) validatePeople() []string {
	var p []string
	for _, pc := range []struct {
		name string
		ie   IncludeExclude
	}{{"users", c.Users}, {"groups", c.Groups}} {
		for _, l := range []struct {
			name string
			ids  []string
		}{{"include", pc.ie.Include}, {"exclude", pc.ie.Exclude}} {
			if slices.ContainsFunc(l.ids, func(s string) bool { return strings.TrimSpace(s) == "" }) {
				p = append(p, fmt.Sprintf("conditions.%s.%s has an empty id", pc.name, l.name))
			}
		}
		for _, id := range pc.ie.Include {
			if id != "" && slices.Contains(pc.ie.Exclude, id) {
				p = append(p, fmt.Sprintf("conditions.%s: %q is both included and excluded", pc.name, id))
			}
		}
	}
	return p
}

// flowKinds returns, per flow name, the event kinds routed to it.
func (c *Config) flowKinds() map[string][]event.Kind {
	out := map[string][]event.Kind{}
	add := func(f string, k event.Kind) {
		if !slices.Contains(out[f], k) {
			out[f] = append(out[f], k)
		}
	}
	for _, r := range c.Routes {
		for _, f := range r.Flows {
			add(f, event.KindISPMIssue)
		}
	}
	for _, r := range c.RiskRules {
		if r.Flow != "" { // a log-only rule runs nothing
			add(r.Flow, event.KindEntityRisk)
		}
	}
	return out
}
