package event_test

import (
	"fmt"
	"os"

	"github.com/remediator/remediator/event"
)

// An ingress splits an Okta event-hook delivery and publishes each risk LogEvent as it is,
// with a de-duplication id from its uuid; other event types are skipped.
func ExampleSplitHookDelivery() {
	delivery, err := os.ReadFile("../examples/okta-event-hook-delivery.json")
	if err != nil {
		panic(err)
	}
	events, err := event.SplitHookDelivery(delivery)
	if err != nil {
		fmt.Println("400:", err) // not JSON with one meaning, or not a delivery
		return
	}
	for _, h := range events {
		if !h.IsRisk() {
			fmt.Println("skip", h.EventType)
			continue
		}
		fmt.Printf("publish h.Raw to %s, Nats-Msg-Id okta:%s\n", event.SubjectITP, h.UUID)
	}
	// Output:
	// publish h.Raw to remediation.events.itp, Nats-Msg-Id okta:2b7a4e0c-5d3f-11f0-9c1a-7b2e4d8f0a61
	// publish h.Raw to remediation.events.itp, Nats-Msg-Id okta:5c9e1f2a-5d3f-11f0-8b7d-3f6a2c9e1d40
	// skip user.session.start
}

func ExampleParseRiskData() {
	risk := event.ParseRiskData("{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=Anomalous location, new device, issuer=OKTA}")
	level, _ := event.RiskValue(risk, "level")
	name, _ := event.RiskValue(risk, "detectionName")
	fmt.Println(level, event.DetectionTypeForName(name))
	fmt.Println(risk["reasons"])
	// Output:
	// MEDIUM SESSION_INFLUENCED_USER_RISK
	// Anomalous location, new device
}

func ExampleCheckJSON() {
	fmt.Println(event.CheckJSON([]byte(`{"issueTitle":"Old Password","issueTitle":"Unused Admin Account"}`)))
	fmt.Println(event.CheckJSON([]byte("{\"issueTitle\":\"Old \xffPassword\"}")))
	fmt.Println(event.CheckJSON([]byte(`{"issueTitle":"Old Password"}`)))
	// Output:
	// invalid JSON at byte 41: duplicate key "issueTitle" at /
	// invalid JSON at byte 19: invalid UTF-8 in string
	// <nil>
}
