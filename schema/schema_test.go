package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/schema"
)

var newValidator = sync.OnceValues(schema.New)

// validator returns one Validator shared by all tests, which also exercises concurrent use
// under -race.
func validator(t testing.TB) *schema.Validator {
	t.Helper()
	v, err := newValidator()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const (
	idOnDemand   = "https://github.com/remediator/remediator/schema/ispm-issue-ondemand.v1.json"
	idWebhook    = "https://github.com/remediator/remediator/schema/ispm-issue-webhook.v1.json"
	idEntityRisk = "https://github.com/remediator/remediator/schema/entity-risk-trigger.v1.json"
)

func TestValidateFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		kind  event.Kind
		shape event.Shape
	}{
		{"ispm-ondemand-seed.json", event.KindISPMIssue, event.ShapeISPMOnDemand},
		{"ispm-webhook.json", event.KindISPMIssue, event.ShapeISPMWebhook},
		{"entity-risk.json", event.KindEntityRisk, event.ShapeEntityRisk},
		{"okta-logevent-risk.json", event.KindEntityRisk, event.ShapeOktaLogEventRisk},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data := readFixture(t, tt.file)
			shape, err := validator(t).Validate(tt.kind, data)
			if err != nil || shape != tt.shape {
				t.Fatalf("Validate = %q, %v; want %q, nil", shape, err, tt.shape)
			}
			if err := validator(t).ValidateShape(tt.shape, data); err != nil {
				t.Fatalf("ValidateShape: %v", err)
			}
		})
	}
}

// The seed must be the help page's example byte for byte, {your-ISPM-url} and all.
func TestSeedIsVerbatim(t *testing.T) {
	t.Parallel()
	data := readFixture(t, "ispm-ondemand-seed.json")
	if !bytes.Contains(data, []byte(`"issueLink": "https://{your-ISPM-url}/issues/Alert_V32uL3CHijlQYHq-uqTkqWOXSJ8~",`)) {
		t.Fatal("seed fixture was edited")
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 22 {
		t.Fatalf("seed has %d fields, want 22", len(m))
	}
}

func TestValidateValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kind  event.Kind
		doc   string
		shape event.Shape
	}{
		{"on-demand minimal", event.KindISPMIssue,
			`{"eventId":"e1","issueId":"i1","issueTitle":"Old Password"}`, event.ShapeISPMOnDemand},
		{"on-demand unknown members and additionalData strings", event.KindISPMIssue,
			`{"eventId":"e1","issueId":"i1","issueTitle":"t","oktaUserId":"00u1","futureField":{"x":[1,2]},"additionalDataActiveAccounts":"[]","additionalData":"x"}`,
			event.ShapeISPMOnDemand},
		{"webhook minimal", event.KindISPMIssue,
			`{"id":"w1","type":"issue.created","eventData":{"id":"Alert_1","title":"t"}}`, event.ShapeISPMWebhook},
		{"webhook other type, idInService spelling", event.KindISPMIssue,
			`{"id":"w1","type":"issue.updated","eventData":{"id":"Alert_1","title":"t","affectedEntity":{"idInService":"00u1","additionalData":{}}}}`,
			event.ShapeISPMWebhook},
		{"entity-risk minimal, offset time", event.KindEntityRisk,
			`{"eventId":"r1","eventTime":"2026-03-02T10:15:27+01:00","userId":"00u1","riskLevel":"MEDIUM","detectionType":"BRUTE_FORCE_ATTACK"}`,
			event.ShapeEntityRisk},
		{"entity-risk lower-case t and z", event.KindEntityRisk,
			`{"eventId":"r1","eventTime":"2026-03-02t09:15:27.412z","userId":"00u1","riskLevel":"HIGH","detectionType":"SUSPICIOUS_APP_ACCESS"}`,
			event.ShapeEntityRisk},
		{"entity-risk leap second", event.KindEntityRisk,
			`{"eventId":"r1","eventTime":"2016-12-31T23:59:60Z","userId":"00u1","riskLevel":"HIGH","detectionType":"SUSPICIOUS_APP_ACCESS"}`,
			event.ShapeEntityRisk},
		{"entity-risk unknown member, empty groups", event.KindEntityRisk,
			`{"eventId":"r1","eventTime":"2026-03-02T09:15:27Z","userId":"00u1","riskLevel":"LOW","previousRiskLevel":"NONE","detectionType":"ADMIN_REPORTED_USER_RISK","groups":[],"workflowId":572749}`,
			event.ShapeEntityRisk},
		{"leading and trailing whitespace", event.KindISPMIssue,
			" \n{\"eventId\":\"e1\",\"issueId\":\"i1\",\"issueTitle\":\"t\"}\r\n\t", event.ShapeISPMOnDemand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shape, err := validator(t).Validate(tt.kind, []byte(tt.doc))
			if err != nil || shape != tt.shape {
				t.Fatalf("Validate = %q, %v; want %q, nil", shape, err, tt.shape)
			}
		})
	}
}

