package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Okta System Log event types remediator takes as entity-risk events, and the event type
// of an event-hook delivery.
const (
	EventTypeUserRiskDetect = "user.risk.detect"
	EventTypeUserRiskChange = "user.risk.change"
	EventTypeHookDelivery   = "com.okta.event_hook"
)

// SourceOktaSystemLog is the Source of an event decoded from an Okta System Log LogEvent.
const SourceOktaSystemLog = "Okta System Log"

// IsRiskEventType reports whether a LogEvent of this eventType is an entity-risk event
// remediator takes: user.risk.detect or user.risk.change.
func IsRiskEventType(eventType string) bool {
	return eventType == EventTypeUserRiskDetect || eventType == EventTypeUserRiskChange
}

// FieldError is a Decode failure at one place in the document.
type FieldError struct {
	// Pointer is the RFC 6901 pointer of the offending value ("" for the document).
	Pointer string
	// Msg says what is wrong, e.g. "expected a string, got number".
	Msg string
}

func (e *FieldError) Error() string { return e.Pointer + ": " + e.Msg }

// logEvent reads an Okta System Log LogEvent for user.risk.detect or user.risk.change.
func (r *reader) logEvent(top map[string]any) *Event {
	e := &Event{
		ID:     r.str(top, "", "uuid"),
		Kind:   KindEntityRisk,
		Time:   r.timestamp(top, "published"),
		Source: SourceOktaSystemLog,
		Type:   r.str(top, "", "eventType"),
	}
	rt := &RiskTrigger{}
	users := 0
	for i, t := range r.list(top, "", "target") {
		p := fmt.Sprintf("/target/%d", i)
		o, ok := t.(map[string]any)
		if !ok {
			r.fail(p, "an object", t)
			continue
		}
		// Okta does not guarantee the order of targets: find them by type.
		switch r.str(o, p, "type") {
		case "User":
			if users++; users == 1 {
				rt.UserID = r.str(o, p, "id")
				rt.UserLogin = r.str(o, p, "alternateId")
			}
		case "Policy":
			rt.PolicyID = r.str(o, p, "id")
		case "Rule":
			rt.RuleID = r.str(o, p, "id")
			rt.RuleName = r.str(o, p, "displayName")
		}
	}
	switch {
	case r.err != nil:
	case users == 0:
		r.err = &FieldError{"/target", "no target of type User: the at-risk user is unknown"}
	case users > 1:
		r.err = &FieldError{"/target", fmt.Sprintf("%d targets of type User: the at-risk user is ambiguous", users)}
	case rt.UserID == "":
		r.err = &FieldError{"/target", "the target of type User has no id"}
	}

	debugData := r.obj(r.obj(top, "", "debugContext"), "/debugContext", "debugData")
	risk, riskKey := riskMember(debugData)
	rt.RiskDebugData = risk
	members := ParseRiskData(risk)
	if obj, ok := debugData[riskKey].(map[string]any); ok { // a bridge may deliver it as an object
		for k, v := range obj {
			if s, ok := flatString(v); ok {
				members[k] = s
			}
		}
		rt.RiskDebugData, _ = flatString(obj)
	}
	// The risk string first; top-level debugData members as a fall-back, for bridges and
	// user.risk.change events that carry the level there.
	lookup := func(keys []string) string {
		if v, ok := RiskValue(members, keys...); ok {
			return v
		}
		v, _ := RiskValue(stringMembers(debugData), keys...)
		return v
	}
	level, known := NormalizeRiskLevel(lookup(riskLevelKeys))
	riskPtr := "/debugContext/debugData/" + escapePointerToken(riskKey)
	if riskKey == "" {
		riskPtr = "/debugContext/debugData/risk"
	}
	if r.err == nil {
		switch {
		case level == "":
			r.err = &FieldError{riskPtr, "no risk level (level=NONE, LOW, MEDIUM or HIGH) in the event"}
		case !known:
			r.err = &FieldError{riskPtr, fmt.Sprintf("risk level %q is not NONE, LOW, MEDIUM or HIGH", truncateRunes(level, 64))}
		}
	}
	rt.RiskLevel = level
	if prev, ok := NormalizeRiskLevel(lookup(riskPreviousKeys)); ok {
		rt.PreviousRiskLevel = prev
	}
	rt.DetectionName = lookup(riskNameKeys)
	rt.DetectionType = DetectionTypeForName(rt.DetectionName)
	if t := strings.ToUpper(strings.TrimSpace(lookup(riskTypeKeys))); IsDetectionType(t) {
		rt.DetectionType = t
	}
	rt.Reasons = lookup(riskReasonKeys)
	rt.Issuer = lookup(riskIssuerKeys)
	rt.OktaTraceID, _ = RiskValue(stringMembers(debugData), "traceId")

	e.Principal = rt.RuleID
	e.Risk = rt
	return e
}

