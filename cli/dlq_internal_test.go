package cli

import (
	"testing"
	"time"
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
