package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Decode normalises a document of the given shape (already validated by package schema)
// into an Event.
//
//   - [ShapeISPMOnDemand]: the flat delegated-flow inputs; every "additionalData…" member
//     goes into Issue.AdditionalData under its own name. Principal is oktaUserId.
//   - [ShapeISPMWebhook]: the webhook envelope; ID, Time and Type come from id, timestamp
//     and type, the Issue from eventData and its affectedEntity (identifierInService, or
//     idInService when that is absent). Each member k of affectedEntity.additionalData becomes
//     Issue.AdditionalData["additionalData"+UpperCamel(k)] (e.g. lastLogin becomes
//     additionalDataLastLogin) in the format ISPM gives the same input on demand (see
//     onDemandString: types "Admin, Super admin", lastLogin "03/28/2024", lists of
//     strings comma-separated), other scalars as their JSON text without quotes, other
//     arrays and objects as compact JSON, nulls left out. Principal is a top-level
//     oktaUserId, if any.
//   - [ShapeEntityRisk]: the entity-risk trigger; risk levels are upper-cased. Principal is
//     ruleId, or oktaUserId when there is no rule.
//   - [ShapeOktaLogEventRisk]: an Okta System Log LogEvent (user.risk.detect or
//     user.risk.change). ID is uuid, Time is published, Type is eventType, Source is
//     [SourceOktaSystemLog]. The user is the one target of type "User" (found by type:
//     Okta does not guarantee the order of targets); a "Policy" and a "Rule" target, when
//     present, give PolicyID, RuleID and RuleName, and Principal is RuleID. The risk comes
//     from debugContext.debugData.risk, read with [ParseRiskData] and kept raw in
//     RiskDebugData: level (required, NONE, LOW, MEDIUM or HIGH in any case), previousLevel,
//     detectionName (mapped by [DetectionTypeForName], UNKNOWN when it is not in the table),
//     reasons and issuer, each also under the other spellings of [RiskValue] and, failing
//     the risk string, as a member of debugData itself. OktaTraceID is debugData.TraceId.
//     A missing or unknown level, no User target, two User targets, or a User target
//     without id is an error (a *[FieldError]).
//
// Time is parsed with [ParseTime] and left zero when absent or unparsable.
// Issue.AdditionalData is never nil for an ISPM event. Members are matched by exact,
// case-sensitive name; unknown members are ignored. Decode returns an error, never panics,
// for bytes that are not a JSON object or whose known members have the wrong JSON type
// (the first such member in a fixed order, so the message is stable). Bytes that
// [CheckJSON] refuses (duplicate keys, invalid UTF-8) are an error wrapping its *JSONError;
// errors about a member wrap a *[FieldError].
func Decode(shape Shape, data []byte) (*Event, error) {
	switch shape {
	case ShapeISPMOnDemand, ShapeISPMWebhook, ShapeEntityRisk, ShapeOktaLogEventRisk:
	default:
		return nil, fmt.Errorf("event: unknown shape %q", shape)
	}
	// Duplicate keys and invalid strings would otherwise decode with the last value winning
	// and U+FFFD in place of the bad bytes.
	if err := CheckJSON(data); err != nil {
		return nil, fmt.Errorf("event: decode %s: %w", shape, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("event: decode %s: %w", shape, err)
	}
	return DecodeDocument(shape, doc)
}

// DecodeDocument is [Decode] of a document already parsed (numbers as json.Number) from
// bytes that [CheckJSON] accepts, as a validator that parsed it returns it: the event is then
// parsed once. The document is only read.
func DecodeDocument(shape Shape, doc any) (*Event, error) {
	switch shape {
	case ShapeISPMOnDemand, ShapeISPMWebhook, ShapeEntityRisk, ShapeOktaLogEventRisk:
	default:
		return nil, fmt.Errorf("event: unknown shape %q", shape)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("event: decode %s: top level is %s, not an object", shape, jsonType(doc))
	}
	r := &reader{}
	var e *Event
	switch shape {
	case ShapeISPMOnDemand:
		e = r.onDemand(top)
	case ShapeISPMWebhook:
		e = r.webhook(top)
	case ShapeEntityRisk:
		e = r.entityRisk(top)
	case ShapeOktaLogEventRisk:
		e = r.logEvent(top)
	}
	if r.err != nil {
		return nil, fmt.Errorf("event: decode %s: %w", shape, r.err)
	}
	e.Shape = shape
	return e, nil
}

// reader reads members of decoded JSON objects and keeps the first type error.
type reader struct {
	err error
}

func (r *reader) fail(path, want string, v any) {
	if r.err == nil {
		r.err = &FieldError{Pointer: path, Msg: fmt.Sprintf("expected %s, got %s", want, jsonType(v))}
	}
}

// str returns the string member key of o ("" when absent or null).
func (r *reader) str(o map[string]any, path, key string) string {
	v, ok := o[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(path+"/"+key, "a string", v)
	}
	return s
}

// obj returns the object member key of o (nil when absent or null).
func (r *reader) obj(o map[string]any, path, key string) map[string]any {
	v, ok := o[key]
	if !ok || v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.fail(path+"/"+key, "an object", v)
	}
	return m
}

