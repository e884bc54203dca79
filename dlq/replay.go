package dlq

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/telemetry"
)

// Headers a replayed event carries.
const (
	// HeaderReplayOf holds the REMEDIATION_DLQ sequence(s) of the dead letter(s) replayed.
	HeaderReplayOf = "Remediator-Replay-Of"
	// HeaderReplayedBy names the operator who replayed it.
	HeaderReplayedBy = "Remediator-Replayed-By"
)

// AuditBatch is how many dead letters one audit record covers. A replay or purge works in
// batches of this size: act, record, delete. An interruption leaves at most one batch acted
// on but not yet deleted, and each audit record stays well below NATS's 1 MB limit.
const AuditBatch = 1000

// Skipped is a selected dead letter a replay leaves in place, and why.
type Skipped struct {
	Sequence uint64 `json:"sequence"`
	Why      string `json:"why"`
	// Unverified: the letter's MAC does not verify; remediator did not write it.
	Unverified bool `json:"unverified,omitempty"`
}

// Unverified counts the letters the plan refuses because they do not verify.
func (p *Plan) Unverified() int {
	n := 0
	for _, s := range p.Skipped {
		if s.Unverified {
			n++
		}
	}
	return n
}

// PlannedEvent is one event a replay would publish, for one or more dead letters (one per
// failed flow of the event).
type PlannedEvent struct {
	Letters []Ref
	// Subject is where the event would be published: its original subject.
	Subject string
	// Principal is the Remediator-Principal header the event would carry ("" when none: the
	// event's own oktaUserId or defaultPrincipals then decide who asks).
	Principal string
	// Header is what would be republished, Nats-Msg-Id aside (a new one is made at publish
	// time), with secret values shown as [REDACTED].
	Header map[string][]string
	// EventSequence is set when the event would be loaded from REMEDIATION_EVENTS (the dead
	// letters hold only a reference to it).
	EventSequence uint64
	// Size is the event's size in bytes.
	Size int
}

// Sequences are the REMEDIATION_DLQ sequences of e's letters.
func (e PlannedEvent) Sequences() []uint64 { return seqsOf(e.Letters) }

// Plan is what a replay would do: the events it would publish, in stream order, and the
// letters it would skip.
type Plan struct {
	Selector string
	Operator string
	Events   []PlannedEvent
	Letters  int // in Events
	Skipped  []Skipped
}

