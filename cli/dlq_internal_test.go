package cli

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/remediator/remediator/status"
)

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2h", want: now.Add(-2 * time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "2026-11-23T09:00:00Z", want: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)},
		{in: "2026-11-23T10:00:00+01:00", want: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)},
		{in: "yesterday", wantErr: true},
		{in: "-2h", wantErr: true},
		{in: "0d", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !got.Equal(tt.want)) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

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
		"X-Partly-Redacted-But-Not-Ours": {"[REDACTED]", "kept"},
	}
	got := replayHeaders(orig, []uint64{12, 15}, "alice")
	want := map[string][]string{
		"X-Source":                       {"ispm", "webhook"},
		"Content-Type":                   {"application/json"},
		"X-Partly-Redacted-But-Not-Ours": {"[REDACTED]", "kept"},
		"Remediator-Replay-Of":           {"12", "15"},
		"Remediator-Replayed-By":         {"alice"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("replayHeaders = %v\nwant %v", got, want)
	}
	if orig["Remediator-Replay-Of"][0] != "7" {
		t.Error("replayHeaders modified the original headers")
	}
}

func TestPlanReplayGroupsLettersOfOneEvent(t *testing.T) {
	t.Parallel()
	letter := func(seq uint64, subject, payload string) deadLetter {
		return deadLetter{Seq: seq, Rec: status.DeadLetter{Subject: subject, Payload: []byte(payload)}}
	}
	refs := []letterRef{
		refOf(letter(1, "remediation.events.ispm", `{"eventId":"a"}`)),
		refOf(letter(2, "remediation.events.ispm", `{"eventId":"b"}`)),
		refOf(letter(3, "remediation.events.ispm", `{"eventId":"a"}`)), // a's second flow
		refOf(letter(4, "remediation.events.itp", `{"eventId":"a"}`)),  // same bytes, other subject
		refOf(letter(5, "remediation.dispatch.notify.high", `{"v":1}`)),
		refOf(letter(6, "remediation.events.ispm", ``)),
	}
	p := planReplay(refs)
	var groups [][]uint64
	for _, g := range p.groups {
		groups = append(groups, seqsOf(g))
	}
	if want := [][]uint64{{1, 3}, {2}, {4}}; !slices.EqualFunc(groups, want, slices.Equal) {
		t.Errorf("groups = %v, want %v", groups, want)
	}
	if p.letters != 4 || len(p.skipped) != 2 || p.skipped[0].Sequence != 5 || p.skipped[1].Sequence != 6 {
		t.Errorf("plan: %d letters, skipped %+v", p.letters, p.skipped)
	}
}

func TestReplayBatchesNeverSplitAnEvent(t *testing.T) {
	t.Parallel()
	var p replayPlan
	for i := range auditBatch + 1 {
		grp := []letterRef{{Seq: uint64(2*i + 1)}}
		if i == auditBatch-1 { // the event that crosses the batch boundary has two letters
			grp = append(grp, letterRef{Seq: uint64(2*i + 2)})
		}
		p.groups = append(p.groups, grp)
		p.letters += len(grp)
	}
	b := p.batches()
	if len(b) != 2 || len(b[0]) != auditBatch || len(b[1]) != 1 {
		t.Fatalf("batches of %d, %d events; want %d and 1", len(b[0]), len(b[len(b)-1]), auditBatch)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	v := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100}
	for _, tt := range []struct {
		p    int
		want int64
	}{{50, 10}, {95, 19}, {99, 100}, {100, 100}, {1, 1}} {
		if got := percentile(v, tt.p); got != tt.want {
			t.Errorf("p%d = %d, want %d", tt.p, got, tt.want)
		}
	}
	if got := percentile([]int64{7}, 95); got != 7 {
		t.Errorf("p95 of one value = %d", got)
	}
}

func TestClipKeepsRunesWhole(t *testing.T) {
	t.Parallel()
	if got := clip("héllo wörld", 6); got != "héllo…" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("short", 10); got != "short" {
		t.Errorf("clip = %q", got)
	}
	if got := oneLine("first line\nsecond"); got != "first line …" {
		t.Errorf("oneLine = %q", got)
	}
}