func (r *reader) timestamp(o map[string]any, key string) time.Time {
	t, _ := ParseTime(r.str(o, "", key))
	return t
}

// ParseTime parses an RFC 3339 date-time as Decode reads event times: "T" and "Z" in
// either case (RFC 3339 allows both), a leap second read as the second before it. ok is
// false, and t zero, for anything else. Package schema uses it for the JSON Schema
// "date-time" format, so that a time the schema accepts is a time Decode reads.
func ParseTime(s string) (t time.Time, ok bool) {
	s = strings.ToUpper(s)
	if strings.ContainsRune(s, ',') { // Go also takes a decimal comma; RFC 3339 does not
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && len(s) > 19 && s[16:19] == ":60" {
		t, err = time.Parse(time.RFC3339Nano, s[:17]+"59"+s[19:])
	}
	if err != nil {
		return time.Time{}, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 { // Go takes +24:00; RFC 3339 stops at 23
		return time.Time{}, false
	}
	return t, true
}

// onDemandFields pairs the on-demand input names with Issue fields, in ISPM's order.
func onDemandFields(i *Issue) []struct {
	key string
	dst *string
} {
	return []struct {
		key string
		dst *string
	}{
		{"issueId", &i.ID},
		{"issueCategory", &i.Category},
		{"issueSeverity", &i.Severity},
		{"issueTitle", &i.Title},
		{"issueFullDescription", &i.FullDescription},
		{"issueShortDescription", &i.ShortDescription},
		{"issueDetectedAt", &i.DetectedAt},
		{"issueSuggestedRemediation", &i.SuggestedRemediation},
		{"issueRiskAndImpact", &i.RiskAndImpact},
		{"issueLink", &i.Link},
		{"entityId", &i.EntityID},
		{"entityIdInService", &i.EntityIDInService},
		{"entityType", &i.EntityType},
		{"entityDisplayName", &i.EntityDisplayName},
		{"entitySourceProductName", &i.EntitySourceProductName},
		{"entitySourceProductTenant", &i.EntitySourceProductTenant},
	}
}

const additionalDataPrefix = "additionalData"

func (r *reader) onDemand(top map[string]any) *Event {
	e := &Event{
		ID:        r.str(top, "", "eventId"),
		Kind:      KindISPMIssue,
		Time:      r.timestamp(top, "eventTimestamp"),
		Source:    r.str(top, "", "eventSource"),
		Type:      r.str(top, "", "eventType"),
		Principal: r.str(top, "", "oktaUserId"),
	}
	is := &Issue{AdditionalData: map[string]string{}}
	for _, f := range onDemandFields(is) {
		*f.dst = r.str(top, "", f.key)
	}
	for _, key := range sortedKeys(top) {
		if strings.HasPrefix(key, additionalDataPrefix) && top[key] != nil {
			is.AdditionalData[key] = r.str(top, "", key)
		}
	}
	e.Issue = is
	return e
}

func (r *reader) webhook(top map[string]any) *Event {
	e := &Event{
		ID:        r.str(top, "", "id"),
		Kind:      KindISPMIssue,
		Time:      r.timestamp(top, "timestamp"),
		Source:    r.str(top, "", "source"),
		Type:      r.str(top, "", "type"),
		Principal: r.str(top, "", "oktaUserId"),
	}
	const dp = "/eventData"
	d := r.obj(top, "", "eventData")
	if d == nil && r.err == nil {
		r.err = &FieldError{Pointer: dp, Msg: "missing"}
	}
	is := &Issue{
		ID:                   r.str(d, dp, "id"),
		Category:             r.str(d, dp, "category"),
		Severity:             r.str(d, dp, "severity"),
		Title:                r.str(d, dp, "title"),
		FullDescription:      r.str(d, dp, "fullDescription"),
		ShortDescription:     r.str(d, dp, "shortDescription"),
		DetectedAt:           r.str(d, dp, "detectedAt"),
		SuggestedRemediation: r.str(d, dp, "suggestedRemediation"),
		RiskAndImpact:        r.str(d, dp, "riskAndImpact"),
		Link:                 r.str(d, dp, "link"),
		AdditionalData:       map[string]string{},
	}
	const ap = dp + "/affectedEntity"
	if a := r.obj(d, dp, "affectedEntity"); a != nil {
		is.EntityID = r.str(a, ap, "id")
		is.EntityType = r.str(a, ap, "type")
		is.EntityDisplayName = r.str(a, ap, "displayName")
		is.EntityIDInService = r.str(a, ap, "identifierInService")
		if alt := r.str(a, ap, "idInService"); is.EntityIDInService == "" {
			is.EntityIDInService = alt
		}
		is.EntitySourceProductName = r.str(a, ap, "sourceProductName")
		is.EntitySourceProductTenant = r.str(a, ap, "sourceProductTenant")
		r.flattenAdditionalData(r.obj(a, ap, "additionalData"), is.AdditionalData)
	}
	e.Issue = is
	return e
}

// flattenAdditionalData writes each member of ad under "additionalData"+UpperCamel(key).
// Keys are visited in sorted order and the first to claim a name keeps it, so that the
// result does not depend on map order when two keys collide (e.g. "last_login" and
// "lastLogin").
func (r *reader) flattenAdditionalData(ad map[string]any, dst map[string]string) {
	for _, k := range sortedKeys(ad) {
		suffix := upperCamel(k)
		if suffix == "" {
			continue
		}
		name := additionalDataPrefix + suffix
		if _, taken := dst[name]; taken {
			continue
		}
		if s, ok := onDemandString(name, ad[k]); ok {
			dst[name] = s
		}
	}
}

// onDemandString renders a webhook additionalData member as ISPM renders the same member
// as a delegated-flow input, so that a flow gets one format whichever way the issue came:
// additionalDataTypes as the comma-separated type names ("Admin, Super admin", not the
// webhook's [{"type":"Admin","reasons":[…]}]), additionalDataLastLogin as MM/DD/YYYY in
// UTC ("03/28/2024", not "2024-03-28T10:12:44Z"), and any other list of strings
// comma-separated ("" for an empty list). Everything else is [flatString].
func onDemandString(name string, v any) (string, bool) {
	switch name {
	case additionalDataPrefix + "Types":
		if s, ok := joinList(v, "type"); ok {
			return s, true
		}
	case additionalDataPrefix + "LastLogin":
		if s, ok := v.(string); ok {
			if t, ok := ParseTime(s); ok {
				return t.UTC().Format("01/02/2006"), true
			}
		}
	}
	if s, ok := joinList(v, ""); ok {
		return s, true
	}
	return flatString(v)
}

// joinList joins a list of strings, or of objects whose member field is a string, with
// ", ". ok is false for anything else.
func joinList(v any, field string) (string, bool) {
	list, ok := v.([]any)
	if !ok {
		return "", false
	}
	parts := make([]string, 0, len(list))
	for _, item := range list {
		if o, isObj := item.(map[string]any); isObj && field != "" {
			item = o[field]
		}
		s, ok := item.(string)
		if !ok {
			return "", false
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", "), true
}

// flatString renders a JSON value as one string: strings as they are, numbers and booleans
// as their JSON text, arrays and objects as compact JSON. ok is false for null.
func flatString(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return strings.TrimSuffix(b.String(), "\n"), true
}

// upperCamel turns "lastLogin" into "LastLogin" and "unrotated_tokens" or
// "unrotated-tokens" into "UnrotatedTokens": words split at anything that is not a letter
// or digit, each word's first letter upper-cased, the rest kept.
func upperCamel(s string) string {
	var b strings.Builder
	upper := true
	for _, c := range s {
		if c == utf8.RuneError || !(unicode.IsLetter(c) || unicode.IsDigit(c)) {
			upper = true
			continue
		}
		if upper {
			c = unicode.ToUpper(c)
			upper = false
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *reader) entityRisk(top map[string]any) *Event {
	level := func(key string) string {
		l, _ := NormalizeRiskLevel(r.str(top, "", key))
		return l
	}
	rt := &RiskTrigger{
		UserID:            r.str(top, "", "userId"),
		UserLogin:         r.str(top, "", "userLogin"),
		RiskLevel:         level("riskLevel"),
		PreviousRiskLevel: level("previousRiskLevel"),
		DetectionType:     r.str(top, "", "detectionType"),
		DetectionName:     r.str(top, "", "detectionName"),
		Reasons:           r.str(top, "", "reasons"),
		Issuer:            r.str(top, "", "issuer"),
		PolicyID:          r.str(top, "", "policyId"),
		RuleID:            r.str(top, "", "ruleId"),
		RuleName:          r.str(top, "", "ruleName"),
		OktaTraceID:       r.str(top, "", "oktaTraceId"),
		Groups:            r.strList(top, "", "groups"),
	}
	principal := rt.RuleID
	if principal == "" {
		principal = r.str(top, "", "oktaUserId")
	}
	return &Event{
		ID:        r.str(top, "", "eventId"),
		Kind:      KindEntityRisk,
		Time:      r.timestamp(top, "eventTime"),
		Source:    r.str(top, "", "eventSource"),
		Type:      r.str(top, "", "eventType"),
		Principal: principal,
		Risk:      rt,
	}
}

// strList returns the array-of-strings member key of o (nil when absent or null).
func (r *reader) strList(o map[string]any, path, key string) []string {
	arr := r.list(o, path, key)
	if arr == nil {
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, item := range arr {
		s, ok := item.(string)
		if !ok {
			r.fail(fmt.Sprintf("%s/%s/%d", path, key, i), "a string", item)
			return nil
		}
		out = append(out, s)
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
