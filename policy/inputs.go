package policy

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/remediator/remediator/event"
)

// eventInputs is what a flow receives for ev before its input mapping: the event's flat
// inputs, made the same for every path the same finding can take.
//
//   - An entity-risk event's oktaUserId is its user (the at-risk user, as the user ID an Okta
//     entity-risk rule hands its delegated flow), never the rule that routed it.
//   - The additionalData* inputs of an ISPM issue have the format ISPM gives a delegated flow
//     on an on-demand run, whichever way the issue came: the webhook's additionalData.types
//     (a list of {type, reasons}) becomes "Admin, Service" (the type names joined with ", "),
//     and additionalData.lastLogin (an RFC 3339 time or a date) becomes "03/28/2024"
//     (MM/DD/YYYY, UTC). Values already in that format, and other additionalData* inputs, are
//     left as they are.
func eventInputs(ev *event.Event) map[string]any {
	in := ev.Inputs()
	if ev.Risk != nil {
		delete(in, "oktaUserId")
		if ev.Risk.UserID != "" {
			in["oktaUserId"] = ev.Risk.UserID
		}
	}
	if ev.Issue != nil {
		if v, ok := in["additionalDataTypes"].(string); ok {
			in["additionalDataTypes"] = onDemandTypes(v)
		}
		if v, ok := in["additionalDataLastLogin"].(string); ok {
			in["additionalDataLastLogin"] = onDemandDate(v)
		}
	}
	return in
}

// onDemandTypes turns the webhook's types, flattened to JSON (`[{"type":"Admin",...}]` or
// `["Admin"]`), into "Admin, ..."; anything else is returned unchanged.
func onDemandTypes(v string) string {
	if !strings.HasPrefix(strings.TrimSpace(v), "[") {
		return v
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(v), &items); err != nil {
		return v
	}
	names := make([]string, 0, len(items))
	for _, it := range items {
		var name string
		if json.Unmarshal(it, &name) == nil {
			names = append(names, name)
			continue
		}
		var obj struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(it, &obj) != nil || obj.Type == "" {
			return v // not a list of types after all: keep what came
		}
		names = append(names, obj.Type)
	}
	return strings.Join(names, ", ")
}

// onDemandDate turns an RFC 3339 time or a YYYY-MM-DD date into MM/DD/YYYY (UTC); anything
// else is returned unchanged.
func onDemandDate(v string) string {
	if t, ok := event.ParseTime(v); ok {
		return t.UTC().Format("01/02/2006")
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.Format("01/02/2006")
	}
	return v
}
