package flowsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// EventHook is an Okta event hook of the simulated org: the System Log events of its types
// that [Simulator.AddLogEvents] adds are POSTed to URL as one com.okta.event_hook delivery,
// the way Okta documents it: a 3 s timeout, one retry on a 5xx answer, none on a 4xx. A
// delivery that fails is lost for the hook (the events stay in the System Log), and counted
// in [OrgStats].
type EventHook struct {
	// URL receives the deliveries (remediator's /hooks/okta).
	URL string
	// Authorization is the hook's secret, sent as the Authorization header.
	Authorization string
	// EventTypes are the subscribed types. Default user.risk.detect and user.risk.change.
	EventTypes []string
	// Client sends the deliveries. Default: one with Okta's 3 s timeout.
	Client *http.Client
}

// hookTimeout is how long Okta waits for an event-hook answer.
const hookTimeout = 3 * time.Second

// SetEventHook registers (or, with nil, removes) the org's event hook.
func (s *Simulator) SetEventHook(h *EventHook) error {
	if s.org == nil {
		return errNoOrg
	}
	var c *EventHook
	if h != nil {
		cp := *h
		if len(cp.EventTypes) == 0 {
			cp.EventTypes = []string{"user.risk.detect", "user.risk.change"}
		}
		if cp.Client == nil {
			cp.Client = &http.Client{Timeout: hookTimeout}
		}
		c = &cp
	}
	s.org.mu.Lock()
	defer s.org.mu.Unlock()
	s.org.hook = c
	return nil
}

// deliverHook sends the subscribed events among added to the hook, if any. It runs without
// o.mu held and records the outcome.
func (s *Simulator) deliverHook(ctx context.Context, added []logEntry) {
	o := s.org
	o.mu.Lock()
	h := o.hook
	o.mu.Unlock()
	if h == nil {
		return
	}
	var events []json.RawMessage
	for _, e := range added {
		if slices.Contains(h.EventTypes, e.eventType) {
			events = append(events, e.raw)
		}
	}
	if len(events) == 0 {
		return
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	body, _ := json.Marshal(map[string]any{
		"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
		"source":  o.issuer + "/api/v1/eventHooks/whoSimHook", // the hook id is a guess
		"eventId": hex.EncodeToString(id[:]), "eventTime": s.now().UTC().Format(time.RFC3339Nano),
		"contentType": "application/json", "data": map[string]any{"events": events},
	})
	var status int
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		status, err = postHook(ctx, h, body)
		// Okta retries once on a 5xx. Whether it retries a timeout or a refused connection
		// is not documented; the simulator guesses it does not.
		if err != nil || status < 500 {
			break
		}
	}
	ok := err == nil && status >= 200 && status < 300
	o.mu.Lock()
	if ok {
		o.stats.HookDeliveries++
	} else {
		o.stats.HookFailures++
		o.stats.HookEventsLost += len(events)
	}
	o.mu.Unlock()
	if !ok {
		s.log.LogAttrs(ctx, slog.LevelDebug, "flowsim event hook delivery failed (the events stay in the System Log)",
			slog.Int("events", len(events)), slog.Int("status", status), slog.Any("error", err))
	}
}

func postHook(ctx context.Context, h *EventHook, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("event hook URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if h.Authorization != "" {
		req.Header.Set("Authorization", h.Authorization)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}
