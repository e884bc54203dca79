package schema_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/schema"
)

const idLogEvent = "https://github.com/remediator/remediator/schema/okta-logevent-risk.v1.json"

// riskLogEvent is a user.risk.detect LogEvent with the given target and debugData members.
func riskLogEvent(target, debugData string) string {
	return `{"uuid":"u-1","published":"2026-03-02T09:15:27.412Z","eventType":"user.risk.detect",` +
		`"target":[` + target + `],"debugContext":{"debugData":{` + debugData + `}}}`
}

const jane = `{"id":"00uJane","type":"User","alternateId":"jane@example.com","displayName":null}`

// Okta's own LogEvents and remediator's trigger share remediation.events.itp: the shape is
// told from the document, and each validates as itself.
func TestValidateLogEvent(t *testing.T) {
	t.Parallel()
	v := validator(t)
	for _, tt := range []struct {
		name string
		doc  string
	}{
		{"minimal", riskLogEvent(jane, `"risk":"{level=HIGH}"`)},
		{"lower-case level, NONE", riskLogEvent(jane, `"risk":"{level=none, previousLevel=low}"`)},
		{"user.risk.change, level in debugData", `{"uuid":"u","published":"2026-03-02T09:15:27Z","eventType":"user.risk.change",` +
			`"target":[{"type":"Rule","id":"r"},` + jane + `],"debugContext":{"debugData":{"riskLevel":"Medium"}}}`},
		{"unknown detection name", riskLogEvent(jane, `"risk":"{level=LOW, detectionName=Impossible Travel}"`)},
	} {
		shape, err := v.Validate(event.KindEntityRisk, []byte(tt.doc))
		if err != nil || shape != event.ShapeOktaLogEventRisk {
			t.Errorf("%s: Validate = %q, %v", tt.name, shape, err)
		}
	}
	for _, name := range []string{"okta-user-risk-detect.json"} {
		data, err := os.ReadFile(filepath.Join("..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if shape, err := v.Validate(event.KindEntityRisk, data); err != nil || shape != event.ShapeOktaLogEventRisk {
			t.Errorf("examples/%s: Validate = %q, %v", name, shape, err)
		}
	}
	// Each risk LogEvent of the example delivery validates once split off; the delivery
	// itself does not (it must be split first).
	data, err := os.ReadFile(filepath.Join("..", "examples", "okta-event-hook-delivery.json"))
	if err != nil {
		t.Fatal(err)
	}
	events, err := event.SplitHookDelivery(data)
	if err != nil {
		t.Fatal(err)
	}
	risky := 0
	for _, h := range events {
		if !h.IsRisk() {
			continue
		}
		risky++
		if shape, err := v.Validate(event.KindEntityRisk, h.Raw); err != nil || shape != event.ShapeOktaLogEventRisk {
			t.Errorf("%s %s: Validate = %q, %v", h.EventType, h.UUID, shape, err)
		}
	}
	if risky != 2 {
		t.Errorf("%d risk events in the example delivery, want 2", risky)
	}
	var ve *schema.ViolationError
	if _, err := v.Validate(event.KindEntityRisk, data); !errors.As(err, &ve) || ve.Shape != event.ShapeOktaLogEventRisk {
		t.Errorf("a whole delivery on the itp subject: %v, want a LogEvent violation", err)
	}
}

func TestValidateLogEventViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		msg  string
	}{
		{"no User target", riskLogEvent(`{"id":"a","type":"AppInstance"}`, `"risk":"{level=HIGH}"`),
			`okta-logevent-risk v1: /target: no target of type User: the at-risk user is unknown (minContains)`},
		{"several targets, none a User", riskLogEvent(`{"id":"r","type":"Rule"},{"id":"a","type":"AppInstance"}`, `"risk":"{level=HIGH}"`),
			`okta-logevent-risk v1: /target: no target of type User: the at-risk user is unknown (minContains)`},
		{"no targets", riskLogEvent(``, `"risk":"{level=HIGH}"`),
			`okta-logevent-risk v1: /target: no target of type User: the at-risk user is unknown (minContains)`},
		{"two User targets", riskLogEvent(jane+`,{"id":"00uSam","type":"User"}`, `"risk":"{level=HIGH}"`),
			`okta-logevent-risk v1: /target: more than one target of type User: the at-risk user is ambiguous (maxContains)`},
		{"User target without id", riskLogEvent(`{"type":"User"}`, `"risk":"{level=HIGH}"`),
			`okta-logevent-risk v1: /target/0/id: missing required property (required)`},
		{"unknown level", riskLogEvent(jane, `"risk":"{level=EXTREME}"`),
			`okta-logevent-risk v1: /debugContext/debugData/risk: risk level "EXTREME" is not NONE, LOW, MEDIUM or HIGH (decode)`},
		{"no level", riskLogEvent(jane, `"risk":"{detectionName=Okta Threat Intelligence}"`),
			`okta-logevent-risk v1: /debugContext/debugData/risk: no risk level (level=NONE, LOW, MEDIUM or HIGH) in the event (decode)`},
		{"another event type", `{"uuid":"u","published":"2026-03-02T09:15:27Z","eventType":"user.session.start","target":[` + jane +
			`],"debugContext":{"debugData":{"risk":"{level=HIGH}"}}}`,
			`okta-logevent-risk v1: /eventType: value must be one of "user.risk.detect", "user.risk.change" (enum)`},
		{"bad published", `{"uuid":"u","published":"yesterday","eventType":"user.risk.detect","target":[` + jane +
			`],"debugContext":{"debugData":{"risk":"{level=HIGH}"}}}`,
			`okta-logevent-risk v1: /published: not a valid date-time (format)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shape, err := validator(t).Validate(event.KindEntityRisk, []byte(tt.doc))
			var ve *schema.ViolationError
			if !errors.As(err, &ve) || shape != event.ShapeOktaLogEventRisk || ve.Schema != idLogEvent {
				t.Fatalf("Validate = %q, %v; want a *ViolationError of %s", shape, err, idLogEvent)
			}
			if err.Error() != tt.msg {
				t.Errorf("Error():\n got %s\nwant %s", err, tt.msg)
			}
			if err2 := validator(t).ValidateShape(event.ShapeOktaLogEventRisk, []byte(tt.doc)); err2 == nil || err2.Error() != tt.msg {
				t.Errorf("ValidateShape = %v", err2)
			}
		})
	}
}

// A second member of the same name, or bytes that are not UTF-8, make a document mean two
// things: both are invalid JSON (a *SyntaxError, which intake dead-letters as invalid_json),
// for every kind and shape, at any depth.
func TestValidateAmbiguousJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind event.Kind
		doc  string
		msg  string
	}{
		{"second issueTitle re-routes", event.KindISPMIssue,
			`{"eventId":"e1","issueId":"i1","issueTitle":"Old Password","issueTitle":"Unused Admin Account"}`,
			`invalid JSON at byte 71: duplicate key "issueTitle" at /`},
		{"second severity in the webhook", event.KindISPMIssue,
			`{"id":"w1","type":"issue.created","eventData":{"id":"A","title":"t","severity":"Low","severity":"High"}}`,
			`invalid JSON at byte 95: duplicate key "severity" at /eventData`},
		{"second riskLevel", event.KindEntityRisk,
			`{"eventId":"r","eventTime":"2026-03-02T09:15:27Z","userId":"u","riskLevel":"LOW","riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK"}`,
			`invalid JSON at byte 92: duplicate key "riskLevel" at /`},
		{"second target id in a LogEvent", event.KindEntityRisk,
			riskLogEvent(`{"type":"User","id":"00uJane","id":"00uBreakGlass"}`, `"risk":"{level=HIGH}"`),
			`invalid JSON at byte 128: duplicate key "id" at /target/0`},
		{"invalid UTF-8 in a title", event.KindISPMIssue,
			"{\"eventId\":\"e1\",\"issueId\":\"i1\",\"issueTitle\":\"Old \xc3\x28Password\"}",
			`invalid JSON at byte 49: invalid UTF-8 in string`},
		{"unpaired surrogate", event.KindEntityRisk,
			`{"eventId":"r\udc00","eventTime":"2026-03-02T09:15:27Z","userId":"u","riskLevel":"LOW","detectionType":"BRUTE_FORCE_ATTACK"}`,
			`invalid JSON at byte 13: unpaired surrogate \udc00 in string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := validator(t).Validate(tt.kind, []byte(tt.doc))
			var se *schema.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Validate = %T %v, want *SyntaxError", err, err)
			}
			if err.Error() != tt.msg {
				t.Errorf("Error():\n got %s\nwant %s", err, tt.msg)
			}
		})
	}
}
