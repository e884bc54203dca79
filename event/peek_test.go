package event_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
)

func TestPeekID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"eventId (ISPM on-demand, entity risk)", `{"eventId":"f73a7741-6980-4d44-b0bf-13a2fa7ac556","issueId":"Alert_1"}`, "f73a7741-6980-4d44-b0bf-13a2fa7ac556"},
		{"id (ISPM webhook)", `{"id":"w1","type":"issue.created","eventData":{"id":"Alert_1"}}`, "w1"},
		{"uuid (System Log)", `{"uuid":"u1","eventType":"user.risk.detect"}`, "u1"},
		{"eventId wins over id and uuid", `{"uuid":"u1","id":"w1","eventId":"e1"}`, "e1"},
		{"id wins over uuid", `{"uuid":"u1","id":"w1"}`, "w1"},
		{"empty eventId falls through", `{"eventId":"","id":"w1"}`, "w1"},
		{"leading whitespace", "\n\t {\"eventId\":\"e1\"}", "e1"},
		{"invalid JSON", `{"eventId":"e1",`, ""},
		{"not JSON", `eventId=e1`, ""},
		{"empty", ``, ""},
		{"array", `[{"eventId":"e1"}]`, ""},
		{"string", `"e1"`, ""},
		{"non-string id", `{"id":42}`, ""},
		{"non-string eventId, string id", `{"eventId":{"value":"e1"},"id":"w1"}`, "w1"},
		{"null eventId", `{"eventId":null}`, ""},
		{"nested id only", `{"eventData":{"id":"Alert_1"}}`, ""},
		{"no id", `{"issueTitle":"Unused Admin Account"}`, ""},
	}
	for _, tt := range tests {
		if got := event.PeekID([]byte(tt.doc)); got != tt.want {
			t.Errorf("%s: PeekID(%q) = %q, want %q", tt.name, tt.doc, got, tt.want)
		}
	}
}

func TestPriority(t *testing.T) {
	t.Parallel()
	issue := func(sev string) *event.Event {
		return &event.Event{Kind: event.KindISPMIssue, Issue: &event.Issue{Severity: sev}}
	}
	risk := func(level string) *event.Event {
		return &event.Event{Kind: event.KindEntityRisk, Risk: &event.RiskTrigger{RiskLevel: level}}
	}
	tests := []struct {
		name string
		ev   *event.Event
		want event.Priority
	}{
		{"Critical issue", issue("Critical"), event.PriorityHigh},
		{"High issue", issue("High"), event.PriorityHigh},
		{"HIGH issue, spaces", issue(" HIGH "), event.PriorityHigh},
		{"Medium issue", issue("Medium"), event.PriorityNormal},
		{"Low issue", issue("Low"), event.PriorityLow},
		{"Info issue", issue("Info"), event.PriorityLow},
		{"unknown severity", issue("Severe"), event.PriorityNormal},
		{"no severity", issue(""), event.PriorityNormal},
		{"HIGH risk", risk("HIGH"), event.PriorityHigh},
		{"MEDIUM risk", risk("MEDIUM"), event.PriorityNormal},
		{"LOW risk", risk("LOW"), event.PriorityLow},
		{"lower-case low risk", risk("low"), event.PriorityLow},
		{"neither issue nor risk", &event.Event{}, event.PriorityNormal},
	}
	for _, tt := range tests {
		if got := tt.ev.Priority(); got != tt.want {
			t.Errorf("%s: Priority() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// shapeOf names the shape of a fixture in ../schema/testdata by its file name.
func shapeOf(name string) (event.Shape, bool) {
	for prefix, shape := range map[string]event.Shape{
		"ispm-ondemand": event.ShapeISPMOnDemand,
		"ispm-webhook":  event.ShapeISPMWebhook,
		"entity-risk":   event.ShapeEntityRisk,
		"okta-logevent": event.ShapeOktaLogEventRisk,
	} {
		if strings.HasPrefix(name, prefix) {
			return shape, true
		}
	}
	return "", false
}

// A Delegated Flow card takes only flat inputs: strings, numbers, booleans and times.
func TestInputsAreFlat(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "schema", "testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d fixtures in ../schema/testdata, want at least 3", len(files))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			shape, ok := shapeOf(name)
			if !ok {
				t.Fatalf("no shape known for fixture %s; add its prefix to shapeOf", name)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := event.Decode(shape, data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", shape, err)
			}
			in := ev.Inputs()
			if len(in) == 0 {
				t.Fatal("Inputs() is empty")
			}
			for k, v := range in {
				switch v.(type) {
				case string, bool, int, int64, float64, time.Time:
				default:
					t.Errorf("input %q is %T (%s), not a string, number, boolean or time", k, v, reflect.ValueOf(v).Kind())
				}
			}
			if in["eventId"] != event.PeekID(data) {
				t.Errorf("input eventId = %v, PeekID = %q", in["eventId"], event.PeekID(data))
			}
			if ts, ok := in["eventTimestamp"].(string); ok {
				if _, err := time.Parse(time.RFC3339, ts); err != nil {
					t.Errorf("eventTimestamp %q is not RFC 3339: %v", ts, err)
				}
			}
			switch shape {
			case event.ShapeEntityRisk, event.ShapeOktaLogEventRisk:
				for _, k := range []string{"userId", "riskLevel", "detectionType"} {
					if _, ok := in[k]; !ok {
						t.Errorf("entity-risk inputs lack %q: %v", k, in)
					}
				}
			default:
				for _, k := range []string{"issueId", "issueTitle", "entityDisplayName"} {
					if _, ok := in[k]; !ok {
						t.Errorf("ISPM inputs lack %q: %v", k, in)
					}
				}
			}
		})
	}
}
