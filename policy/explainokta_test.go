package policy_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
)

// testDecoding stands in for the event package's LogEvent decoding: just enough of a
// user.risk.* LogEvent (the User target, the level in debugData.risk) for policy.
var testDecoding = policy.OktaDecoding{
	Split: func(b []byte) ([][]byte, error) {
		var d struct {
			Data struct {
				Events []json.RawMessage `json:"events"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, err
		}
		out := make([][]byte, len(d.Data.Events))
		for i, e := range d.Data.Events {
			out[i] = e
		}
		return out, nil
	},
	Decode: func(b []byte) (*event.Event, error) {
		var le struct {
			UUID   string `json:"uuid"`
			Target []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"target"`
			Debug struct {
				Data struct {
					Risk string `json:"risk"`
				} `json:"debugData"`
			} `json:"debugContext"`
		}
		if err := json.Unmarshal(b, &le); err != nil {
			return nil, err
		}
		rt := &event.RiskTrigger{DetectionType: "UNKNOWN"}
		for _, t := range le.Target {
			if t.Type == "User" {
				rt.UserID = t.ID
			}
		}
		if rt.UserID == "" {
			return nil, errors.New("/target: no entry of type User")
		}
		if m := regexp.MustCompile(`\blevel=(\w+)`).FindStringSubmatch(le.Debug.Data.Risk); m != nil {
			rt.RiskLevel = strings.ToUpper(m[1])
		}
		return &event.Event{ID: le.UUID, Kind: event.KindEntityRisk, Risk: rt}, nil
	},
}

func logEventJSON(uuid, typ, user, level string) string {
	return `{"uuid":"` + uuid + `","eventType":"` + typ + `","published":"2026-11-30T10:00:00Z",
"target":[{"id":"0pr1policy","type":"Policy"},{"id":"` + user + `","type":"User"}],
"debugContext":{"debugData":{"risk":"{previousLevel=LOW, level=` + level + `, detectionName=Something New, reasons=a, b=c}"}}}`
}

func TestExplainOkta(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{
		Flows: []config.Flow{{Name: "clear", URL: "https://acme.workflows.okta.com/api/flo/c/invoke", ClientToken: config.Secret{Env: "T"}}},
		RiskRules: []config.RiskRule{
			{Name: "high", Priority: 1, Conditions: config.RiskConditions{Level: "HIGH"}, Flow: "clear"},
			{Name: "medium-log-only", Priority: 2, Conditions: config.RiskConditions{Level: "MEDIUM"}},
		},
		ResourceSets: []config.ResourceSet{{Name: "itp", Flows: []string{"clear"}, Rules: []string{"high"}, Permissions: []string{"run"}}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := policy.New(cfg)
	delivery := `{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","data":{"events":[` +
		logEventJSON("u1", "user.risk.detect", "00uJane", "HIGH") + "," +
		logEventJSON("u2", "user.risk.change", "00uJane", "LOW") + "," +
		logEventJSON("u3", "user.risk.detect", "00uBob", "MEDIUM") + "," +
		logEventJSON("u4", "user.session.start", "00uJane", "LOW") + "," +
		`{"uuid":"u5","eventType":"user.risk.detect","target":[]}` + `]}}`
	got, err := r.ExplainOkta([]byte(delivery), testDecoding)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ uuid, verdict, reason string }{
		{"u1", policy.VerdictDispatch, ""},
		{"u2", policy.VerdictSkipped, "matched no custom rule"},
		{"u3", policy.VerdictSkipped, "log-only"},
		{"u4", policy.VerdictIgnored, "user.session.start"},
		{"u5", policy.VerdictDeadLetter, "no entry of type User"},
	}
	if len(got) != len(want) {
		t.Fatalf("explained %d LogEvents, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		x := got[i]
		if x.Index != i || x.UUID != w.uuid || x.Verdict != w.verdict || !strings.Contains(x.Reason, w.reason) {
			t.Errorf("LogEvent %d = %+v, want uuid %s, verdict %s, reason containing %q", i, x, w.uuid, w.verdict, w.reason)
		}
	}
	if x := got[0]; x.Principal != "rule:high" || len(x.Flows) != 1 || x.Flows[0] != "clear" || x.UserID != "00uJane" || len(x.Steps) == 0 || x.DetectionType != "UNKNOWN" {
		t.Errorf("dispatched LogEvent = %+v", x)
	}

	// A single LogEvent, and an array as the System Log API returns, are explained too.
	single, err := r.ExplainOkta([]byte(logEventJSON("s1", "user.risk.detect", "00uJane", "HIGH")), testDecoding)
	if err != nil || len(single) != 1 || single[0].Verdict != policy.VerdictDispatch {
		t.Errorf("single LogEvent: %+v, %v", single, err)
	}
	list, err := r.ExplainOkta([]byte("["+logEventJSON("a1", "user.risk.detect", "00uJane", "high")+"]"), testDecoding)
	if err != nil || len(list) != 1 || list[0].Verdict != policy.VerdictDispatch {
		t.Errorf("array of LogEvents: %+v, %v", list, err)
	}
	for _, bad := range []string{`not json`, `{"foo":1}`, `"a string"`} {
		if _, err := r.ExplainOkta([]byte(bad), testDecoding); err == nil {
			t.Errorf("ExplainOkta(%s) = nil error, want one", bad)
		}
	}
}
