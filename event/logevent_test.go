package event

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseRiskData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"Okta's documented example", `{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=Anomalous location, new device, issuer=OKTA}`,
			map[string]string{"previousLevel": "LOW", "level": "MEDIUM", "detectionName": "Session Influenced User Risk", "reasons": "Anomalous location, new device", "issuer": "OKTA"}},
		{"commas in the last value", `{level=HIGH, reasons=a, b, c}`, map[string]string{"level": "HIGH", "reasons": "a, b, c"}},
		{"comma without a space", `{level=HIGH,reasons=a,b,issuer=OKTA}`, map[string]string{"level": "HIGH", "reasons": "a,b", "issuer": "OKTA"}},
		{"equals in a value", `{detectionName=a=b, level=LOW, reasons=x = y}`, map[string]string{"detectionName": "a=b", "level": "LOW", "reasons": "x = y"}},
		{"nested map and list stay whole", `{level=HIGH, reasons={ip=192.0.2.1, asn=64496}, tags=[a=1, b=2], issuer=OKTA}`,
			map[string]string{"level": "HIGH", "reasons": "{ip=192.0.2.1, asn=64496}", "tags": "[a=1, b=2]", "issuer": "OKTA"}},
		{"unbalanced brackets are ignored", `{level=HIGH, reasons=a {b, issuer=OKTA}`, map[string]string{"level": "HIGH", "reasons": "a {b", "issuer": "OKTA"}},
		{"stray closing bracket", `{reasons=a] b, level=LOW}`, map[string]string{"reasons": "a] b", "level": "LOW"}},
		{"no braces", `level=HIGH, issuer=OKTA`, map[string]string{"level": "HIGH", "issuer": "OKTA"}},
		{"spaces around keys and values", `{  level = HIGH ,  issuer=  OKTA  }`, map[string]string{"level": "HIGH", "issuer": "OKTA"}},
		{"missing keys", `{level=LOW}`, map[string]string{"level": "LOW"}},
		{"empty value", `{level=, issuer=OKTA}`, map[string]string{"level": "", "issuer": "OKTA"}},
		{"renamed keys kept as written", `{risk_level=high, Detection-Name=Okta Threat Intelligence}`, map[string]string{"risk_level": "high", "Detection-Name": "Okta Threat Intelligence"}},
		{"first of a repeated key wins", `{level=LOW, level=HIGH}`, map[string]string{"level": "LOW"}},
		{"text before the first key is dropped", `garbage, level=HIGH`, map[string]string{"level": "HIGH"}},
		{"key with a space is not a key", `{reasons=ok, new device=yes}`, map[string]string{"reasons": "ok, new device=yes"}},
		{"multibyte values", `{reasons=Connexion anormale, é=ü, level=MEDIUM}`, map[string]string{"reasons": "Connexion anormale, é=ü", "level": "MEDIUM"}},
		{"empty", ``, map[string]string{}},
		{"empty braces", `{}`, map[string]string{}},
		{"garbage", `not a map at all`, map[string]string{}},
		{"only separators", `{,,, = ,=}`, map[string]string{}},
		{"lone brace", `{`, map[string]string{}},
		{"JSON, not a map string", `{"level":"HIGH"}`, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ParseRiskData(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRiskData(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRiskValue(t *testing.T) {
	t.Parallel()
	m := map[string]string{"risk_level": "HIGH", "Previous-Level": "LOW", "detectionName": ""}
	if v, ok := RiskValue(m, "level", "riskLevel"); !ok || v != "HIGH" {
		t.Errorf("riskLevel = %q, %v", v, ok)
	}
	if v, ok := RiskValue(m, "previousLevel"); !ok || v != "LOW" {
		t.Errorf("previousLevel = %q, %v", v, ok)
	}
	if v, ok := RiskValue(m, "detectionName"); ok {
		t.Errorf("empty detectionName = %q, %v; want not found", v, ok)
	}
}

func TestDetectionTypeForName(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"Session Influenced User Risk":                 "SESSION_INFLUENCED_USER_RISK",
		"session influenced user risk":                 "SESSION_INFLUENCED_USER_RISK",
		"  Suspected   brute-force  ":                  "BRUTE_FORCE_ATTACK",
		"This wasn't me":                               "USER_REPORTED_SUSPICIOUS_ACTIVITY",
		"This wasn’t me!":                              "USER_REPORTED_SUSPICIOUS_ACTIVITY",
		"Entity Critical Action From High-Threat IP":   "ENTITY_CRITICAL_ACTION_FROM_HIGH_THREAT_IP",
		"OKTA_THREAT_INTELLIGENCE":                     "OKTA_THREAT_INTELLIGENCE",
		"security_events_provider_reported_risk":       "SECURITY_EVENTS_PROVIDER_REPORTED_RISK",
		"Suspicious App Access":                        "SUSPICIOUS_APP_ACCESS",
		"Admin Reported User Risk":                     "ADMIN_REPORTED_USER_RISK",
		"Impossible travel":                            DetectionUnknown,
		"":                                             DetectionUnknown,
		"UNKNOWN":                                      DetectionUnknown,
		"brute":                                        DetectionUnknown,
		"Session Influenced User Risk and more things": DetectionUnknown,
	}
	for name, want := range tests {
		if got := DetectionTypeForName(name); got != want {
			t.Errorf("DetectionTypeForName(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestDetectionTable keeps DetectionTypeForName's documented table (which the README
// copies) and the code's table in step: every row maps as documented, every entry of the
// code's table has a row, and every one of the eight types is reachable.
func TestDetectionTable(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("detection.go")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`^//\t(\S.*?)\s{2,}([A-Z_]+)$`)
	optional := regexp.MustCompile(` \((\w+)\)`)
	documented := map[string]string{}
	for line := range strings.SplitSeq(string(src), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil || m[2] == "UNKNOWN" {
			continue
		}
		// "Suspected brute force (attack)" documents two spellings.
		for _, name := range []string{optional.ReplaceAllString(m[1], ""), optional.ReplaceAllString(m[1], " $1")} {
			documented[foldDetectionName(name)] = m[2]
			if got := DetectionTypeForName(name); got != m[2] {
				t.Errorf("documented %q -> %s, DetectionTypeForName gives %s", name, m[2], got)
			}
		}
	}
	for name, typ := range detectionNames {
		if documented[name] != typ {
			t.Errorf("table entry %q -> %s is not in the documented table", name, typ)
		}
	}
	reached := map[string]bool{}
	for _, typ := range detectionNames {
		reached[typ] = true
	}
	for _, typ := range DetectionTypes {
		if !reached[typ] {
			t.Errorf("no detection name maps to %s", typ)
		}
	}
}

// logEvent builds a user.risk.detect LogEvent around the given targets and debugData.
func logEvent(targets, debugData string) []byte {
	return []byte(`{"uuid":"u-1","published":"2026-03-02T09:15:27.412Z","eventType":"user.risk.detect",` +
		`"target":[` + targets + `],"debugContext":{"debugData":{` + debugData + `}}}`)
}

const userTarget = `{"id":"00uJane","type":"User","alternateId":"jane@example.com","displayName":"Jane"}`

func TestDecodeLogEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  []byte
		want RiskTrigger
	}{
		{"documented risk string", logEvent(userTarget,
			`"risk":"{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=Anomalous location, new device, issuer=OKTA}","TraceId":"tr-1"`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "MEDIUM", PreviousRiskLevel: "LOW",
				DetectionType: "SESSION_INFLUENCED_USER_RISK", DetectionName: "Session Influenced User Risk",
				Reasons: "Anomalous location, new device", Issuer: "OKTA", OktaTraceID: "tr-1",
				RiskDebugData: "{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=Anomalous location, new device, issuer=OKTA}"}},
		{"user found by type, not position; policy and rule targets", logEvent(
			`{"id":"app1","type":"AppInstance"},{"id":"rul1","type":"Rule","displayName":"High risk"},{"id":"pol1","type":"Policy"},`+userTarget,
			`"risk":"{level=high}"`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "HIGH", DetectionType: DetectionUnknown,
				PolicyID: "pol1", RuleID: "rul1", RuleName: "High risk", RiskDebugData: "{level=high}"}},
		{"unknown detection name keeps the event", logEvent(userTarget, `"risk":"{level=HIGH, detectionName=Impossible Travel}"`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "HIGH", DetectionType: DetectionUnknown,
				DetectionName: "Impossible Travel", RiskDebugData: "{level=HIGH, detectionName=Impossible Travel}"}},
		{"NONE is a level, any case; renamed keys", logEvent(userTarget, `"risk":"{risk_level=none, previous_level=Medium}"`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "NONE", PreviousRiskLevel: "MEDIUM",
				DetectionType: DetectionUnknown, RiskDebugData: "{risk_level=none, previous_level=Medium}"}},
		{"unknown previous level left out", logEvent(userTarget, `"risk":"{level=LOW, previousLevel=SEVERE}"`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "LOW", DetectionType: DetectionUnknown,
				RiskDebugData: "{level=LOW, previousLevel=SEVERE}"}},
		{"detectionType given is used", logEvent(userTarget, `"risk":"{level=LOW, detectionName=Whatever, detectionType=brute_force_attack}"`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "LOW", DetectionType: "BRUTE_FORCE_ATTACK",
				DetectionName: "Whatever", RiskDebugData: "{level=LOW, detectionName=Whatever, detectionType=brute_force_attack}"}},
		{"level in debugData when the risk string has none", logEvent(userTarget, `"risk":"garbage","riskLevel":"HIGH","traceId":"tr-2"`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "HIGH", DetectionType: DetectionUnknown,
				OktaTraceID: "tr-2", RiskDebugData: "garbage"}},
		{"Risk as an object, as a bridge may send it", logEvent(userTarget, `"Risk":{"level":"HIGH","detectionName":"Okta Threat Intelligence","score":0.9}`),
			RiskTrigger{UserID: "00uJane", UserLogin: "jane@example.com", RiskLevel: "HIGH", DetectionType: "OKTA_THREAT_INTELLIGENCE",
				DetectionName: "Okta Threat Intelligence", RiskDebugData: `{"detectionName":"Okta Threat Intelligence","level":"HIGH","score":0.9}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Decode(ShapeOktaLogEventRisk, tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if e.ID != "u-1" || e.Kind != KindEntityRisk || e.Shape != ShapeOktaLogEventRisk || e.Type != EventTypeUserRiskDetect ||
				e.Source != SourceOktaSystemLog || !e.Time.Equal(time.Date(2026, 3, 2, 9, 15, 27, 412e6, time.UTC)) {
				t.Errorf("event = %+v", e)
			}
			if !reflect.DeepEqual(*e.Risk, tt.want) {
				t.Errorf("Risk\n got %+v\nwant %+v", *e.Risk, tt.want)
			}
			if e.Principal != tt.want.RuleID {
				t.Errorf("Principal = %q, want the rule id %q", e.Principal, tt.want.RuleID)
			}
		})
	}
}

func TestDecodeLogEventErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  []byte
		ptr  string
		msg  string
	}{
		{"no User target", logEvent(`{"id":"app1","type":"AppInstance"}`, `"risk":"{level=HIGH}"`), "/target", "no target of type User: the at-risk user is unknown"},
		{"no targets", logEvent(``, `"risk":"{level=HIGH}"`), "/target", "no target of type User: the at-risk user is unknown"},
		{"two User targets", logEvent(userTarget+`,{"id":"00uSam","type":"User"}`, `"risk":"{level=HIGH}"`), "/target", "2 targets of type User: the at-risk user is ambiguous"},
		{"User target without id", logEvent(`{"type":"User"}`, `"risk":"{level=HIGH}"`), "/target", "the target of type User has no id"},
		{"target not an object", logEvent(`"00uJane"`, `"risk":"{level=HIGH}"`), "/target/0", "expected an object, got string"},
		{"target id a number", logEvent(`{"type":"User","id":7}`, `"risk":"{level=HIGH}"`), "/target/0/id", "expected a string, got number"},
		{"no level", logEvent(userTarget, `"risk":"{previousLevel=LOW, detectionName=Okta Threat Intelligence}"`), "/debugContext/debugData/risk", "no risk level (level=NONE, LOW, MEDIUM or HIGH) in the event"},
		{"no risk at all", logEvent(userTarget, ``), "/debugContext/debugData/risk", "no risk level (level=NONE, LOW, MEDIUM or HIGH) in the event"},
		{"unknown level", logEvent(userTarget, `"Risk":"{level=CRITICAL}"`), "/debugContext/debugData/Risk", `risk level "CRITICAL" is not NONE, LOW, MEDIUM or HIGH`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode(ShapeOktaLogEventRisk, tt.doc)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode = %v, want a *FieldError", err)
			}
			if fe.Pointer != tt.ptr || fe.Msg != tt.msg {
				t.Errorf("FieldError = %q %q, want %q %q", fe.Pointer, fe.Msg, tt.ptr, tt.msg)
			}
		})
	}
}

// TestOktaUserIDIsTheUserAtRisk: ITP gives its delegated flows the at-risk user as the Okta
// User ID; the input must never carry the rule id (which the trigger's principal is).
func TestOktaUserIDIsTheUserAtRisk(t *testing.T) {
	t.Parallel()
	trigger, err := Decode(ShapeEntityRisk, readFixture(t, "entity-risk.json"))
	if err != nil {
		t.Fatal(err)
	}
	logEv, err := Decode(ShapeOktaLogEventRisk, logEvent(`{"id":"rul1","type":"Rule"},`+userTarget, `"risk":"{level=HIGH}"`))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Event{trigger, logEv} {
		in := e.Inputs()
		if in["oktaUserId"] != e.Risk.UserID || in["oktaUserId"] == e.Risk.RuleID {
			t.Errorf("%s: oktaUserId = %v; want the user %q, not the rule %q", e.Shape, in["oktaUserId"], e.Risk.UserID, e.Risk.RuleID)
		}
	}
	ispm, err := Decode(ShapeISPMOnDemand, readFixture(t, "ispm-ondemand-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if in := ispm.Inputs(); ispm.Principal != "" && in["oktaUserId"] != ispm.Principal {
		t.Errorf("ISPM oktaUserId = %v, want the admin %q", in["oktaUserId"], ispm.Principal)
	}
}

func TestSplitHookDelivery(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "examples", "okta-event-hook-delivery.json"))
	if err != nil {
		t.Fatal(err)
	}
	events, err := SplitHookDelivery(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ, uuid string
		risk      bool
	}{
		{EventTypeUserRiskDetect, "2b7a4e0c-5d3f-11f0-9c1a-7b2e4d8f0a61", true},
		{EventTypeUserRiskChange, "5c9e1f2a-5d3f-11f0-8b7d-3f6a2c9e1d40", true},
		{"user.session.start", "7d0f2a3b-5d3f-11f0-a1b2-4c5d6e7f8091", false},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for i, w := range want {
		h := events[i]
		if h.EventType != w.typ || h.UUID != w.uuid || h.IsRisk() != w.risk {
			t.Errorf("event %d = %s %s %v, want %s %s %v", i, h.EventType, h.UUID, h.IsRisk(), w.typ, w.uuid, w.risk)
		}
		// Published as it is: the exact bytes of the delivery, not a re-encoding.
		if !bytes.Contains(data, h.Raw) || !bytes.HasPrefix(h.Raw, []byte("{")) || !bytes.HasSuffix(h.Raw, []byte("}")) {
			t.Errorf("event %d: Raw is not a verbatim slice of the delivery: %.80s", i, h.Raw)
		}
		if !h.IsRisk() {
			continue
		}
		e, err := Decode(ShapeOktaLogEventRisk, h.Raw)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if e.ID != w.uuid || e.Risk.UserID == "" {
			t.Errorf("event %d decoded to %+v %+v", i, e, e.Risk)
		}
	}
	// The copy is the caller's own.
	events[0].Raw[1] = 'X'
	if again, _ := SplitHookDelivery(data); again[0].Raw[1] == 'X' {
		t.Error("Raw shares memory with the delivery")
	}
}

func TestSplitHookDeliveryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		json bool // a *JSONError rather than ErrNotHookDelivery
	}{
		{"duplicate key inside a LogEvent", `{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"a","uuid":"b"}]}}`, true},
		{"invalid UTF-8", "{\"data\":{\"events\":[{\"uuid\":\"\xff\"}]}}", true},
		{"not JSON", `{"data":`, true},
		{"array", `[]`, false},
		{"another event type", `{"eventType":"user.risk.detect","data":{"events":[]}}`, false},
		{"no data", `{"eventType":"com.okta.event_hook"}`, false},
		{"events not an array", `{"data":{"events":{}}}`, false},
		{"events null", `{"data":{"events":null}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := SplitHookDelivery([]byte(tt.doc))
			var je *JSONError
			if got != nil || errors.As(err, &je) != tt.json || errors.Is(err, ErrNotHookDelivery) == tt.json {
				t.Errorf("SplitHookDelivery = %v, %v", got, err)
			}
		})
	}
	// Odd elements come back with empty fields: the caller skips them or lets the intake judge.
	got, err := SplitHookDelivery([]byte(`{"data":{"events":[1,{"eventType":7,"uuid":null},{"eventType":"user.risk.change"}]}}`))
	if err != nil || len(got) != 3 || got[0].EventType != "" || got[1].EventType != "" || got[1].UUID != "" ||
		!got[2].IsRisk() || got[2].UUID != "" || string(got[0].Raw) != "1" {
		t.Errorf("SplitHookDelivery = %+v, %v", got, err)
	}
}

// FuzzParseRiskData checks that the parser never panics, that every key it returns is a
// key as documented and every value a piece of the input, and that a map it is given in
// Okta's rendering comes back.
func FuzzParseRiskData(f *testing.F) {
	for _, s := range []string{
		`{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=Anomalous location, new device, issuer=OKTA}`,
		`{level=HIGH, reasons={a=b, c=[d, e]}}`, `{`, `}`, `{=}`, `,level=`, `a {b, c=d`, "level=\xff, x=é",
	} {
		f.Add(s, "level", "HIGH", "reasons", "a, b")
	}
	key := regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	f.Fuzz(func(t *testing.T, s, k1, v1, k2, v2 string) {
		for k, v := range ParseRiskData(s) {
			if !key.MatchString(k) {
				t.Fatalf("key %q from %q", k, s)
			}
			if !strings.Contains(s, v) {
				t.Fatalf("value %q is not in %q", v, s)
			}
		}
		// Round trip: well-formed keys, and values that hold no separator-like text.
		if k1 == k2 || !key.MatchString(k1) || !key.MatchString(k2) {
			return
		}
		for _, v := range []string{v1, v2} {
			if v != strings.TrimSpace(v) || strings.ContainsAny(v, ",{}[]") {
				return
			}
		}
		in := fmt.Sprintf("{%s=%s, %s=%s}", k1, v1, k2, v2)
		want := map[string]string{k1: v1, k2: v2}
		if got := ParseRiskData(in); !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseRiskData(%q) = %q, want %q", in, got, want)
		}
	})
}
