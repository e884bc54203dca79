package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/status"
)

const ispm = "remediation.events.ispm"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newStore connects to a fresh JetStream with remediator's streams.
func newStore(t *testing.T) (*broker.Broker, *dlq.Store) {
	t.Helper()
	b := brokertest.Connect(t)
	return b, dlq.New(b, dlq.Options{Host: "test-host", Keys: testKeys})
}

// testKeys are the record keys the worker of these tests would hold.
var testKeys = func() *seal.Keyring {
	k, err := seal.NewKeyring(seal.Key{ID: "test1", Secret: []byte("dlq-test-record-key-0123456789abcdef")})
	if err != nil {
		panic(err)
	}
	return k
}()

// publishEvent stores an event in REMEDIATION_EVENTS, as an ingress would.
func publishEvent(t *testing.T, b *broker.Broker, payload string, header map[string][]string) uint64 {
	t.Helper()
	ack, err := b.Publish(testCtx(t), ispm, []byte(payload), broker.PublishOptions{Header: header})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// putLetter stores a dead letter in REMEDIATION_DLQ, as the worker would.
func putLetter(t *testing.T, b *broker.Broker, rec status.DeadLetter) uint64 {
	t.Helper()
	if rec.Reason == "" {
		rec.Reason = status.ReasonPermanentFailure
	}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	subject := rec.Reason.Subject()
	ack, err := b.Publish(testCtx(t), subject, data, broker.PublishOptions{Header: map[string][]string{seal.Header: {testKeys.SignRecord(subject, data)}}})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// forgeLetter stores a dead letter no record key signed, with a MAC header of mac ("": none).
func forgeLetter(t *testing.T, b *broker.Broker, rec status.DeadLetter, mac string) uint64 {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string][]string
	if mac != "" {
		h = map[string][]string{seal.Header: {mac}}
	}
	ack, err := b.Publish(testCtx(t), rec.Reason.Subject(), data, broker.PublishOptions{Header: h})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func copyLetter(subject, payload string) status.DeadLetter {
	return status.DeadLetter{Subject: subject, Payload: []byte(payload), Error: "HTTP 400"}
}

func refLetter(eventSeq uint64) status.DeadLetter {
	return status.DeadLetter{Reason: "too_large", Subject: ispm, EventSequence: eventSeq, Error: "event of 300000 bytes is over limits.maxEventBytes 262144"}
}

func auditRecords(t *testing.T, b *broker.Broker) []dlq.AuditRecord {
	t.Helper()
	var out []dlq.AuditRecord
	err := b.Scan(testCtx(t), broker.StreamAudit, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var a dlq.AuditRecord
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Errorf("audit record %d: %v", m.Sequence, err)
		}
		out = append(out, a)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dlqMessages(t *testing.T, b *broker.Broker) uint64 {
	t.Helper()
	info, err := b.StreamInfo(testCtx(t), broker.StreamDLQ, false)
	if err != nil {
		t.Fatal(err)
	}
	return info.Messages
}

func lastEvent(t *testing.T, b *broker.Broker) uint64 {
	t.Helper()
	info, err := b.StreamInfo(testCtx(t), broker.StreamEvents, false)
	if err != nil {
		t.Fatal(err)
	}
	return info.LastSeq
}

func deleteEvent(t *testing.T, b *broker.Broker, seq uint64) {
	t.Helper()
	if err := b.DeleteMessage(testCtx(t), broker.StreamEvents, seq); err != nil {
		t.Fatal(err)
	}
}

func groups(p *dlq.Plan) [][]uint64 {
	var out [][]uint64
	for _, e := range p.Events {
		out = append(out, e.Sequences())
	}
	return out
}

func TestPlanReplayGroupsLettersOfOneEvent(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	eventA := publishEvent(t, b, `{"eventId":"a"}`, nil)
	gone := publishEvent(t, b, `{"eventId":"c"}`, nil)
	deleteEvent(t, b, gone)

	seqs := []uint64{
		putLetter(t, b, copyLetter(ispm, `{"eventId":"a"}`)),
		putLetter(t, b, copyLetter(ispm, `{"eventId":"b"}`)),
		putLetter(t, b, copyLetter(ispm, `{"eventId":"a"}`)),                     // a's second flow
		putLetter(t, b, copyLetter("remediation.events.itp", `{"eventId":"a"}`)), // same bytes, other subject
		putLetter(t, b, copyLetter("remediation.dispatch.notify.high", `{"v":1}`)),
		putLetter(t, b, copyLetter(ispm, ``)),
		putLetter(t, b, refLetter(eventA)), // a's third flow, too large to copy
		putLetter(t, b, refLetter(gone)),
	}
	p, err := s.PlanReplay(testCtx(t), dlq.Selection{Filter: dlq.Filter{}, Describe: "--all"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]uint64{{seqs[0], seqs[2], seqs[6]}, {seqs[1]}, {seqs[3]}}; !slices.EqualFunc(groups(p), want, slices.Equal) {
		t.Errorf("groups = %v, want %v", groups(p), want)
	}
	var skipped []uint64
	for _, sk := range p.Skipped {
		skipped = append(skipped, sk.Sequence)
	}
	if p.Letters != 5 || !slices.Equal(skipped, []uint64{seqs[4], seqs[5], seqs[7]}) {
		t.Fatalf("plan: %d letters, skipped %+v", p.Letters, p.Skipped)
	}
	if why := p.Skipped[2].Why; !strings.Contains(why, fmt.Sprintf("event %d in REMEDIATION_EVENTS", gone)) || !strings.Contains(why, "gone") {
		t.Errorf("a letter whose event is gone is skipped because %q; want it to name the event and say it is gone", why)
	}
}

// A dead letter holding only a reference to its event is read from REMEDIATION_EVENTS; once
// retention has removed the event, the error says so.
func TestOriginalEventByReference(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	payload := `{"eventId":"big"}`
	evSeq := publishEvent(t, b, payload, map[string][]string{"Remediator-Principal": {"00u1admin"}})
	seq := putLetter(t, b, refLetter(evSeq))

	l, err := s.Get(testCtx(t), seq)
	if err != nil {
		t.Fatal(err)
	}
	if !l.ByReference() {
		t.Fatalf("letter %+v is not ByReference", l)
	}
	ev, err := s.OriginalEvent(testCtx(t), l)
	if err != nil {
		t.Fatal(err)
	}
	if string(ev.Payload) != payload || ev.Subject != ispm || ev.Sequence != evSeq || !slices.Equal(ev.Header["Remediator-Principal"], []string{"00u1admin"}) {
		t.Errorf("OriginalEvent = %+v; want the stored event %d with its headers", ev, evSeq)
	}

	deleteEvent(t, b, evSeq)
	_, err = s.OriginalEvent(testCtx(t), l)
	if !errors.Is(err, dlq.ErrEventGone) || !strings.Contains(err.Error(), fmt.Sprintf("event %d in REMEDIATION_EVENTS", evSeq)) {
		t.Errorf("OriginalEvent of a removed event: %v; want ErrEventGone naming the event", err)
	}
	if _, err := s.Get(testCtx(t), seq+100); !errors.Is(err, dlq.ErrLetterNotFound) {
		t.Errorf("Get of an absent sequence: %v, want ErrLetterNotFound", err)
	}
}

// A reference-only dead letter is replayed from REMEDIATION_EVENTS: the plan shows the
// principal and the headers that will be published, the replay publishes the original bytes,
// records the audit and deletes the letter.
func TestReplayByReference(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	payload := `{"eventId":"big","issueTitle":"Unused Admin Account"}`
	evSeq := publishEvent(t, b, payload, map[string][]string{
		"Remediator-Principal": {"00u1admin"}, "X-Api-Token": {"s3cret"}, "X-Source": {"ispm"},
	})
	seq := putLetter(t, b, refLetter(evSeq))

	p, err := s.PlanReplay(testCtx(t), dlq.Selection{Sequences: []uint64{seq}, Describe: fmt.Sprintf("sequences %d", seq)}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 {
		t.Fatalf("plan = %+v, want one event", p)
	}
	e := p.Events[0]
	if e.Principal != "00u1admin" || e.EventSequence != evSeq || e.Subject != ispm || e.Size != len(payload) {
		t.Errorf("planned event = %+v; want principal 00u1admin, loaded from event %d", e, evSeq)
	}
	for k, want := range map[string][]string{
		"Remediator-Principal": {"00u1admin"}, "X-Api-Token": {"[REDACTED]"}, "X-Source": {"ispm"},
		dlq.HeaderReplayOf: {fmt.Sprint(seq)}, dlq.HeaderReplayedBy: {"alice"},
	} {
		if got := e.Header[k]; !slices.Equal(got, want) {
			t.Errorf("planned header %s = %v, want %v", k, got, want)
		}
	}
	if _, ok := e.Header["Nats-Msg-Id"]; ok {
		t.Error("the plan shows the original Nats-Msg-Id, which a replay replaces")
	}

	res, err := s.Replay(testCtx(t), p, dlq.ReplayOptions{Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 1 || res.Events != 1 || res.Deleted != 1 || len(res.EventSequences) != 1 {
		t.Fatalf("result = %+v", res)
	}
	m, err := b.GetMessage(testCtx(t), broker.StreamEvents, res.EventSequences[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != payload || m.Subject != ispm || !slices.Equal(m.Header["Remediator-Principal"], []string{"00u1admin"}) ||
		!slices.Equal(m.Header["X-Api-Token"], []string{"s3cret"}) || !slices.Equal(m.Header[dlq.HeaderReplayedBy], []string{"alice"}) {
		t.Errorf("replayed event: %s %q %v; want the original bytes and headers, marked as replayed by alice", m.Subject, m.Data, m.Header)
	}
	if n := dlqMessages(t, b); n != 0 {
		t.Errorf("%d dead letters left after the replay", n)
	}
	a := auditRecords(t, b)
	if len(a) != 1 || a[0].Action != "dlq.replay" || a[0].User != "alice" || a[0].Host != "test-host" ||
		!slices.Equal(a[0].Sequences, []uint64{seq}) || !slices.Equal(a[0].EventSequences, res.EventSequences) || a[0].Rate != 1000 {
		t.Errorf("audit records = %+v", a)
	}
}

// reservations stands in for the replay's rate limiter: it records, at each reservation,
// how many events had been published, and can interrupt the replay at the n-th.
type reservations struct {
	t         *testing.T
	b         *broker.Broker
	first     uint64 // last REMEDIATION_EVENTS sequence before the replay
	published []uint64
	cancelAt  int
	cancel    context.CancelFunc
}

func (r *reservations) Wait(ctx context.Context) error {
	r.published = append(r.published, lastEvent(r.t, r.b)-r.first)
	if len(r.published) == r.cancelAt {
		r.cancel()
	}
	return ctx.Err()
}

// Every event a replay publishes waits for a reservation of the rate limiter first: after n
// reservations, at most n events were published. (The limiter's own timing is
// golang.org/x/time/rate's; the 1,000-letter run at 10/s against the worker is
// BenchmarkReplayOfAThousandDeadLetters in package cli.)
func TestReplayReservesBeforeEveryEvent(t *testing.T) {
	t.Parallel()
	const n = 50
	b, s := newStore(t)
	for i := range n {
		putLetter(t, b, copyLetter(ispm, fmt.Sprintf(`{"eventId":"e-%02d"}`, i)))
	}
	p, err := s.PlanReplay(testCtx(t), dlq.Selection{Describe: "--all"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	r := &reservations{t: t, b: b, first: lastEvent(t, b)}
	progressed := 0
	res, err := s.Replay(testCtx(t), p, dlq.ReplayOptions{Rate: 1e6, Limiter: r, Progress: func(n int) { progressed += n }})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i)
	}
	if !slices.Equal(r.published, want) {
		t.Errorf("events published at each reservation = %v; want 0, 1, …, %d (one reservation per event, before it)", r.published, n-1)
	}
	if res.Events != n || lastEvent(t, b)-r.first != n || progressed != n {
		t.Errorf("replayed %d events, %d published, progress %d; want %d", res.Events, lastEvent(t, b)-r.first, progressed, n)
	}
	if _, err := s.Replay(testCtx(t), p, dlq.ReplayOptions{}); err == nil {
		t.Error("Replay without a rate: no error")
	}
}

// Interrupted, a replay still records and deletes what it published, and leaves the rest.
func TestInterruptedReplayRecordsWhatItDid(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	var seqs []uint64
	for i := range 5 {
		seqs = append(seqs, putLetter(t, b, copyLetter(ispm, fmt.Sprintf(`{"eventId":"i-%d"}`, i))))
	}
	p, err := s.PlanReplay(testCtx(t), dlq.Selection{Describe: "--all"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	r := &reservations{t: t, b: b, first: lastEvent(t, b), cancelAt: 4, cancel: cancel}
	res, err := s.Replay(ctx, p, dlq.ReplayOptions{Rate: 1e6, Limiter: r})
	if err == nil || !strings.Contains(err.Error(), "replay interrupted") {
		t.Fatalf("Replay interrupted: %v, want 'replay interrupted'", err)
	}
	if res.Replayed != 3 || res.Deleted != 3 || !slices.Equal(res.Sequences, seqs[:3]) {
		t.Errorf("result = %+v; want the first 3 replayed and deleted", res)
	}
	if n := dlqMessages(t, b); n != 2 {
		t.Errorf("%d dead letters left, want 2", n)
	}
	if a := auditRecords(t, b); len(a) != 1 || !slices.Equal(a[0].Sequences, seqs[:3]) || a[0].Total != 5 {
		t.Errorf("audit records = %+v; want one recording the 3 replayed of 5", a)
	}
}

// Between plan and replay, a letter may go (replayed by someone else) and a referenced event
// may go (retention): the first is reported gone, the second skipped and left in place.
func TestReplayAfterThingsWentAway(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	kept := putLetter(t, b, copyLetter(ispm, `{"eventId":"kept"}`))
	taken := putLetter(t, b, copyLetter(ispm, `{"eventId":"taken"}`))
	evSeq := publishEvent(t, b, `{"eventId":"expiring"}`, nil)
	expiring := putLetter(t, b, refLetter(evSeq))
	p, err := s.PlanReplay(testCtx(t), dlq.Selection{Describe: "--all"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteMessage(testCtx(t), broker.StreamDLQ, taken); err != nil {
		t.Fatal(err)
	}
	deleteEvent(t, b, evSeq)

	res, err := s.Replay(testCtx(t), p, dlq.ReplayOptions{Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Sequences, []uint64{kept}) || !slices.Equal(res.Gone, []uint64{taken}) ||
		len(res.Skipped) != 1 || res.Skipped[0].Sequence != expiring || !strings.Contains(res.Skipped[0].Why, "gone") {
		t.Errorf("result = %+v; want %d replayed, %d gone, %d skipped", res, kept, taken, expiring)
	}
	if _, err := s.Get(testCtx(t), expiring); err != nil {
		t.Errorf("the skipped letter was not left in place: %v", err)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	a := putLetter(t, b, copyLetter(ispm, `{"eventId":"a"}`))
	c := putLetter(t, b, copyLetter(ispm, `{"eventId":"c"}`))
	res, err := s.Purge(testCtx(t), "sequences", []uint64{a, c, c + 10}, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if res.Purged != 2 || !slices.Equal(res.Sequences, []uint64{a, c, c + 10}) || res.AuditID == "" {
		t.Errorf("result = %+v; want 2 purged (the absent one is not an error)", res)
	}
	if n := dlqMessages(t, b); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	if recs := auditRecords(t, b); len(recs) != 1 || recs[0].Action != "dlq.purge" || recs[0].User != "bob" || recs[0].Count != 3 || recs[0].ID != res.AuditID {
		t.Errorf("audit records = %+v", recs)
	}
	if res, err := s.Purge(testCtx(t), "nothing", nil, "bob"); err != nil || res.Purged != 0 || len(auditRecords(t, b)) != 1 {
		t.Errorf("purge of nothing: %+v, %v; want no audit record", res, err)
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b, s := newStore(t)
	flowA := copyLetter(ispm, `{"eventId":"1"}`)
	flowA.Flow = "a"
	flowB := copyLetter(ispm, `{"eventId":"2"}`)
	flowB.Flow, flowB.Reason = "b", status.ReasonRetriesExhausted
	first := putLetter(t, b, flowA)
	second := putLetter(t, b, flowB)
	third := putLetter(t, b, flowA)

	seqsOf := func(f dlq.Filter, limit int) ([]uint64, bool) {
		t.Helper()
		ls, more, err := s.List(testCtx(t), f, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, l := range ls {
			out = append(out, l.Sequence)
		}
		return out, more
	}
	for _, tt := range []struct {
		name  string
		f     dlq.Filter
		limit int
		want  []uint64
		more  bool
	}{
		{"all", dlq.Filter{}, 0, []uint64{first, second, third}, false},
		{"flow", dlq.Filter{Flow: "a"}, 0, []uint64{first, third}, false},
		{"reason", dlq.Filter{Reason: status.ReasonRetriesExhausted}, 0, []uint64{second}, false},
		{"limit", dlq.Filter{}, 2, []uint64{first, second}, true},
		{"before", dlq.Filter{Before: time.Now().Add(-time.Hour)}, 0, nil, false},
		{"since", dlq.Filter{Since: time.Now().Add(time.Hour)}, 0, nil, false},
	} {
		if got, more := seqsOf(tt.f, tt.limit); !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("%s: %v (more %v), want %v (more %v)", tt.name, got, more, tt.want, tt.more)
		}
	}
}

func TestMissingStreamSaysWhatToDo(t *testing.T) {
	t.Parallel()
	srv := brokertest.Server(t)
	b, err := broker.Connect(testCtx(t), brokertest.ConnConfig(srv.ClientURL()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s := dlq.New(b, dlq.Options{Server: "nats://example:4222"})
	err = s.Scan(testCtx(t), dlq.Filter{}, func(dlq.Letter) bool { return true })
	var missing *dlq.MissingStreamError
	if !errors.As(err, &missing) || missing.Stream != broker.StreamDLQ || !errors.Is(err, broker.ErrStreamNotFound) ||
		!strings.Contains(err.Error(), "on nats://example:4222 — is remediator running against this NATS?") {
		t.Errorf("Scan without the stream: %v", err)
	}
	if err := s.RequireStream(testCtx(t), broker.StreamAudit); !strings.Contains(fmt.Sprint(err), "creates it when restarted") {
		t.Errorf("RequireStream(audit): %v", err)
	}
}
