package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/remediator/remediator/event"
)

// OktaDecoding is how [Router.ExplainOkta] reads Okta documents: the event package's
// functions, given by the caller so that policy needs no schema of its own.
type OktaDecoding struct {
	// Split returns the LogEvents of a com.okta.event_hook delivery, each exactly as sent.
	Split func(delivery []byte) ([][]byte, error)
	// Decode validates and normalises one user.risk.detect / user.risk.change LogEvent, as
	// the intake does; its error is the text a dead letter would carry.
	Decode func(logEvent []byte) (*event.Event, error)
}

// Verdicts of [OktaExplanation].
const (
	VerdictDispatch   = "dispatch"    // the event runs Flows
	VerdictSkipped    = "skipped"     // unrouted or log-only: a terminal skipped status
	VerdictDeadLetter = "dead-letter" // refused: Reason says why (unauthorized, schema)
	VerdictIgnored    = "ignored"     // not a risk event type: the ingress does not forward it
)

// OktaExplanation is what [Router.ExplainOkta] says about one LogEvent.
type OktaExplanation struct {
	// Index is the LogEvent's position in the document (0 for a single LogEvent).
	Index     int    `json:"index"`
	UUID      string `json:"uuid,omitempty"`
	EventType string `json:"eventType"`
	// UserID, RiskLevel and DetectionType are read from the event once decoded.
	UserID        string `json:"userId,omitempty"`
	RiskLevel     string `json:"riskLevel,omitempty"`
	DetectionType string `json:"detectionType,omitempty"`
	// Steps are the rules in order, as [Router.Explain] gives them.
	Steps []Step `json:"steps,omitempty"`
	// Principal of the event when it routes to flows.
	Principal string `json:"principal,omitempty"`
	// Flows it runs; Denied holds an authorization refusal per flow, if any.
	Flows  []string          `json:"flows,omitempty"`
	Denied map[string]string `json:"denied,omitempty"`
	// Verdict is VerdictDispatch, VerdictSkipped, VerdictDeadLetter or VerdictIgnored.
	Verdict string `json:"verdict"`
	// Reason says why the verdict is not dispatch.
	Reason string `json:"reason,omitempty"`
}

// ExplainOkta explains every LogEvent of an Okta document: a raw com.okta.event_hook delivery
// (as POSTed to /hooks/okta), a JSON array of LogEvents (as the System Log API returns them),
// or a single LogEvent. Each risk event is decoded and evaluated as the intake would: the
// rules in order, the verdict, the principal and its authorization for each flow. Other event
// types are reported as ignored. An error is returned only for a document that is none of
// those.
func (r *Router) ExplainOkta(data []byte, dec OktaDecoding) ([]OktaExplanation, error) {
	return r.ExplainOktaContext(context.Background(), data, dec)
}

// ExplainOktaContext is [Router.ExplainOkta] with a context for group look-ups.
func (r *Router) ExplainOktaContext(ctx context.Context, data []byte, dec OktaDecoding) ([]OktaExplanation, error) {
	events, err := oktaLogEvents(data, dec.Split)
	if err != nil {
		return nil, err
	}
	out := make([]OktaExplanation, 0, len(events))
	for i, raw := range events {
		out = append(out, r.explainLogEvent(ctx, i, raw, dec.Decode))
	}
	return out, nil
}

func oktaLogEvents(data []byte, split func([]byte) ([][]byte, error)) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("explain: not a JSON array of LogEvents: %w", err)
		}
		out := make([][]byte, len(list))
		for i, e := range list {
			out[i] = e
		}
		return out, nil
	}
	var head struct {
		EventType string          `json:"eventType"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(trimmed, &head); err != nil {
		return nil, fmt.Errorf("explain: neither an event hook delivery nor a LogEvent: %w", err)
	}
	if head.EventType == "com.okta.event_hook" {
		if split == nil {
			return nil, errors.New("explain: no splitter for event hook deliveries")
		}
		events, err := split(trimmed)
		if err != nil {
			return nil, fmt.Errorf("explain: event hook delivery: %w", err)
		}
		return events, nil
	}
	if head.EventType == "" {
		return nil, errors.New("explain: the document has no eventType: it is neither an event hook delivery nor a LogEvent")
	}
	return [][]byte{trimmed}, nil
}

func (r *Router) explainLogEvent(ctx context.Context, i int, raw []byte, decode func([]byte) (*event.Event, error)) OktaExplanation {
	var head struct {
		UUID      string `json:"uuid"`
		EventType string `json:"eventType"`
	}
	_ = json.Unmarshal(raw, &head) // a LogEvent that does not parse is reported by decode
	x := OktaExplanation{Index: i, UUID: head.UUID, EventType: head.EventType}
	if !event.IsRiskEventType(head.EventType) {
		x.Verdict, x.Reason = VerdictIgnored, fmt.Sprintf("event type %q is not user.risk.detect or user.risk.change", head.EventType)
		return x
	}
	if decode == nil {
		x.Verdict, x.Reason = VerdictDeadLetter, "no LogEvent decoder"
		return x
	}
	ev, err := decode(raw)
	if err != nil {
		x.Verdict, x.Reason = VerdictDeadLetter, err.Error()
		return x
	}
	if ev.Risk != nil {
		x.UserID, x.RiskLevel, x.DetectionType = ev.Risk.UserID, ev.Risk.RiskLevel, ev.Risk.DetectionType
	}
	x.Steps = r.ExplainContext(ctx, ev)
	decisions, err := r.RouteContext(ctx, ev)
	switch {
	case errors.Is(err, ErrUnrouted):
		x.Verdict, x.Reason = VerdictSkipped, err.Error()
		return x
	case err != nil:
		x.Verdict, x.Reason = VerdictDeadLetter, err.Error()
		return x
	}
	p, err := r.Principal(ev, nil, event.SubjectITP)
	if err != nil {
		x.Verdict, x.Reason = VerdictDeadLetter, err.Error()
		return x
	}
	x.Principal = p.ID
	x.Verdict = VerdictDispatch
	for _, d := range decisions {
		x.Flows = append(x.Flows, d.Flow)
		if err := r.Authorize(ev, p, d.Flow); err != nil {
			if x.Denied == nil {
				x.Denied = map[string]string{}
			}
			x.Denied[d.Flow] = err.Error()
			x.Verdict, x.Reason = VerdictDeadLetter, "unauthorized: the principal may not run every flow"
		}
	}
	return x
}