func TestValidateViolations(t *testing.T) {
	t.Parallel()
	const detectionEnum = `value must be one of "ADMIN_REPORTED_USER_RISK", "BRUTE_FORCE_ATTACK", ` +
		`"ENTITY_CRITICAL_ACTION_FROM_HIGH_THREAT_IP", "OKTA_THREAT_INTELLIGENCE", ` +
		`"SECURITY_EVENTS_PROVIDER_REPORTED_RISK", "SESSION_INFLUENCED_USER_RISK", ` +
		`"SUSPICIOUS_APP_ACCESS", "USER_REPORTED_SUSPICIOUS_ACTIVITY"`
	risk := func(members string) string {
		return `{"eventId":"r1","eventTime":"2026-03-02T09:15:27Z","userId":"00u1",` + members + `}`
	}
	tests := []struct {
		name   string
		kind   event.Kind
		doc    string
		shape  event.Shape
		schema string
		want   []schema.Violation
		msg    string
	}{
		{
			name: "missing issueId", kind: event.KindISPMIssue,
			doc:   `{"eventId":"e1","issueTitle":"Old Password"}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "/issueId", Keyword: "required", Message: "missing required property"}},
			msg:  "ispm-issue-ondemand v1: /issueId: missing required property (required)",
		},
		{
			name: "empty object", kind: event.KindISPMIssue, doc: `{}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{
				{Pointer: "/eventId", Keyword: "required", Message: "missing required property"},
				{Pointer: "/issueId", Keyword: "required", Message: "missing required property"},
				{Pointer: "/issueTitle", Keyword: "required", Message: "missing required property"},
			},
			msg: "ispm-issue-ondemand v1: /eventId: missing required property (required); " +
				"/issueId: missing required property (required); /issueTitle: missing required property (required)",
		},
		{
			name: "issueId wrong type", kind: event.KindISPMIssue,
			doc:   `{"eventId":"e1","issueId":42,"issueTitle":"t"}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "/issueId", Keyword: "type", Message: "expected string, but got number"}},
			msg:  "ispm-issue-ondemand v1: /issueId: expected string, but got number (type)",
		},
		{
			name: "issueId empty", kind: event.KindISPMIssue,
			doc:   `{"eventId":"e1","issueId":"","issueTitle":"t"}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "/issueId", Keyword: "minLength", Message: "length must be >= 1, but got 0"}},
			msg:  "ispm-issue-ondemand v1: /issueId: length must be >= 1, but got 0 (minLength)",
		},
		{
			name: "optional field null", kind: event.KindISPMIssue,
			doc:   `{"eventId":"e1","issueId":"i1","issueTitle":"t","issueSeverity":null}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "/issueSeverity", Keyword: "type", Message: "expected string, but got null"}},
			msg:  "ispm-issue-ondemand v1: /issueSeverity: expected string, but got null (type)",
		},
		{
			name: "additionalDataFoo number", kind: event.KindISPMIssue,
			doc:   `{"eventId":"e1","issueId":"i1","issueTitle":"t","additionalDataFoo":7}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "/additionalDataFoo", Keyword: "type", Message: "expected string, but got number"}},
			msg:  "ispm-issue-ondemand v1: /additionalDataFoo: expected string, but got number (type)",
		},
		{
			name: "known additionalData field as array", kind: event.KindISPMIssue,
			doc:   `{"eventId":"e1","issueId":"i1","issueTitle":"t","additionalDataTypes":["Admin"]}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "/additionalDataTypes", Keyword: "type", Message: "expected string, but got array"}},
			msg:  "ispm-issue-ondemand v1: /additionalDataTypes: expected string, but got array (type)",
		},
		{
			name: "pointer escaping", kind: event.KindISPMIssue,
			doc:   `{"eventId":"e1","issueId":"i1","issueTitle":"t","additionalData/a~b c":true}`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "/additionalData~1a~0b c", Keyword: "type", Message: "expected string, but got boolean"}},
			msg:  "ispm-issue-ondemand v1: /additionalData~1a~0b c: expected string, but got boolean (type)",
		},
		{
			name: "top-level array", kind: event.KindISPMIssue, doc: `[{"eventId":"e1"}]`,
			shape: event.ShapeISPMOnDemand, schema: idOnDemand,
			want: []schema.Violation{{Pointer: "", Keyword: "type", Message: "expected object, but got array"}},
			msg:  "ispm-issue-ondemand v1: (root): expected object, but got array (type)",
		},
		{
			name: "top-level null, entity risk", kind: event.KindEntityRisk, doc: `null`,
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "", Keyword: "type", Message: "expected object, but got null"}},
			msg:  "entity-risk-trigger v1: (root): expected object, but got null (type)",
		},
		{
			name: "webhook missing eventData.id", kind: event.KindISPMIssue,
			doc:   `{"id":"w1","type":"issue.created","eventData":{"title":"t"}}`,
			shape: event.ShapeISPMWebhook, schema: idWebhook,
			want: []schema.Violation{{Pointer: "/eventData/id", Keyword: "required", Message: "missing required property"}},
			msg:  "ispm-issue-webhook v1: /eventData/id: missing required property (required)",
		},
		{
			name: "webhook chosen by type alone", kind: event.KindISPMIssue, doc: `{"type":1}`,
			shape: event.ShapeISPMWebhook, schema: idWebhook,
			want: []schema.Violation{
				{Pointer: "/eventData", Keyword: "required", Message: "missing required property"},
				{Pointer: "/id", Keyword: "required", Message: "missing required property"},
				{Pointer: "/type", Keyword: "type", Message: "expected string, but got number"},
			},
			msg: "ispm-issue-webhook v1: /eventData: missing required property (required); " +
				"/id: missing required property (required); /type: expected string, but got number (type)",
		},
		{
			name: "webhook nested types", kind: event.KindISPMIssue,
			doc:   `{"id":"w1","type":"issue.created","eventData":{"id":"a","title":"t","severity":3,"affectedEntity":{"idInService":false,"additionalData":[]}}}`,
			shape: event.ShapeISPMWebhook, schema: idWebhook,
			want: []schema.Violation{
				{Pointer: "/eventData/affectedEntity/additionalData", Keyword: "type", Message: "expected object, but got array"},
				{Pointer: "/eventData/affectedEntity/idInService", Keyword: "type", Message: "expected string, but got boolean"},
				{Pointer: "/eventData/severity", Keyword: "type", Message: "expected string, but got number"},
			},
			msg: "ispm-issue-webhook v1: /eventData/affectedEntity/additionalData: expected object, but got array (type); " +
				"/eventData/affectedEntity/idInService: expected string, but got boolean (type); " +
				"/eventData/severity: expected string, but got number (type)",
		},
		{
			name: "bad riskLevel", kind: event.KindEntityRisk,
			doc:   risk(`"riskLevel":"EXTREME","detectionType":"BRUTE_FORCE_ATTACK"`),
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "/riskLevel", Keyword: "format", Message: `not a risk level: NONE, LOW, MEDIUM or HIGH, in any case`}},
			msg:  `entity-risk-trigger v1: /riskLevel: not a risk level: NONE, LOW, MEDIUM or HIGH, in any case (format)`,
		},
		{
			name: "riskLevel with spaces", kind: event.KindEntityRisk,
			doc:   risk(`"riskLevel":" HIGH","detectionType":"BRUTE_FORCE_ATTACK"`),
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "/riskLevel", Keyword: "format", Message: `not a risk level: NONE, LOW, MEDIUM or HIGH, in any case`}},
			msg:  `entity-risk-trigger v1: /riskLevel: not a risk level: NONE, LOW, MEDIUM or HIGH, in any case (format)`,
		},
		{
			name: "previousRiskLevel ANY is not a level", kind: event.KindEntityRisk,
			doc:   risk(`"riskLevel":"NONE","previousRiskLevel":"ANY","detectionType":"BRUTE_FORCE_ATTACK"`),
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{
				{Pointer: "/previousRiskLevel", Keyword: "format", Message: `not a risk level: NONE, LOW, MEDIUM or HIGH, in any case`},
			},
			msg: `entity-risk-trigger v1: /previousRiskLevel: not a risk level: NONE, LOW, MEDIUM or HIGH, in any case (format)`,
		},
		{
			name: "bad detectionType", kind: event.KindEntityRisk,
			doc:   risk(`"riskLevel":"HIGH","detectionType":"IMPOSSIBLE_TRAVEL"`),
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "/detectionType", Keyword: "enum", Message: detectionEnum}},
			msg:  "entity-risk-trigger v1: /detectionType: " + detectionEnum + " (enum)",
		},
		{
			name: "eventTime not a date-time", kind: event.KindEntityRisk,
			doc:   `{"eventId":"r1","eventTime":"yesterday","userId":"00u1","riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK"}`,
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "/eventTime", Keyword: "format", Message: "not a valid date-time"}},
			msg:  "entity-risk-trigger v1: /eventTime: not a valid date-time (format)",
		},
		{
			name: "eventTime signed hour", kind: event.KindEntityRisk,
			doc:   `{"eventId":"r1","eventTime":"2026-03-02T+9:15:27Z","userId":"00u1","riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK"}`,
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "/eventTime", Keyword: "format", Message: "not a valid date-time"}},
			msg:  "entity-risk-trigger v1: /eventTime: not a valid date-time (format)",
		},
		{
			name: "eventTime with space", kind: event.KindEntityRisk,
			doc:   `{"eventId":"r1","eventTime":"2026-03-02T09:15:27Z ","userId":"00u1","riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK"}`,
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "/eventTime", Keyword: "format", Message: "not a valid date-time"}},
			msg:  "entity-risk-trigger v1: /eventTime: not a valid date-time (format)",
		},
		{
			name: "eventTime date only", kind: event.KindEntityRisk,
			doc:   `{"eventId":"r1","eventTime":"2026-03-02","userId":"00u1","riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK"}`,
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{{Pointer: "/eventTime", Keyword: "format", Message: "not a valid date-time"}},
			msg:  "entity-risk-trigger v1: /eventTime: not a valid date-time (format)",
		},
		{
			name: "groups wrong items", kind: event.KindEntityRisk,
			doc:   risk(`"riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK","groups":["00g1",7,""]`),
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{
				{Pointer: "/groups/1", Keyword: "type", Message: "expected string, but got number"},
				{Pointer: "/groups/2", Keyword: "minLength", Message: "length must be >= 1, but got 0"},
			},
			msg: "entity-risk-trigger v1: /groups/1: expected string, but got number (type); " +
				"/groups/2: length must be >= 1, but got 0 (minLength)",
		},
		{
			name: "entity-risk missing everything", kind: event.KindEntityRisk, doc: `{"groups":"00g1"}`,
			shape: event.ShapeEntityRisk, schema: idEntityRisk,
			want: []schema.Violation{
				{Pointer: "/detectionType", Keyword: "required", Message: "missing required property"},
				{Pointer: "/eventId", Keyword: "required", Message: "missing required property"},
				{Pointer: "/eventTime", Keyword: "required", Message: "missing required property"},
				{Pointer: "/groups", Keyword: "type", Message: "expected array, but got string"},
				{Pointer: "/riskLevel", Keyword: "required", Message: "missing required property"},
				{Pointer: "/userId", Keyword: "required", Message: "missing required property"},
			},
			msg: "entity-risk-trigger v1: /detectionType: missing required property (required); " +
				"/eventId: missing required property (required); /eventTime: missing required property (required); " +
				"/groups: expected array, but got string (type); /riskLevel: missing required property (required); " +
				"/userId: missing required property (required)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shape, err := validator(t).Validate(tt.kind, []byte(tt.doc))
			if shape != tt.shape {
				t.Errorf("shape = %q, want %q", shape, tt.shape)
			}
			var ve *schema.ViolationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %T %v, want *ViolationError", err, err)
			}
			if ve.Schema != tt.schema || ve.Shape != tt.shape {
				t.Errorf("Schema, Shape = %q, %q; want %q, %q", ve.Schema, ve.Shape, tt.schema, tt.shape)
			}
			if !equalViolations(ve.Violations, tt.want) {
				t.Errorf("Violations:\n got %q\nwant %q", ve.Violations, tt.want)
			}
			if got := err.Error(); got != tt.msg {
				t.Errorf("Error():\n got %s\nwant %s", got, tt.msg)
			}
			// ValidateShape agrees with Validate.
			err2 := validator(t).ValidateShape(tt.shape, []byte(tt.doc))
			if err2 == nil || err2.Error() != tt.msg {
				t.Errorf("ValidateShape = %v, want %s", err2, tt.msg)
			}
		})
	}
}

func equalViolations(a, b []schema.Violation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestViolationErrorCapsMessage(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"eventId":"e1","issueId":"i1","issueTitle":"t"`)
	for i := range 25 {
		b.WriteString(`,"additionalData` + string(rune('A'+i)) + `":1`)
	}
	b.WriteString("}")
	_, err := validator(t).Validate(event.KindISPMIssue, []byte(b.String()))
	var ve *schema.ViolationError
	if !errors.As(err, &ve) || len(ve.Violations) != 25 {
		t.Fatalf("err = %v, want 25 violations", err)
	}
	msg := err.Error()
	if strings.Count(msg, "(type)") != 10 || !strings.HasSuffix(msg, "; ... and 15 more") {
		t.Fatalf("Error() = %s", msg)
	}
	if !strings.HasPrefix(msg, "ispm-issue-ondemand v1: /additionalDataA: expected string, but got number (type); /additionalDataB:") {
		t.Fatalf("Error() not sorted: %s", msg)
	}
}

func TestValidateSyntaxErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		doc    string
		offset int64
		msg    string
	}{
		{"not json", "not json", 2, "invalid JSON at byte 2: invalid character 'o' in literal null (expecting 'u')"},
		{"trailing garbage", `{"eventId":"e1"} x`, 18, "invalid JSON at byte 18: invalid character 'x' after top-level value"},
		{"two values", `{}{}`, 3, "invalid JSON at byte 3: invalid character '{' after top-level value"},
		{"trailing brace", `{}}`, 3, "invalid JSON at byte 3: invalid character '}' after top-level value"},
		{"empty", ``, 0, "invalid JSON at byte 0: empty document"},
		{"whitespace", " \n\t", 3, "invalid JSON at byte 3: empty document"},
		{"truncated", `{"eventId":`, 11, "invalid JSON at byte 11: unexpected end of JSON input"},
		{"single quotes", `{'eventId':'e1'}`, 2, "invalid JSON at byte 2: invalid character '\\'' looking for beginning of object key string"},
		{"byte order mark", "\ufeff{}", 1, "invalid JSON at byte 1: invalid character 'ï' looking for beginning of value"},
	}
	for _, tt := range tests {
		for _, kind := range []event.Kind{event.KindISPMIssue, event.KindEntityRisk} {
			t.Run(tt.name+"/"+string(kind), func(t *testing.T) {
				t.Parallel()
				_, err := validator(t).Validate(kind, []byte(tt.doc))
				var se *schema.SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("err = %T %v, want *SyntaxError", err, err)
				}
				if se.Offset != tt.offset || err.Error() != tt.msg {
					t.Errorf("got offset %d, %q; want %d, %q", se.Offset, err.Error(), tt.offset, tt.msg)
				}
				if errors.Is(err, schema.ErrTooLarge) {
					t.Error("matches ErrTooLarge")
				}
			})
		}
	}
}

