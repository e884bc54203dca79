package event

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fixtures are shared with package schema, which validates them; here they are decoded.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "schema", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDecodeFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		shape Shape
		want  *Event
	}{
		{
			file:  "ispm-ondemand-seed.json",
			shape: ShapeISPMOnDemand,
			want: &Event{
				ID:     "f73a7741-6980-4d44-b0bf-13a2fa7ac556",
				Kind:   KindISPMIssue,
				Shape:  ShapeISPMOnDemand,
				Time:   time.Date(2024, 6, 9, 14, 56, 58, 0, time.UTC),
				Source: "Okta ISPM",
				Type:   "issue.onDemand",
				Issue: &Issue{
					ID:                        "Alert_V32uL3CHijlQYHq-uqTkqWOXSJ8~",
					Category:                  "Least Privilege",
					Severity:                  "High",
					Title:                     "Unused Admin Account",
					FullDescription:           "Admin Accounts not logged in interactively for 91 days.",
					ShortDescription:          "Admin Accounts not logged in interactively for 91 days.",
					DetectedAt:                "2024-06-18",
					SuggestedRemediation:      "Assess the essentiality of listed accounts; disable or suspend as necessary.",
					RiskAndImpact:             "Unused, unmonitored accounts attract threat actors for gaining initial access or elevated permissions.",
					Link:                      "https://{your-ISPM-url}/issues/Alert_V32uL3CHijlQYHq-uqTkqWOXSJ8~",
					EntityID:                  "Account_Q1SMRm3vfzomaZwevHIoL9kVhWU~",
					EntityIDInService:         "00ktw0utvzPBXxny16x7",
					EntityType:                "Account",
					EntityDisplayName:         "john.smith@okta.com",
					EntitySourceProductName:   "Okta",
					EntitySourceProductTenant: "example.okta.com",
					AdditionalData: map[string]string{
						"additionalDataTypes":     "Admin, Super admin",
						"additionalDataLastLogin": "03/28/2024",
					},
				},
			},
		},
		{
			file:  "ispm-webhook.json",
			shape: ShapeISPMWebhook,
			want: &Event{
				ID:     "f73a7741-6980-4d44-b0bf-13a2fa7ac556",
				Kind:   KindISPMIssue,
				Shape:  ShapeISPMWebhook,
				Time:   time.Date(2024, 6, 9, 14, 56, 58, 0, time.UTC),
				Source: "Okta ISPM",
				Type:   "issue.created",
				Issue: &Issue{
					ID:                        "Alert_V32uL3CHijlQYHq-uqTkqWOXSJ8~",
					Category:                  "Least Privilege",
					Severity:                  "High",
					Title:                     "Unused Admin Account",
					FullDescription:           "Admin Accounts not logged in interactively for 91 days.",
					ShortDescription:          "Admin Accounts not logged in interactively for 91 days.",
					DetectedAt:                "2024-06-18",
					SuggestedRemediation:      "Assess the essentiality of listed accounts; disable or suspend as necessary.",
					RiskAndImpact:             "Unused, unmonitored accounts attract threat actors for gaining initial access or elevated permissions.",
					Link:                      "https://ispm.example.com/issues/Alert_V32uL3CHijlQYHq-uqTkqWOXSJ8~",
					EntityID:                  "3c0e5f0a-8d5b-4b8e-9f4a-6f1d2a7b9c11",
					EntityIDInService:         "00ktw0utvzPBXxny16x7",
					EntityType:                "Account",
					EntityDisplayName:         "john.smith@okta.com",
					EntitySourceProductName:   "Okta",
					EntitySourceProductTenant: "example.okta.com",
					AdditionalData: map[string]string{
						"additionalDataUsername":  "john.smith@okta.com",
						"additionalDataTypes":     "Admin",
						"additionalDataLastLogin": "03/28/2024",
						"additionalDataUnrotatedTokens": `[{"createdAt":"2023-01-10T08:00:00Z","expires":"2025-01-10T08:00:00Z",` +
							`"lastRotated":"2023-01-10T08:00:00Z","lastUsed":"2024-03-20T16:45:00Z","methodName":"SSWS",` +
							`"nextRotation":null,"type":"API token"}]`,
					},
				},
			},
		},
		{
			file:  "entity-risk.json",
			shape: ShapeEntityRisk,
			want: &Event{
				ID:        "9f5b2c1e-4d7a-4b8e-9a31-2f0c6d8e7b14",
				Kind:      KindEntityRisk,
				Shape:     ShapeEntityRisk,
				Time:      time.Date(2026, 3, 2, 9, 15, 27, 412_000_000, time.UTC),
				Source:    "Okta ITP",
				Type:      "user.risk.detect",
				Principal: "rul8zvt07hnsPkLBB2e7",
				Risk: &RiskTrigger{
					UserID:            "00u8k2j4abCDefGH5d7",
					UserLogin:         "jane.doe@example.com",
					RiskLevel:         RiskHigh,
					PreviousRiskLevel: RiskLow,
					DetectionType:     "USER_REPORTED_SUSPICIOUS_ACTIVITY",
					DetectionName:     "User Reported Suspicious Activity",
					Reasons:           "User reported suspicious activity from the Okta Verify notification",
					Issuer:            "OKTA",
					PolicyID:          "rst1entityrisk0000x7",
					RuleID:            "rul8zvt07hnsPkLBB2e7",
					RuleName:          "High risk → run flow",
					OktaTraceID:       "e4b7c2d1-0a9f-4e3b-8c6d-5f2a1b0c9d8e",
					Groups:            []string{"00g1admins000000x7", "00g2everyone0000x7"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(tt.shape, readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			assertEvent(t, got, tt.want)
		})
	}
}

// assertEvent compares two events, times by instant.
func assertEvent(t *testing.T, got, want *Event) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Errorf("Time = %v, want %v", got.Time, want.Time)
	}
	g, w := *got, *want
	g.Time, w.Time = time.Time{}, time.Time{}
	if g.Issue != nil && w.Issue != nil && !reflect.DeepEqual(*g.Issue, *w.Issue) {
		t.Errorf("Issue:\n got %+v\nwant %+v", *g.Issue, *w.Issue)
	}
	if g.Risk != nil && w.Risk != nil && !reflect.DeepEqual(*g.Risk, *w.Risk) {
		t.Errorf("Risk:\n got %+v\nwant %+v", *g.Risk, *w.Risk)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("Event:\n got %+v\nwant %+v", g, w)
	}
}

