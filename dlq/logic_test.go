package dlq

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/status"
)

func TestReplayHeaders(t *testing.T) {
	t.Parallel()
	orig := map[string][]string{
		"Nats-Msg-Id":                    {"f73a7741"},
		"Nats-Expected-Last-Sequence":    {"41"},
		"traceparent":                    {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Tracestate":                     {"vendor=x"},
		"X-Api-Token":                    {"[REDACTED]"},
		"Remediator-Replay-Of":           {"7"},
		"X-Source":                       {"ispm", "webhook"},
		"Content-Type":                   {"application/json"},
		"Remediator-Replayed-By":         {"bob"},
		"Remediator-Principal":           {"00u1admin"},
		"X-Partly-Redacted-But-Not-Ours": {"[REDACTED]", "kept"},
	}
	got := ReplayHeaders(orig, []uint64{12, 15}, "alice")
	want := map[string][]string{
		"X-Source":                       {"ispm", "webhook"},
		"Content-Type":                   {"application/json"},
		"X-Partly-Redacted-But-Not-Ours": {"[REDACTED]", "kept"},
		"Remediator-Principal":           {"00u1admin"},
		"Remediator-Replay-Of":           {"12", "15"},
		"Remediator-Replayed-By":         {"alice"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("ReplayHeaders = %v\nwant %v", got, want)
	}
	if orig["Remediator-Replay-Of"][0] != "7" {
		t.Error("ReplayHeaders modified the original headers")
	}
}

func TestRedactHeadersCopies(t *testing.T) {
	t.Parallel()
	orig := map[string][]string{"Authorization": {"Bearer x"}, "X-Client-Token": {"t"}, "X-Source": {"ispm"}}
	got := RedactHeaders(orig)
	want := map[string][]string{"Authorization": {"[REDACTED]"}, "X-Client-Token": {"[REDACTED]"}, "X-Source": {"ispm"}}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("RedactHeaders = %v, want %v", got, want)
	}
	if orig["Authorization"][0] != "Bearer x" {
		t.Error("RedactHeaders modified its argument")
	}
}

func TestBatchesNeverSplitAnEvent(t *testing.T) {
	t.Parallel()
	var p Plan
	for i := range AuditBatch + 1 {
		e := PlannedEvent{Letters: []Ref{{Sequence: uint64(2*i + 1)}}}
		if i == AuditBatch-1 { // the event that crosses the batch boundary has two letters
			e.Letters = append(e.Letters, Ref{Sequence: uint64(2*i + 2)})
		}
		p.Events = append(p.Events, e)
		p.Letters += len(e.Letters)
	}
	b := p.batches()
	if len(b) != 2 || len(b[0]) != AuditBatch || len(b[1]) != 1 {
		t.Fatalf("batches of %d, %d events; want %d and 1", len(b[0]), len(b[len(b)-1]), AuditBatch)
	}
}

func TestNotReplayable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		l    Letter
		want bool // replayable
	}{
		{"event with payload", Letter{Record: status.DeadLetter{Subject: "remediation.events.ispm", Payload: []byte("{}")}}, true},
		{"event by reference", Letter{Record: status.DeadLetter{Subject: "remediation.events.itp", EventSequence: 9}}, true},
		{"dispatch job", Letter{Record: status.DeadLetter{Subject: "remediation.dispatch.x.high", Payload: []byte("{}")}}, false},
		{"neither payload nor reference", Letter{Record: status.DeadLetter{Subject: "remediation.events.ispm"}}, false},
		{"unreadable", Letter{DecodeErr: errors.New("bad"), Record: status.DeadLetter{Subject: "remediation.events.ispm", Payload: []byte("{}")}}, false},
	}
	for _, tt := range tests {
		if got := notReplayable(tt.l) == ""; got != tt.want {
			t.Errorf("%s: replayable = %v, want %v (%q)", tt.name, got, tt.want, notReplayable(tt.l))
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	l := Decode(&broker.StoredMessage{Sequence: 4, Subject: "remediation.dlq.no_route", Data: []byte("not json"), Time: at})
	if l.DecodeErr == nil || l.Record.Reason != status.ReasonNoRoute || l.Sequence != 4 || !l.Time.Equal(at) {
		t.Errorf("Decode of an unreadable record = %+v; want its reason from the subject and DecodeErr set", l)
	}
	l = Decode(&broker.StoredMessage{Sequence: 5, Subject: "remediation.dlq.too_large", Data: []byte(`{"reason":"too_large","subject":"remediation.events.ispm","payload":null,"eventSequence":7}`)})
	if l.DecodeErr != nil || !l.ByReference() || l.Entry().EventSequence != 7 {
		t.Errorf("Decode of a reference-only record = %+v; want ByReference with event sequence 7", l)
	}
}