func TestValidateTooLarge(t *testing.T) {
	t.Parallel()
	// A valid document, padded past the limit with whitespace.
	doc := []byte(`{"eventId":"e1","issueId":"i1","issueTitle":"t"}`)
	ok := append(doc, bytes.Repeat([]byte(" "), schema.MaxDocumentBytes-len(doc))...)
	if _, err := validator(t).Validate(event.KindISPMIssue, ok); err != nil {
		t.Fatalf("document of exactly MaxDocumentBytes: %v", err)
	}
	big := append(ok, ' ')
	_, err := validator(t).Validate(event.KindISPMIssue, big)
	var se *schema.SyntaxError
	if !errors.As(err, &se) || !errors.Is(err, schema.ErrTooLarge) {
		t.Fatalf("err = %T %v, want *SyntaxError matching ErrTooLarge", err, err)
	}
	if want := "document too large: 1048577 bytes, limit is 1048576"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if err := validator(t).ValidateShape(event.ShapeEntityRisk, big); !errors.Is(err, schema.ErrTooLarge) {
		t.Errorf("ValidateShape = %v, want ErrTooLarge", err)
	}
}

func TestUnknownKindAndShape(t *testing.T) {
	t.Parallel()
	shape, err := validator(t).Validate("posture", []byte(`{}`))
	if !errors.Is(err, schema.ErrUnknownKind) || shape != "" {
		t.Errorf("Validate = %q, %v; want ErrUnknownKind", shape, err)
	}
	if err := validator(t).ValidateShape("ispm-issue-ondemand.v2", []byte(`{}`)); !errors.Is(err, schema.ErrUnknownShape) {
		t.Errorf("ValidateShape = %v, want ErrUnknownShape", err)
	}
	if id := validator(t).SchemaID("nope"); id != "" {
		t.Errorf("SchemaID(unknown) = %q", id)
	}
}