// Inputs of the decoded seed is the seed itself: the 22 keys, same values, all scalars.
func TestInputsRoundTripSeed(t *testing.T) {
	t.Parallel()
	data := readFixture(t, "ispm-ondemand-seed.json")
	var seed map[string]string
	if err := json.Unmarshal(data, &seed); err != nil {
		t.Fatal(err)
	}
	if len(seed) != 22 {
		t.Fatalf("seed has %d keys, want 22", len(seed))
	}
	e, err := Decode(ShapeISPMOnDemand, data)
	if err != nil {
		t.Fatal(err)
	}
	in := e.Inputs()
	for k, v := range in {
		switch v.(type) {
		case string, bool, int, int64, float64, time.Time:
		default:
			t.Errorf("input %q is %T, not a scalar", k, v)
		}
	}
	want := make(map[string]any, len(seed))
	for k, v := range seed {
		want[k] = v
	}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("Inputs():\n got %v\nwant %v", in, want)
	}
}

func TestDecodeISPM(t *testing.T) {
	t.Parallel()
	webhook := func(entity string) string {
		return `{"id":"w1","type":"issue.created","oktaUserId":"00uadmin","eventData":{"id":"Alert_1","title":"t","affectedEntity":` + entity + `}}`
	}
	tests := []struct {
		name  string
		shape Shape
		doc   string
		check func(t *testing.T, e *Event)
	}{
		{
			name: "on-demand principal, extra additionalData, unknown members", shape: ShapeISPMOnDemand,
			doc: `{"eventId":"e1","issueId":"i1","issueTitle":"t","oktaUserId":"00uadmin","eventTimestamp":"2024-06-09T16:56:58+02:00",` +
				`"additionalDataActiveAccounts":"a, b","additionalDataEmpty":"","somethingNew":[1],"AdditionalDataX":"not ours"}`,
			check: func(t *testing.T, e *Event) {
				if e.Principal != "00uadmin" || e.ID != "e1" || e.Issue.ID != "i1" || e.Issue.Title != "t" {
					t.Errorf("got %+v %+v", e, e.Issue)
				}
				if want := time.Date(2024, 6, 9, 14, 56, 58, 0, time.UTC); !e.Time.Equal(want) {
					t.Errorf("Time = %v, want %v", e.Time, want)
				}
				want := map[string]string{"additionalDataActiveAccounts": "a, b", "additionalDataEmpty": ""}
				if !reflect.DeepEqual(e.Issue.AdditionalData, want) {
					t.Errorf("AdditionalData = %q, want %q", e.Issue.AdditionalData, want)
				}
			},
		},
		{
			name: "on-demand unparsable timestamp, no additionalData", shape: ShapeISPMOnDemand,
			doc: `{"eventId":"e1","issueId":"i1","issueTitle":"t","eventTimestamp":"06/09/2024"}`,
			check: func(t *testing.T, e *Event) {
				if !e.Time.IsZero() {
					t.Errorf("Time = %v, want zero", e.Time)
				}
				if e.Issue.AdditionalData == nil || len(e.Issue.AdditionalData) != 0 {
					t.Errorf("AdditionalData = %#v, want empty non-nil", e.Issue.AdditionalData)
				}
			},
		},
		{
			name: "webhook idInService spelling", shape: ShapeISPMWebhook,
			doc: webhook(`{"idInService":"00ualt"}`),
			check: func(t *testing.T, e *Event) {
				if e.Issue.EntityIDInService != "00ualt" || e.Principal != "00uadmin" || !e.Time.IsZero() {
					t.Errorf("got %+v %+v", e, e.Issue)
				}
			},
		},
		{
			name: "webhook identifierInService wins", shape: ShapeISPMWebhook,
			doc: webhook(`{"identifierInService":"00umain","idInService":"00ualt"}`),
			check: func(t *testing.T, e *Event) {
				if e.Issue.EntityIDInService != "00umain" {
					t.Errorf("EntityIDInService = %q", e.Issue.EntityIDInService)
				}
			},
		},
		{
			name: "webhook empty identifierInService falls back", shape: ShapeISPMWebhook,
			doc: webhook(`{"identifierInService":"","idInService":"00ualt"}`),
			check: func(t *testing.T, e *Event) {
				if e.Issue.EntityIDInService != "00ualt" {
					t.Errorf("EntityIDInService = %q", e.Issue.EntityIDInService)
				}
			},
		},
		{
			name: "webhook additionalData flattening", shape: ShapeISPMWebhook,
			doc: webhook(`{"additionalData":{"count":12,"ratio":1.50,"admin":true,"gone":null,"empty":"",` +
				`"client_app":{"name":"<App & Co>","scopes":["a","b"]},"active-accounts":[],"last_login":"x","lastLogin":"y",` +
				`"":"no name","42":"digits"}}`),
			check: func(t *testing.T, e *Event) {
				want := map[string]string{
					"additionalDataCount":          "12",
					"additionalDataRatio":          "1.50",
					"additionalDataAdmin":          "true",
					"additionalDataEmpty":          "",
					"additionalDataClientApp":      `{"name":"<App & Co>","scopes":["a","b"]}`,
					"additionalDataActiveAccounts": "",
					"additionalDataLastLogin":      "y", // "lastLogin" sorts before "last_login"
					"additionalData42":             "digits",
				}
				if !reflect.DeepEqual(e.Issue.AdditionalData, want) {
					t.Errorf("AdditionalData:\n got %q\nwant %q", e.Issue.AdditionalData, want)
				}
			},
		},
		{
			name: "webhook without affectedEntity", shape: ShapeISPMWebhook,
			doc: `{"id":"w1","type":"issue.created","eventData":{"id":"Alert_1","title":"t"}}`,
			check: func(t *testing.T, e *Event) {
				if e.Issue.EntityID != "" || e.Issue.AdditionalData == nil || e.Principal != "" {
					t.Errorf("got %+v %+v", e, e.Issue)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Decode(tt.shape, []byte(tt.doc))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if e.Kind != KindISPMIssue || e.Shape != tt.shape || e.Issue == nil || e.Risk != nil {
				t.Fatalf("Kind %q Shape %q Issue %v Risk %v", e.Kind, e.Shape, e.Issue, e.Risk)
			}
			tt.check(t, e)
		})
	}
}

func TestDecodeEntityRisk(t *testing.T) {
	t.Parallel()
	base := `"eventId":"r1","eventTime":"2026-03-02T09:15:27Z","userId":"00u1","detectionType":"BRUTE_FORCE_ATTACK"`
	tests := []struct {
		name      string
		doc       string
		principal string
		level     string
		previous  string
		groups    []string
	}{
		{"rule is the principal", `{` + base + `,"riskLevel":"HIGH","ruleId":"rul1","oktaUserId":"00uadmin"}`, "rul1", "HIGH", "", nil},
		{"oktaUserId without a rule", `{` + base + `,"riskLevel":"LOW","oktaUserId":"00uadmin","groups":[]}`, "00uadmin", "LOW", "", []string{}},
		{"empty ruleId falls back", `{` + base + `,"riskLevel":"LOW","ruleId":"","oktaUserId":"00uadmin"}`, "00uadmin", "LOW", "", nil},
		{"levels upper-cased", `{` + base + `,"riskLevel":" medium ","previousRiskLevel":"none","groups":["00g1"]}`, "", "MEDIUM", "NONE", []string{"00g1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Decode(ShapeEntityRisk, []byte(tt.doc))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if e.Kind != KindEntityRisk || e.Risk == nil || e.Issue != nil {
				t.Fatalf("Kind %q Issue %v Risk %v", e.Kind, e.Issue, e.Risk)
			}
			if e.Principal != tt.principal || e.Risk.RiskLevel != tt.level || e.Risk.PreviousRiskLevel != tt.previous ||
				!reflect.DeepEqual(e.Risk.Groups, tt.groups) {
				t.Errorf("got principal %q level %q previous %q groups %#v; want %q %q %q %#v",
					e.Principal, e.Risk.RiskLevel, e.Risk.PreviousRiskLevel, e.Risk.Groups,
					tt.principal, tt.level, tt.previous, tt.groups)
			}
			if want := time.Date(2026, 3, 2, 9, 15, 27, 0, time.UTC); !e.Time.Equal(want) {
				t.Errorf("Time = %v", e.Time)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		shape Shape
		doc   string
		msg   string
	}{
		{"unknown shape", "ispm-issue-ondemand.v2", `{}`, `event: unknown shape "ispm-issue-ondemand.v2"`},
		{"not json", ShapeISPMOnDemand, `not json`, "event: decode ispm-issue-ondemand: invalid JSON at byte 2: invalid character 'o' in literal null (expecting 'u')"},
		{"empty", ShapeEntityRisk, ``, "event: decode entity-risk-trigger: invalid JSON at byte 0: empty document"},
		{"trailing data", ShapeISPMWebhook, `{} {}`, "event: decode ispm-issue-webhook: invalid JSON at byte 4: invalid character '{' after top-level value"},
		{"top-level array", ShapeISPMOnDemand, `[]`, "event: decode ispm-issue-ondemand: top level is array, not an object"},
		{"issueId number", ShapeISPMOnDemand, `{"issueId":1}`, "event: decode ispm-issue-ondemand: /issueId: expected a string, got number"},
		{"additionalData number", ShapeISPMOnDemand, `{"additionalDataX":false}`, "event: decode ispm-issue-ondemand: /additionalDataX: expected a string, got boolean"},
		{"webhook without eventData", ShapeISPMWebhook, `{"id":"w"}`, "event: decode ispm-issue-webhook: /eventData: missing"},
		{"webhook eventData string", ShapeISPMWebhook, `{"eventData":"x"}`, "event: decode ispm-issue-webhook: /eventData: expected an object, got string"},
		{"webhook entity type", ShapeISPMWebhook, `{"eventData":{"affectedEntity":{"type":["Account"]}}}`,
			"event: decode ispm-issue-webhook: /eventData/affectedEntity/type: expected a string, got array"},
		{"webhook additionalData array", ShapeISPMWebhook, `{"eventData":{"affectedEntity":{"additionalData":[1]}}}`,
			"event: decode ispm-issue-webhook: /eventData/affectedEntity/additionalData: expected an object, got array"},
		{"groups string", ShapeEntityRisk, `{"groups":"00g1"}`, "event: decode entity-risk-trigger: /groups: expected an array, got string"},
		{"groups item", ShapeEntityRisk, `{"groups":["00g1",{}]}`, "event: decode entity-risk-trigger: /groups/1: expected a string, got object"},
		{"first bad member in a fixed order", ShapeISPMOnDemand, `{"additionalDataB":1,"additionalDataA":2,"issueTitle":3,"eventId":4}`,
			"event: decode ispm-issue-ondemand: /eventId: expected a string, got number"},
		{"first bad additionalData", ShapeISPMOnDemand, `{"additionalDataB":1,"additionalDataA":2}`,
			"event: decode ispm-issue-ondemand: /additionalDataA: expected a string, got number"},
		{"riskLevel number", ShapeEntityRisk, `{"riskLevel":3}`, "event: decode entity-risk-trigger: /riskLevel: expected a string, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Decode(tt.shape, []byte(tt.doc))
			if err == nil {
				t.Fatalf("Decode = %+v, want error %q", e, tt.msg)
			}
			if err.Error() != tt.msg {
				t.Errorf("error:\n got %s\nwant %s", err, tt.msg)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-03-02T09:15:27Z", time.Date(2026, 3, 2, 9, 15, 27, 0, time.UTC)},
		{"2026-03-02t10:15:27.5+01:00", time.Date(2026, 3, 2, 9, 15, 27, 500_000_000, time.UTC)},
		{" 2026-03-02T09:15:27Z", time.Time{}},
		{"2026-03-02t09:15:27z", time.Date(2026, 3, 2, 9, 15, 27, 0, time.UTC)},
		{"2016-12-31T23:59:60Z", time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"2016-12-31T23:59:60.25-05:00", time.Date(2017, 1, 1, 4, 59, 59, 250_000_000, time.UTC)},
		{"2024-06-18", time.Time{}},
		{"06/09/2024", time.Time{}},
		{"", time.Time{}},
		{"2026-03-02T09:15:61Z", time.Time{}},
		{"2026-03-02T+9:15:27Z", time.Time{}},
		{"2026-03-02T09:15:27+24:00", time.Time{}},
		{"2026-03-02T09:15:27-23:59", time.Date(2026, 3, 3, 9, 14, 27, 0, time.UTC)},
		{"2026-03-02T09:15:27,5Z", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := ParseTime(tt.in)
		if !got.Equal(tt.want) || ok == tt.want.IsZero() {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
}

func TestUpperCamel(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"types", "Types"},
		{"lastLogin", "LastLogin"},
		{"unrotated_tokens", "UnrotatedTokens"},
		{"client-app.name", "ClientAppName"},
		{"  spaced  out ", "SpacedOut"},
		{"élan", "Élan"},
		{"", ""},
		{"_-", ""},
		{"\xff", ""},
	}
	for _, tt := range tests {
		if got := upperCamel(tt.in); got != tt.want {
			t.Errorf("upperCamel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzDecode checks that no bytes make Decode panic for any shape, and that a decoded event
// is consistent and yields scalar inputs.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"ispm-ondemand-seed.json", "ispm-webhook.json", "entity-risk.json", "okta-logevent-risk.json"} {
		f.Add(readFixture(f, name))
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"eventData":{}}`, `{"groups":[null]}`,
		`{"uuid":"u","target":[{"type":"User","id":"00u"}],"debugContext":{"debugData":{"risk":"{level=high, detectionName=x=y, z}"}}}`,
		`{"uuid":"u","target":[{"type":"User","id":"00u"},{"type":"Rule","id":"r"}],"debugContext":{"debugData":{"Risk":{"level":"NONE"}}}}`,
		`{"eventData":{"affectedEntity":{"additionalData":{"a":{"b":[1e999,"\u2028"]},"":null}}}}`,
		`{"eventTime":"2016-12-31T23:59:60Z","riskLevel":"ǆ"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, shape := range []Shape{ShapeISPMOnDemand, ShapeISPMWebhook, ShapeEntityRisk, ShapeOktaLogEventRisk} {
			e, err := Decode(shape, data)
			if err != nil {
				if e != nil {
					t.Fatalf("%s: event and error", shape)
				}
				continue
			}
			if e.Shape != shape || e.Kind != shape.Kind() || (e.Issue == nil) == (e.Risk == nil) {
				t.Fatalf("%s: inconsistent event %+v", shape, e)
			}
			for k, v := range e.Inputs() {
				switch v.(type) {
				case string, bool, int, int64, float64, time.Time:
				default:
					t.Fatalf("%s: input %q is %T", shape, k, v)
				}
				if strings.HasPrefix(k, "additionalData") && e.Issue == nil {
					t.Fatalf("%s: additionalData input on a risk event", shape)
				}
			}
			_ = e.Priority()
		}
	})
}

// TestAdditionalDataOneFormat shows that a flow gets the same additionalData inputs from the
// ISPM webhook as from ISPM's on-demand run of the same issue (the format of the delegated
// flow card, which Okta's own templates read).
func TestAdditionalDataOneFormat(t *testing.T) {
	t.Parallel()
	onDemand, err := Decode(ShapeISPMOnDemand, []byte(`{"eventId":"e","issueId":"i","issueTitle":"t",`+
		`"additionalDataTypes":"Admin, Super admin","additionalDataLastLogin":"03/28/2024","additionalDataReasons":"a, b"}`))
	if err != nil {
		t.Fatal(err)
	}
	webhook, err := Decode(ShapeISPMWebhook, []byte(`{"id":"e","type":"issue.created","eventData":{"id":"i","title":"t",`+
		`"affectedEntity":{"additionalData":{"types":[{"type":"Admin","reasons":["x"]},{"type":"Super admin","reasons":[]}],`+
		`"lastLogin":"2024-03-28T23:12:44-02:00","reasons":["a","b"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	// 23:12 at -02:00 is the 29th in UTC: the date is UTC's, as an instant has one.
	want := map[string]string{"additionalDataTypes": "Admin, Super admin", "additionalDataLastLogin": "03/29/2024", "additionalDataReasons": "a, b"}
	if !reflect.DeepEqual(webhook.Issue.AdditionalData, want) {
		t.Errorf("webhook AdditionalData = %q, want %q", webhook.Issue.AdditionalData, want)
	}
	for _, k := range []string{"additionalDataTypes", "additionalDataReasons"} {
		if onDemand.Issue.AdditionalData[k] != webhook.Issue.AdditionalData[k] {
			t.Errorf("%s: on demand %q, webhook %q", k, onDemand.Issue.AdditionalData[k], webhook.Issue.AdditionalData[k])
		}
	}
	// Values that are not what ISPM documents are kept, not lost.
	odd, err := Decode(ShapeISPMWebhook, []byte(`{"id":"e","type":"issue.created","eventData":{"id":"i","title":"t",`+
		`"affectedEntity":{"additionalData":{"types":[{"name":"Admin"}],"lastLogin":"last week","tokens":[1,"a"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	wantOdd := map[string]string{"additionalDataTypes": `[{"name":"Admin"}]`, "additionalDataLastLogin": "last week", "additionalDataTokens": `[1,"a"]`}
	if !reflect.DeepEqual(odd.Issue.AdditionalData, wantOdd) {
		t.Errorf("odd AdditionalData = %q, want %q", odd.Issue.AdditionalData, wantOdd)
	}
}