// riskMember returns debugData's risk member as a string ("" when absent or not a string)
// and its key: "risk", else the first key equal to it without regard to case ("Risk" in
// policy.entity_risk.* events).
func riskMember(debugData map[string]any) (value, key string) {
	if _, ok := debugData["risk"]; ok {
		key = "risk"
	} else {
		for _, k := range sortedKeys(debugData) {
			if strings.EqualFold(k, "risk") {
				key = k
				break
			}
		}
	}
	value, _ = debugData[key].(string)
	return value, key
}

// stringMembers returns the string members of o.
func stringMembers(o map[string]any) map[string]string {
	out := make(map[string]string, len(o))
	for k, v := range o {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// list returns the array member key of o (nil when absent or null).
func (r *reader) list(o map[string]any, path, key string) []any {
	v, ok := o[key]
	if !ok || v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		r.fail(path+"/"+key, "an array", v)
	}
	return arr
}

func escapePointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}

// HookEvent is one LogEvent of an Okta event-hook delivery.
type HookEvent struct {
	// Raw is the LogEvent's JSON exactly as it stood in the delivery (a copy), to be
	// published as it is.
	Raw []byte
	// EventType and UUID are the LogEvent's eventType and uuid, "" when absent or not
	// strings.
	EventType string
	UUID      string
}

// IsRisk reports whether the LogEvent is one remediator takes (see [IsRiskEventType]).
func (h HookEvent) IsRisk() bool { return IsRiskEventType(h.EventType) }

// ErrNotHookDelivery is matched (errors.Is) by SplitHookDelivery's error for JSON that is
// not an Okta event-hook delivery.
var ErrNotHookDelivery = errors.New("not an Okta event-hook delivery")

// SplitHookDelivery splits an Okta event-hook delivery (eventType "com.okta.event_hook",
// LogEvents in data.events) into its LogEvents, in their order.
//
// It first applies [CheckJSON] to the whole delivery and returns its *JSONError, so a
// delivery with a duplicate key or invalid UTF-8 anywhere is refused as a whole. It returns
// an error matching [ErrNotHookDelivery] when the top level is not an object, eventType is
// present and is not "com.okta.event_hook", or data.events is not an array. It does not
// judge the LogEvents themselves: an element that is not an object, or lacks a string
// eventType or uuid, comes back with those fields empty (IsRisk is then false unless the
// type is a risk type), and the intake's schema check decides on each risk event published.
// Duplicates within a batch are returned as they are; a publisher de-duplicates them by
// uuid (Nats-Msg-Id).
func SplitHookDelivery(data []byte) ([]HookEvent, error) {
	if err := CheckJSON(data); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: the top level is not an object", ErrNotHookDelivery)
	}
	if raw, ok := top["eventType"]; ok {
		var t string
		if json.Unmarshal(raw, &t) != nil || t != EventTypeHookDelivery {
			return nil, fmt.Errorf("%w: eventType is %s, not %q", ErrNotHookDelivery, truncateRunes(string(raw), 64), EventTypeHookDelivery)
		}
	}
	var d map[string]json.RawMessage
	if json.Unmarshal(top["data"], &d) != nil || d == nil {
		return nil, fmt.Errorf("%w: no data object", ErrNotHookDelivery)
	}
	var events []json.RawMessage
	if json.Unmarshal(d["events"], &events) != nil || events == nil {
		return nil, fmt.Errorf("%w: data.events is not an array", ErrNotHookDelivery)
	}
	out := make([]HookEvent, len(events))
	for i, raw := range events {
		out[i].Raw = raw
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		_ = json.Unmarshal(m["eventType"], &out[i].EventType)
		_ = json.Unmarshal(m["uuid"], &out[i].UUID)
	}
	return out, nil
}