// PlanReplay reads the selected dead letters and groups the replayable ones by event (same
// subject and bytes): dead letters of one event are replayed as one event. A letter holding
// only a reference to its event is planned from REMEDIATION_EVENTS, and skipped, saying so,
// when the event is gone. operator is who would replay (Remediator-Replayed-By).
func (s *Store) PlanReplay(ctx context.Context, sel Selection, operator string) (*Plan, error) {
	p := &Plan{Selector: sel.Describe, Operator: operator}
	index := map[[sha256.Size]byte]int{}
	err := s.each(ctx, sel, func(l Letter) error {
		if s.keys == nil { // checked at the first letter: a missing stream or letter is said first
			return ErrNoRecordKeys
		}
		if err := l.Verify(s.keys); err != nil { // first: a forged letter is named as such
			p.Skipped = append(p.Skipped, Skipped{Sequence: l.Sequence, Why: unverifiedWhy(err), Unverified: true})
			return nil
		}
		if why := notReplayable(l); why != "" {
			p.Skipped = append(p.Skipped, Skipped{Sequence: l.Sequence, Why: why})
			return nil
		}
		ev, err := s.OriginalEvent(ctx, l)
		if errors.Is(err, ErrEventGone) {
			p.Skipped = append(p.Skipped, Skipped{Sequence: l.Sequence, Why: fmt.Sprintf("it holds only a reference to event %d in %s, and that event is gone (past the stream's retention, streams.maxAge, or deleted)",
				l.Record.EventSequence, broker.StreamEvents)})
			return nil
		}
		if err != nil {
			return err
		}
		p.Letters++
		k := eventKey(ev)
		if i, ok := index[k]; ok {
			p.Events[i].Letters = append(p.Events[i].Letters, refOf(l))
			return nil
		}
		index[k] = len(p.Events)
		p.Events = append(p.Events, PlannedEvent{
			Letters: []Ref{refOf(l)}, Subject: ev.Subject, Header: ev.Header,
			EventSequence: ev.Sequence, Size: len(ev.Payload),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range p.Events {
		e := &p.Events[i]
		e.Header = RedactHeaders(ReplayHeaders(e.Header, e.Sequences(), operator))
		e.Principal = strings.Join(e.Header[policy.HeaderPrincipal], ", ")
	}
	return p, nil
}

// batches cuts the plan into parts of about AuditBatch letters, never splitting an event.
func (p *Plan) batches() [][]PlannedEvent {
	var out [][]PlannedEvent
	var cur []PlannedEvent
	n := 0
	for _, e := range p.Events {
		cur = append(cur, e)
		if n += len(e.Letters); n >= AuditBatch {
			out, cur, n = append(out, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Waiter paces a replay: Wait blocks until the next event may be published. *rate.Limiter
// implements it.
type Waiter interface {
	Wait(ctx context.Context) error
}

var _ Waiter = (*rate.Limiter)(nil)

// ReplayOptions adjust a replay.
type ReplayOptions struct {
	// Rate is the most events published per second. Required (> 0); recorded in the audit.
	Rate float64
	// Limiter paces publishing. Default: a limiter of Rate per second with a burst of 1.
	Limiter Waiter
	// Progress, if set, is called after each event with the number of dead letters it
	// accounted for (replayed, or gone meanwhile).
	Progress func(letters int)
}

// ReplayResult says what a replay did (or, as a dry run, would do).
type ReplayResult struct {
	DryRun   bool   `json:"dryRun"`
	Selector string `json:"selector"`
	// Replayed counts dead letters replayed, Events the events published for them.
	Replayed       int       `json:"replayed"`
	Events         int       `json:"events"`
	Deleted        int       `json:"deleted"`
	Sequences      []uint64  `json:"sequences"`
	EventSequences []uint64  `json:"eventSequences,omitempty"`
	Skipped        []Skipped `json:"skipped,omitempty"`
	// Gone are selected letters that disappeared before they were replayed (replayed or purged
	// by someone else, or expired).
	Gone    []uint64 `json:"gone,omitempty"`
	AuditID string   `json:"auditId,omitempty"`
}

// Replay republishes the plan's events batch by batch: publish each event (paced), then write
// the batch's audit record on remediation.audit.dlq.replay, then delete its letters from
// REMEDIATION_DLQ. Interrupted, it still records and deletes what it published. The result
// counts what was done, also when an error stops the replay. The caller checks beforehand that
// REMEDIATION_AUDIT and REMEDIATION_EVENTS exist ([Store.RequireStream]) if it wants to fail
// before anything is published.
func (s *Store) Replay(ctx context.Context, p *Plan, opts ReplayOptions) (ReplayResult, error) {
	res := ReplayResult{Selector: p.Selector, Skipped: slices.Clone(p.Skipped)}
	if opts.Rate <= 0 {
		return res, fmt.Errorf("replay rate %g: want a positive number of events per second", opts.Rate)
	}
	if opts.Limiter == nil {
		opts.Limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(int) {}
	}
	parts := p.batches()
	a := s.newAudit(auditReplay, p.Operator, p.Selector, p.Letters, len(parts))
	a.Rate = opts.Rate
	res.AuditID = a.ID
	for i, part := range parts {
		var done, events []uint64
		var stop error
		for _, e := range part {
			if err := opts.Limiter.Wait(ctx); err != nil {
				if cause := context.Cause(ctx); cause != nil {
					err = cause // rather than the limiter's "would exceed context deadline"
				}
				stop = fmt.Errorf("replay interrupted: %w", err)
				break
			}
			seqs := e.Sequences()
			evSeq, err := s.publish(ctx, e, p.Operator)
			var skip *skipError
			if errors.Is(err, errGone) {
				res.Gone = append(res.Gone, seqs...)
				progress(len(seqs))
				continue
			}
			if errors.As(err, &skip) {
				for _, q := range seqs {
					res.Skipped = append(res.Skipped, Skipped{Sequence: q, Why: skip.why, Unverified: skip.unverified})
				}
				progress(len(seqs))
				continue
			}
			if err != nil {
				stop = err
				break
			}
			done = append(done, seqs...)
			events = append(events, evSeq)
			res.Replayed += len(seqs)
			res.Events++
			res.Sequences = append(res.Sequences, seqs...)
			res.EventSequences = append(res.EventSequences, evSeq)
			progress(len(seqs))
		}
		if len(done) > 0 {
			if err := s.recordAudit(ctx, a, i+1, done, events); err != nil {
				return res, fmt.Errorf("%w — %s were replayed but are neither recorded nor deleted (sequences %s); delete them with `remediator dlq purge`",
					err, CountLetters(len(done)), JoinSeqs(done, 20))
			}
			n, err := s.deleteLetters(ctx, done)
			res.Deleted += n
			if err != nil {
				return res, err
			}
		}
		if stop != nil {
			return res, stop
		}
	}
	return res, nil
}

var errGone = errors.New("dead letter gone")

// skipError: the event of a planned group cannot be published after all (its event went
// from REMEDIATION_EVENTS between plan and replay); its letters stay in place.
type skipError struct {
	why        string
	unverified bool
}

func (e *skipError) Error() string { return e.why }

// publish republishes the event of a planned group and returns its sequence in
// REMEDIATION_EVENTS. The letters are read again: one that is gone was replayed or purged
// by someone else since the plan.
func (s *Store) publish(ctx context.Context, e PlannedEvent, operator string) (uint64, error) {
	var l *Letter
	for _, r := range e.Letters {
		got, err := s.Get(ctx, r.Sequence)
		if errors.Is(err, ErrLetterNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if err := got.Verify(s.keys); err != nil { // checked again: this is what is published
			return 0, &skipError{why: unverifiedWhy(err), unverified: true}
		}
		l = &got
		break
	}
	if l == nil {
		return 0, errGone
	}
	ev, err := s.OriginalEvent(ctx, *l)
	if errors.Is(err, ErrEventGone) {
		return 0, &skipError{why: err.Error()}
	}
	if err != nil {
		return 0, err
	}
	seqs := e.Sequences()
	res, err := s.pub.Publish(ctx, ev.Payload, publish.Options{
		Subject: ev.Subject,
		MsgID:   fmt.Sprintf("replay:%d:%d", seqs[0], time.Now().UnixNano()),
		Header:  ReplayHeaders(ev.Header, seqs, operator),
	})
	if err != nil {
		return 0, fmt.Errorf("replay dead letter %d to %s: %w", seqs[0], ev.Subject, s.explain(err, broker.StreamEvents))
	}
	return res.Sequence, nil
}

// unverifiedWhy is the skip reason of a dead letter whose MAC does not verify.
func unverifiedWhy(err error) string {
	return fmt.Sprintf("UNVERIFIED: its MAC does not verify (%v), so remediator did not write it (forged on NATS, altered, or signed with a retired record key); it is not replayed — inspect it with `remediator dlq show` and purge it", err)
}

// ReplayHeaders returns the headers a replay of an event with headers orig publishes: the
// original ones except JetStream's own (Nats-*: the old de-duplication id, expectations),
// trace context (the replay starts its own trace), values redacted in the dead letter, and an
// earlier replay's marks; then this replay's marks (seqs, operator).
func ReplayHeaders(orig map[string][]string, seqs []uint64, operator string) map[string][]string {
	h := map[string][]string{}
	for k, v := range orig {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "nats-"), lk == "traceparent", lk == "tracestate", lk == "baggage",
			strings.EqualFold(k, HeaderReplayOf), strings.EqualFold(k, HeaderReplayedBy):
			continue
		case len(v) > 0 && !slices.ContainsFunc(v, func(s string) bool { return s != telemetry.Redacted }):
			continue // a secret the dead letter did not keep
		}
		h[k] = slices.Clone(v)
	}
	for _, s := range seqs {
		h[HeaderReplayOf] = append(h[HeaderReplayOf], strconv.FormatUint(s, 10))
	}
	h[HeaderReplayedBy] = []string{operator}
	return h
}

// RedactHeaders returns a copy of h with the values of headers whose names look secret
// replaced by [REDACTED], for showing them.
func RedactHeaders(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if telemetry.SecretKey(k) {
			v = []string{telemetry.Redacted}
		}
		out[k] = slices.Clone(v)
	}
	return out
}

func seqsOf(refs []Ref) []uint64 {
	out := make([]uint64, len(refs))
	for i, r := range refs {
		out[i] = r.Sequence
	}
	return out
}

// CountLetters says "1 dead letter" or "N dead letters".
func CountLetters(n int) string {
	if n == 1 {
		return "1 dead letter"
	}
	return fmt.Sprintf("%d dead letters", n)
}

// JoinSeqs lists at most max sequences, space-separated.
func JoinSeqs(seqs []uint64, max int) string {
	var s []string
	for i, q := range seqs {
		if i == max {
			s = append(s, fmt.Sprintf("… (%d more)", len(seqs)-max))
			break
		}
		s = append(s, strconv.FormatUint(q, 10))
	}
	return strings.Join(s, " ")
}
