package ops

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/status"
)

// History is the journey of one event: every status record in time order and its dead
// letters. It is the JSON of `remediator status EVENT_ID --json`.
type History struct {
	EventID     string          `json:"eventId"`
	Statuses    []status.Record `json:"statuses"`
	DeadLetters []dlq.Entry     `json:"deadLetters"`
}

// Found reports whether anything was recorded for the event.
func (h History) Found() bool { return len(h.Statuses) > 0 || len(h.DeadLetters) > 0 }

// EventHistory scans the status and dead-letter streams for eventID. Status records are not
// indexed by event, so this reads every record since from (or the whole stream when zero).
func (o *Ops) EventHistory(ctx context.Context, eventID string, from time.Time) (History, error) {
	h := History{EventID: eventID, Statuses: []status.Record{}, DeadLetters: []dlq.Entry{}}
	needle, _ := json.Marshal(eventID) // as the worker encodes it, quotes included
	err := o.b.Scan(ctx, broker.StreamStatus, status.SubjectPrefix+">", 0, from, func(m *broker.StoredMessage) bool {
		if !bytes.Contains(m.Data, needle) && !bytes.Contains(m.Data, []byte(eventID)) {
			return true // cheap pre-check before decoding
		}
		var r status.Record
		if json.Unmarshal(m.Data, &r) == nil && r.EventID == eventID {
			r.Unverified = o.unverified(m.Subject, m.Data, m.Header)
			h.Statuses = append(h.Statuses, r)
		}
		return true
	})
	if err != nil {
		return h, o.explain(err, broker.StreamStatus)
	}
	slices.SortStableFunc(h.Statuses, func(a, b status.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	err = o.dlq.Scan(ctx, dlq.Filter{Since: from}, func(l dlq.Letter) bool {
		if l.Record.EventID == eventID {
			h.DeadLetters = append(h.DeadLetters, l.Entry())
		}
		return true
	})
	return h, err
}

// Query selects events for [Ops.SearchEvents]. Empty fields match everything.
type Query struct {
	// Text is an event id (exact), or text the event document contains: a user id or login,
	// an issue id (case-insensitive).
	Text string
	// Flow keeps the events that have a status record of this flow.
	Flow string
	// Since bounds how far back the search reads. Zero: the whole streams.
	Since time.Time
	// Limit bounds the result, newest first. Default 100.
	Limit int
}

// EventSummary is one event found by [Ops.SearchEvents].
type EventSummary struct {
	EventID   string         `json:"eventId"`
	Kind      string         `json:"kind,omitempty"`
	Flows     []string       `json:"flows"`
	Outcome   status.Outcome `json:"outcome,omitempty"` // the latest record's
	At        time.Time      `json:"at"`                // the latest record's, or the arrival
	Records   int            `json:"records"`
	Delivered time.Time      `json:"arrived,omitzero"` // when REMEDIATION_EVENTS stored it
}

// SearchEvents finds events by id, by what their documents hold (user, issue) or by flow,
// newest first. It reads the events and status streams since q.Since.
func (o *Ops) SearchEvents(ctx context.Context, q Query) ([]EventSummary, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	text := strings.TrimSpace(q.Text)
	lower := []byte(strings.ToLower(text))
	found := map[string]*EventSummary{}
	matched := map[string]bool{} // event ids whose document contains the text
	err := o.b.Scan(ctx, broker.StreamEvents, "", 0, q.Since, func(m *broker.StoredMessage) bool {
		id := event.PeekID(m.Data)
		if id == "" {
			return true
		}
		if text != "" && (id == text || bytes.Contains(bytes.ToLower(m.Data), lower)) {
			matched[id] = true
		}
		if _, ok := found[id]; !ok {
			kind, _ := event.KindForSubject(m.Subject)
			found[id] = &EventSummary{EventID: id, Kind: string(kind), Flows: []string{}, At: m.Time, Delivered: m.Time}
		}
		return true
	})
	if err != nil {
		return nil, o.explain(err, broker.StreamEvents)
	}
	err = o.b.Scan(ctx, broker.StreamStatus, status.SubjectPrefix+">", 0, q.Since, func(m *broker.StoredMessage) bool {
		var r status.Record
		if json.Unmarshal(m.Data, &r) != nil || r.EventID == "" {
			return true
		}
		if text != "" && r.EventID == text {
			matched[r.EventID] = true
		}
		s := found[r.EventID]
		if s == nil {
			s = &EventSummary{EventID: r.EventID, Flows: []string{}}
			found[r.EventID] = s
		}
		if s.Kind == "" {
			s.Kind = r.EventKind
		}
		if r.Flow != "" && !slices.Contains(s.Flows, r.Flow) {
			s.Flows = append(s.Flows, r.Flow)
		}
		s.Records++
		if !r.Timestamp.Before(s.At) || s.Outcome == "" {
			s.Outcome, s.At = r.Outcome, r.Timestamp
		}
		return true
	})
	if err != nil {
		return nil, o.explain(err, broker.StreamStatus)
	}
	var out []EventSummary
	for _, id := range slices.Sorted(maps.Keys(found)) {
		s := found[id]
		if text != "" && !matched[id] {
			continue
		}
		if q.Flow != "" && !slices.Contains(s.Flows, q.Flow) {
			continue
		}
		out = append(out, *s)
	}
	slices.SortStableFunc(out, func(a, b EventSummary) int { return cmp.Or(b.At.Compare(a.At), strings.Compare(a.EventID, b.EventID)) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// Redacted is what stands in for a secret value.
const Redacted = "[redacted]"

// secretWords mark a key whose value must not be shown.
var secretWords = []string{"token", "secret", "password", "passwd", "authorization", "apikey", "api_key", "credential", "cookie", "signature", "privatekey", "private_key"}

// IsSecretKey reports whether a key (an input name, a header) names a secret.
func IsSecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// RedactInputs returns a copy of flow inputs with the values of secret-looking keys replaced,
// at any depth.
func RedactInputs(in map[string]any) map[string]any {
	if in == nil {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		if IsSecretKey(k) {
			out[k] = Redacted
			continue
		}
		out[k] = redactValue(v)
	}
	return out
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return RedactInputs(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = redactValue(e)
		}
		return out
	}
	return v
}

// StoredEvent is an event as REMEDIATION_EVENTS holds it.
type StoredEvent struct {
	Sequence uint64
	Subject  string
	Time     time.Time
	Header   map[string][]string
	Data     []byte
}

// FindEvent returns the latest copy of eventID stored since from (a replay stores another),
// reading REMEDIATION_EVENTS; found is false when retention removed it or the id is unknown.
func (o *Ops) FindEvent(ctx context.Context, eventID string, from time.Time) (ev StoredEvent, found bool, err error) {
	needle := []byte(eventID)
	err = o.b.Scan(ctx, broker.StreamEvents, "", 0, from, func(m *broker.StoredMessage) bool {
		if bytes.Contains(m.Data, needle) && event.PeekID(m.Data) == eventID {
			ev, found = StoredEvent{Sequence: m.Sequence, Subject: m.Subject, Time: m.Time, Header: m.Header, Data: m.Data}, true
		}
		return true
	})
	if err != nil {
		return StoredEvent{}, false, o.explain(err, broker.StreamEvents)
	}
	return ev, found, nil
}