func TestSchemaDocuments(t *testing.T) {
	t.Parallel()
	files := schema.Files()
	want := map[event.Shape]string{
		event.ShapeISPMOnDemand:     "ispm-issue-ondemand.v1.json",
		event.ShapeISPMWebhook:      "ispm-issue-webhook.v1.json",
		event.ShapeEntityRisk:       "entity-risk-trigger.v1.json",
		event.ShapeOktaLogEventRisk: "okta-logevent-risk.v1.json",
	}
	if len(files) != len(want) {
		t.Errorf("Files() has %d documents, want %d", len(files), len(want))
	}
	for shape, name := range want {
		data, ok := files[name]
		if !ok {
			t.Errorf("Files() lacks %s", name)
			continue
		}
		var doc struct {
			Schema      string `json:"$schema"`
			ID          string `json:"$id"`
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %q", name, doc.Schema)
		}
		if wantID := "https://github.com/remediator/remediator/schema/" + name; doc.ID != wantID {
			t.Errorf("%s: $id = %q, want %q", name, doc.ID, wantID)
		}
		if doc.Title == "" || doc.Description == "" {
			t.Errorf("%s: missing title or description", name)
		}
		if got := validator(t).SchemaID(shape); got != doc.ID {
			t.Errorf("SchemaID(%s) = %q, want %q", shape, got, doc.ID)
		}
	}
	// The caller owns what it gets.
	for name := range files {
		files[name][0] = 'X'
	}
	for name, data := range schema.Files() {
		if data[0] != '{' {
			t.Errorf("Files()[%s] shares memory with an earlier call", name)
		}
	}
}

// The detection-type enum must stay in step with event.DetectionTypes.
func TestDetectionTypesInStep(t *testing.T) {
	t.Parallel()
	var doc struct {
		Properties map[string]struct {
			Enum []string `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schema.Files()["entity-risk-trigger.v1.json"], &doc); err != nil {
		t.Fatal(err)
	}
	got := doc.Properties["detectionType"].Enum
	if strings.Join(got, ",") != strings.Join(event.DetectionTypes, ",") {
		t.Errorf("schema detectionType enum = %v, want event.DetectionTypes %v", got, event.DetectionTypes)
	}
	for _, l := range []string{"NONE", "low", "Medium", "HIGH"} {
		if _, ok := event.NormalizeRiskLevel(l); !ok {
			t.Errorf("NormalizeRiskLevel(%q) refused", l)
		}
	}
}
