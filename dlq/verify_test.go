package dlq_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/status"
)

// A dead letter remediator did not write — no MAC, another letter's MAC, a MAC of a retired
// key — is never replayed: the plan skips it saying so (counted in the preview), the replay
// publishes nothing for it, and it stays for inspection (issue 13). A genuine letter beside
// it replays.
func TestReplayRefusesUnverifiedLetters(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	forged := status.DeadLetter{Reason: status.ReasonUnauthorized, Subject: ispm, Error: "HTTP 400",
		Payload: []byte(`{"eventId":"forged","issueTitle":"Unused Admin Account"}`),
		Headers: map[string][]string{"Remediator-Principal": {"mallory"}}}
	genuine := copyLetter(ispm, `{"eventId":"genuine","issueTitle":"Unused Admin Account"}`)
	genuineSeq := putLetter(t, b, genuine)
	stolen, err := b.GetMessage(testCtx(t), broker.StreamDLQ, genuineSeq)
	if err != nil {
		t.Fatal(err)
	}
	retired, err := seal.NewKeyring(seal.Key{ID: "old", Secret: []byte("a-retired-record-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	forgedData, _ := json.Marshal(forged)
	forgedSeqs := []uint64{
		forgeLetter(t, b, forged, ""),
		forgeLetter(t, b, forged, seal.HeaderValue(stolen.Header)),
		forgeLetter(t, b, forged, retired.SignRecord(forged.Reason.Subject(), forgedData)),
	}

	p, err := s.PlanReplay(testCtx(t), dlq.Selection{Describe: "--all"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if p.Letters != 1 || len(p.Events) != 1 || len(p.Skipped) != 3 {
		t.Fatalf("plan: %d letters in %d events, %d skipped (%+v); want the genuine one planned and the 3 forged skipped", p.Letters, len(p.Events), len(p.Skipped), p.Skipped)
	}
	for _, sk := range p.Skipped {
		if !strings.Contains(sk.Why, "UNVERIFIED") {
			t.Errorf("skipped #%d: %q; want it to say the letter does not verify", sk.Sequence, sk.Why)
		}
	}
	if p.Events[0].Principal == "mallory" {
		t.Error("the forged principal is planned")
	}
	res, err := s.Replay(testCtx(t), p, dlq.ReplayOptions{Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 1 || len(res.Skipped) != 3 {
		t.Fatalf("replay: %+v", res)
	}
	for _, seq := range forgedSeqs {
		if _, err := s.Get(testCtx(t), seq); err != nil {
			t.Errorf("forged letter %d: %v; want it left in place", seq, err)
		}
	}
	events := 0
	_ = b.Scan(testCtx(t), broker.StreamEvents, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		events++
		if strings.Contains(string(m.Data), "forged") {
			t.Errorf("the forged event was published: %s %v", m.Data, m.Header)
		}
		return true
	})
	if events != 1 {
		t.Errorf("%d events published, want the genuine one", events)
	}

	// Without keys, nothing can be told apart: no plan at all.
	if _, err := dlq.New(b, dlq.Options{}).PlanReplay(testCtx(t), dlq.Selection{Describe: "--all"}, "alice"); !errors.Is(err, dlq.ErrNoRecordKeys) {
		t.Errorf("plan without keys: %v, want ErrNoRecordKeys", err)
	}
}
