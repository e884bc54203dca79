package schema_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/schema"
)

// FuzzValidate checks that no bytes make Validate panic, that every failure is one of the
// two documented error types, and that whatever validates also decodes.
func FuzzValidate(f *testing.F) {
	for _, name := range []string{"ispm-ondemand-seed.json", "ispm-webhook.json", "entity-risk.json", "okta-logevent-risk.json"} {
		f.Add(readFixture(f, name))
	}
	for _, s := range []string{
		``, `not json`, `{} x`, `[]`, `null`, `{"type":1}`, `{"eventData":{}}`,
		`{"eventId":"e","issueId":"i","issueTitle":"t","additionalDataX":"1","additionalData~/":"2"}`,
		`{"id":"w","type":"t","eventData":{"id":"a","title":"t","affectedEntity":{"additionalData":{"a_b":[1,{"<":null}],"":1,"é":true}}}}`,
		`{"eventId":"r","eventTime":"2016-12-31T23:59:60Z","userId":"u","riskLevel":"LOW","detectionType":"BRUTE_FORCE_ATTACK","groups":["g"]}`,
		`{"eventId":1e999999,"EVENTID":"x","issueId":"i","issueTitle":"t"}`,
		`{"eventId":"r","eventTime":"2026-03-02T+9:15:27Z","userId":"u","riskLevel":"LOW","detectionType":"BRUTE_FORCE_ATTACK"}`,
		`{"eventId":"r","eventTime":"2026-03-02T09:15:27Z","userId":"u","riskLevel":"low","riskLevel":"HIGH","detectionType":"BRUTE_FORCE_ATTACK"}`,
		`{"uuid":"u","published":"2026-03-02T09:15:27Z","eventType":"user.risk.change","target":[{"type":"User","id":"0"}],"debugContext":{"debugData":{"risk":"{level=none, detectionName=x, y=z}"}}}`,
		`{"uuid":"u","published":"2026-03-02T09:15:27Z","eventType":"user.risk.detect","target":[{"type":"Rule","id":"r"},{"type":"User","id":"0"}],"debugContext":{"debugData":{"Risk":{"level":"High"},"riskLevel":"LOW"}}}`,
		"{\"uuid\":\"u\xff\"}",
	} {
		f.Add([]byte(s))
	}
	v, err := schema.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []event.Kind{event.KindISPMIssue, event.KindEntityRisk} {
			shape, err := v.Validate(kind, data)
			if err != nil {
				var se *schema.SyntaxError
				var ve *schema.ViolationError
				switch {
				case errors.As(err, &se):
				case errors.As(err, &ve):
					if len(ve.Violations) == 0 || ve.Shape != shape || ve.Schema != v.SchemaID(shape) {
						t.Fatalf("%s: malformed ViolationError %#v", kind, ve)
					}
				default:
					t.Fatalf("%s: error of type %T: %v", kind, err, err)
				}
				if err.Error() == "" {
					t.Fatalf("%s: empty error message", kind)
				}
				continue
			}
			if shape.Kind() != kind {
				t.Fatalf("%s: validated as %s", kind, shape)
			}
			e, err := event.Decode(shape, data)
			if err != nil {
				t.Fatalf("%s: validated as %s but Decode failed: %v", kind, shape, err)
			}
			if e.Kind != kind || e.Shape != shape || e.ID == "" {
				t.Fatalf("%s: Decode gave kind %q shape %q id %q", kind, e.Kind, e.Shape, e.ID)
			}
			if kind == event.KindEntityRisk {
				_, levelOK := event.NormalizeRiskLevel(e.Risk.RiskLevel)
				detectionOK := event.IsDetectionType(e.Risk.DetectionType) ||
					shape == event.ShapeOktaLogEventRisk && e.Risk.DetectionType == event.DetectionUnknown
				if e.Time.IsZero() || e.Risk.UserID == "" || !detectionOK || !levelOK || e.Risk.RiskLevel != strings.ToUpper(e.Risk.RiskLevel) {
					t.Fatalf("validated entity-risk event decoded to %+v %+v", e, e.Risk)
				}
				if e.Inputs()["oktaUserId"] != e.Risk.UserID {
					t.Fatalf("oktaUserId input %v is not the user %q", e.Inputs()["oktaUserId"], e.Risk.UserID)
				}
			}
			// What validates has one meaning: no duplicate keys, no invalid strings.
			if err := event.CheckJSON(data); err != nil {
				t.Fatalf("%s: validated, but CheckJSON: %v", kind, err)
			}
			if kind == event.KindISPMIssue && (e.Issue.ID == "" || e.Issue.Title == "") {
				t.Fatalf("validated ISPM issue decoded to %+v %+v", e, e.Issue)
			}
			for k, val := range e.Inputs() {
				switch val.(type) {
				case string, bool, int, int64, float64, time.Time:
				default:
					t.Fatalf("%s: input %q is %T", kind, k, val)
				}
			}
		}
	})
}
