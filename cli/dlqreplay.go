package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/telemetry"
)

// Headers a replayed event carries.
const (
	// HeaderReplayOf holds the REMEDIATION_DLQ sequence(s) of the dead letter(s) replayed.
	HeaderReplayOf = "Remediator-Replay-Of"
	// HeaderReplayedBy names the operator who replayed it.
	HeaderReplayedBy = "Remediator-Replayed-By"
)

const (
	// eventSubjectPrefix is where events are published; only they can be replayed.
	eventSubjectPrefix = "remediation.events."
	// auditBatch is how many dead letters one audit record covers. A replay or purge works in
	// batches of this size: act, record, delete. An interruption leaves at most one batch
	// acted on but not yet deleted, and each audit record stays well below NATS's 1 MB limit.
	auditBatch = 1000
	// progressMin: replays of more letters than this draw a progress bar.
	progressMin = 20
	// defaultReplayRate is --rate's default, in events per second.
	defaultReplayRate = 200
)

func newDLQReplayCmd(g *globals) *cobra.Command {
	var reason, flow, as string
	var all, dryRun, yes bool
	var perSecond float64
	cmd := &cobra.Command{
		Use:   "replay (SEQ... | --reason R | --all)",
		Short: "Republish dead letters' original events once the cause is fixed",
		Long: `Replay republishes each selected dead letter's original event, byte for byte, to its original
subject (remediation.events.ispm or .itp) with a new de-duplication id
(Nats-Msg-Id replay:<dlq seq>:<unix nanos>). The event id stays in the payload, so each flow
gets the same idempotency key as before, and a flow that already succeeded for the event is
not invoked again. The original headers are kept except Nats-* and trace headers (the replay
starts a new trace, shown in each status record's traceId); Remediator-Replay-Of (the
dead-letter sequence) and Remediator-Replayed-By (--as, default $USER) are added. Dead letters
of one event (one per failed flow) are replayed as one event.

Each replay is recorded on remediation.audit.dlq.replay (stream REMEDIATION_AUDIT): who, when,
how many and which sequences. The replayed letters are then deleted from REMEDIATION_DLQ, so
that it shows what is still broken: if the cause is not fixed, they come back as new dead
letters. It asks for confirmation unless --yes or --dry-run; --dry-run prints what would be
replayed and changes nothing.

A replayed event goes through intake again and re-runs each of its flows that has not
succeeded yet; flows that succeeded are skipped. So a dead letter of another flow of the same
event, not selected, may be resolved too: it stays in the DLQ until replayed (a no-op then)
or purged.

Pacing. Replay never stampedes a flow: the worker dispatches replayed events like any other,
within each flow's rate budget (flows[].rateLimit, default 10/s, Okta's per-flow limit) and
concurrency; waiting jobs wait in REMEDIATION_DISPATCH, not in a worker. 1,000 dead letters of a
10/s flow take about 100 s to go through. Replay itself publishes at most --rate events per
second (default 200), so a large replay does not flood REMEDIATION_EVENTS either. Follow the
results with "remediator status tail" or "remediator stats".

Only events can be replayed: a dead letter whose original subject is not remediation.events.*
(an unreadable dispatch job) is skipped and left in place.`,
		Example: `  remediator dlq replay 42 43
  remediator dlq replay --reason permanent_failure --flow suspend-okta-account --dry-run
  remediator dlq replay --all --yes --rate 50`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var sel selector
			var err error
			switch {
			case len(args) > 0 && (reason != "" || all || flow != ""):
				return usageError{errors.New("give sequences, or --reason/--all (with --flow), not both")}
			case len(args) > 0:
				if sel.seqs, err = parseSeqs(args); err != nil {
					return err
				}
			case reason == "" && !all:
				return usageError{errors.New("say what to replay: sequences, --reason R or --all")}
			case reason != "" && all:
				return usageError{errors.New("--all replays every reason: give --reason or --all, not both")}
			default:
				if sel.filter, err = parseFilter(reason, flow, "", ""); err != nil {
					return err
				}
			}
			if perSecond <= 0 {
				return usageError{fmt.Errorf("--rate %g: want a positive number of events per second", perSecond)}
			}
			sel.describe = describeSelection(args, reason, flow, "", all)
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			letters, err := g.selectLetters(ctx, b, sel)
			if err != nil {
				return err
			}
			plan := planReplay(letters)
			if dryRun {
				return g.printReplayPlan(plan, sel.describe, perSecond)
			}
			res := replayResult{Selector: sel.describe, Skipped: plan.skipped}
			if plan.letters == 0 {
				msg := "no dead letters match; nothing replayed"
				if len(plan.skipped) > 0 {
					msg = fmt.Sprintf("nothing replayed: %s skipped (see --dry-run for why)", countLetters(len(plan.skipped)))
				}
				return g.report(res, msg)
			}
			for _, s := range []string{broker.StreamAudit, broker.StreamEvents} {
				if err := g.requireStream(ctx, b, s); err != nil {
					return err
				}
			}
			q := fmt.Sprintf("Replay %s as %s to their original subjects (at most %g/s), then delete them from %s?",
				countLetters(plan.letters), countEvents(len(plan.groups)), perSecond, broker.StreamDLQ)
			if err := g.confirm(q, yes); err != nil {
				return err
			}

			tr, err := telemetry.SetupTracing(ctx, Version)
			if err != nil {
				return err
			}
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = tr.Shutdown(sctx)
			}()
			r := &replayer{
				g: g, b: b, pub: publish.New(b, tr.Provider), user: operator(as),
				limiter: rate.NewLimiter(rate.Limit(perSecond), 1), res: &res,
			}
			err = r.run(ctx, plan, sel.describe, perSecond)
			if err != nil {
				if res.Replayed > 0 {
					fmt.Fprintf(g.stderr, "replayed %s (deleted %d) before the error\n", countLetters(res.Replayed), res.Deleted)
				}
				return err
			}
			msg := fmt.Sprintf("replayed %s as %s and deleted them from %s (audit record %s on %s)",
				countLetters(res.Replayed), countEvents(res.Events), broker.StreamDLQ, res.AuditID, auditReplay.subject())
			if len(res.Skipped) > 0 {
				msg += fmt.Sprintf("\nskipped %s (left in place; see --dry-run for why)", countLetters(len(res.Skipped)))
			}
			msg += "\nthe worker dispatches them within each flow's rate budget; follow with `remediator status tail` or `remediator stats`"
			return g.report(res, msg)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "replay dead letters with this reason: "+reasonList())
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	cmd.Flags().StringVar(&flow, "flow", "", "only dead letters of this flow (with --reason or --all)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be replayed; publish, delete and record nothing")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().Float64Var(&perSecond, "rate", defaultReplayRate, "publish at most this many events per second")
	cmd.Flags().StringVar(&as, "as", "", "operator name for the audit record and the "+HeaderReplayedBy+" header (default $USER)")
	return cmd
}

// letterRef is what a replay or purge keeps of a selected dead letter. A replay reads the
// payload again when it publishes it, so that a large replay does not hold every payload.
type letterRef struct {
	Seq     uint64
	Time    time.Time
	Reason  status.Reason
	EventID string
	Flow    string
	Subject string // the original subject
	// same is equal for dead letters of the same event (subject and payload).
	same [sha256.Size]byte
	// skip says why the letter cannot be replayed; empty when it can.
	skip string
}

func refOf(dl deadLetter) letterRef {
	r := letterRef{Seq: dl.Seq, Time: dl.Time, Reason: dl.Rec.Reason, EventID: dl.Rec.EventID, Flow: dl.Rec.Flow, Subject: dl.Rec.Subject}
	h := sha256.New()
	h.Write([]byte(r.Subject))
	h.Write([]byte{0})
	h.Write(dl.Rec.Payload)
	h.Sum(r.same[:0])
	switch {
	case dl.DecodeErr != nil:
		r.skip = "the dead-letter record is unreadable"
	case !strings.HasPrefix(r.Subject, eventSubjectPrefix):
		r.skip = fmt.Sprintf("its original subject %q is not an event subject (%s*): only events can be replayed", r.Subject, eventSubjectPrefix)
	case len(dl.Rec.Payload) == 0:
		r.skip = "it holds no payload"
	}
	return r
}

type skippedLetter struct {
	Sequence uint64 `json:"sequence"`
	Why      string `json:"why"`
}

// replayPlan groups the replayable letters by event, in stream order.
type replayPlan struct {
	groups  [][]letterRef // each is published once
	letters int           // in groups
	skipped []skippedLetter
}

func planReplay(refs []letterRef) replayPlan {
	var p replayPlan
	index := map[[sha256.Size]byte]int{}
	for _, r := range refs {
		if r.skip != "" {
			p.skipped = append(p.skipped, skippedLetter{r.Seq, r.skip})
			continue
		}
		if i, ok := index[r.same]; ok {
			p.groups[i] = append(p.groups[i], r)
		} else {
			index[r.same] = len(p.groups)
			p.groups = append(p.groups, []letterRef{r})
		}
		p.letters++
	}
	return p
}

// batches cuts the plan into parts of about auditBatch letters, never splitting an event.
func (p replayPlan) batches() [][][]letterRef {
	var out [][][]letterRef
	var cur [][]letterRef
	n := 0
	for _, grp := range p.groups {
		cur = append(cur, grp)
		if n += len(grp); n >= auditBatch {
			out, cur, n = append(out, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

type replayResult struct {
	DryRun   bool   `json:"dryRun"`
	Selector string `json:"selector"`
	// Replayed counts dead letters replayed, Events the events published for them.
	Replayed       int             `json:"replayed"`
	Events         int             `json:"events"`
	Deleted        int             `json:"deleted"`
	Sequences      []uint64        `json:"sequences"`
	EventSequences []uint64        `json:"eventSequences,omitempty"`
	Skipped        []skippedLetter `json:"skipped,omitempty"`
	// Gone are selected letters that disappeared before they were replayed (replayed or purged
	// by someone else, or expired).
	Gone    []uint64 `json:"gone,omitempty"`
	AuditID string   `json:"auditId,omitempty"`
}

func (g *globals) printReplayPlan(p replayPlan, selector string, perSecond float64) error {
	if g.jsonOut {
		res := replayResult{DryRun: true, Selector: selector, Replayed: p.letters, Events: len(p.groups), Skipped: p.skipped, Sequences: []uint64{}}
		for _, grp := range p.groups {
			res.Sequences = append(res.Sequences, seqsOf(grp)...)
		}
		return writeJSON(g.stdout, res)
	}
	fmt.Fprintf(g.stdout, "dry run: would replay %s as %s, at most %g/s; nothing is published, deleted or recorded\n",
		countLetters(p.letters), countEvents(len(p.groups)), perSecond)
	if p.letters > 0 {
		fmt.Fprintln(g.stdout, "   SEQ  TIME                       REASON             EVENT ID                               FLOW                    TO")
	}
	for _, grp := range p.groups {
		for i, l := range grp {
			to := l.Subject
			if i > 0 {
				to = fmt.Sprintf("(same event as %d: published once)", grp[0].Seq)
			}
			fmt.Fprintf(g.stdout, "%6d  %-25s  %-17s  %-37s  %-22s  %s\n", l.Seq, l.Time.Local().Format(time.RFC3339),
				l.Reason, orDash(clip(l.EventID, 37)), orDash(clip(l.Flow, 22)), to)
		}
	}
	for _, s := range p.skipped {
		fmt.Fprintf(g.stdout, "skipped %d: %s\n", s.Sequence, s.Why)
	}
	return nil
}

// replayer republishes the letters of a plan.
type replayer struct {
	g       *globals
	b       *broker.Broker
	pub     *publish.Publisher
	user    string
	limiter *rate.Limiter
	res     *replayResult
}

// run replays the plan batch by batch: publish each event (paced by the limiter), then write
// the batch's audit record, then delete its letters. Interrupted, it still records and
// deletes what it published.
func (r *replayer) run(ctx context.Context, plan replayPlan, selector string, perSecond float64) error {
	parts := plan.batches()
	a := newAudit(auditReplay, r.user, selector, plan.letters, len(parts))
	a.Rate = perSecond
	r.res.AuditID = a.ID
	bar := newProgress(r.g.stderr, plan.letters)
	defer bar.finish()
	for i, part := range parts {
		var done, events []uint64
		var stop error
		for _, grp := range part {
			if err := r.limiter.Wait(ctx); err != nil {
				stop = fmt.Errorf("replay interrupted: %w", context.Cause(ctx))
				break
			}
			evSeq, err := r.publish(ctx, grp)
			if errors.Is(err, errGone) {
				r.res.Gone = append(r.res.Gone, seqsOf(grp)...)
				bar.add(len(grp))
				continue
			}
			if err != nil {
				stop = err
				break
			}
			done = append(done, seqsOf(grp)...)
			events = append(events, evSeq)
			r.res.Replayed += len(grp)
			r.res.Events++
			r.res.Sequences = append(r.res.Sequences, seqsOf(grp)...)
			r.res.EventSequences = append(r.res.EventSequences, evSeq)
			bar.add(len(grp))
		}
		if len(done) > 0 {
			if err := r.g.recordAudit(ctx, r.b, a, i+1, done, events); err != nil {
				return fmt.Errorf("%w — %s were replayed but are neither recorded nor deleted (sequences %s); delete them with `remediator dlq purge`",
					err, countLetters(len(done)), joinSeqs(done, 20))
			}
			n, err := r.g.deleteLetters(ctx, r.b, done)
			r.res.Deleted += n
			if err != nil {
				return err
			}
		}
		if stop != nil {
			return stop
		}
	}
	return nil
}

var errGone = errors.New("dead letter gone")

// publish republishes the event of a group of dead letters and returns its sequence in
// REMEDIATION_EVENTS.
func (r *replayer) publish(ctx context.Context, grp []letterRef) (uint64, error) {
	var dl *deadLetter
	for _, l := range grp {
		m, err := r.b.GetMessage(ctx, broker.StreamDLQ, l.Seq)
		if errors.Is(err, broker.ErrMessageNotFound) {
			continue
		}
		if err != nil {
			return 0, r.g.explain(err, broker.StreamDLQ)
		}
		d := decodeDeadLetter(m)
		dl = &d
		break
	}
	if dl == nil {
		return 0, errGone
	}
	seqs := seqsOf(grp)
	res, err := r.pub.Publish(ctx, dl.Rec.Payload, publish.Options{
		Subject: dl.Rec.Subject,
		MsgID:   fmt.Sprintf("replay:%d:%d", seqs[0], time.Now().UnixNano()),
		Header:  replayHeaders(dl.Rec.Headers, seqs, r.user),
	})
	if err != nil {
		return 0, fmt.Errorf("replay dead letter %d to %s: %w", seqs[0], dl.Rec.Subject, r.g.explain(err, broker.StreamEvents))
	}
	return res.Sequence, nil
}

// replayHeaders keeps the original headers except JetStream's own (Nats-*: the old
// de-duplication id, expectations), trace context (the replay starts its own trace), values
// redacted in the dead letter, and an earlier replay's marks; then marks this replay.
func replayHeaders(orig map[string][]string, seqs []uint64, user string) map[string][]string {
	h := map[string][]string{}
	for k, v := range orig {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "nats-"), lk == "traceparent", lk == "tracestate", lk == "baggage",
			strings.EqualFold(k, HeaderReplayOf), strings.EqualFold(k, HeaderReplayedBy):
			continue
		case len(v) > 0 && !slices.ContainsFunc(v, func(s string) bool { return s != redacted }):
			continue // a secret the dead letter did not keep
		}
		h[k] = slices.Clone(v)
	}
	for _, s := range seqs {
		h[HeaderReplayOf] = append(h[HeaderReplayOf], strconv.FormatUint(s, 10))
	}
	h[HeaderReplayedBy] = []string{user}
	return h
}

// redacted is what the worker writes in a dead letter instead of a secret header's value.
const redacted = "[REDACTED]"

func countEvents(n int) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

func seqsOf(grp []letterRef) []uint64 {
	out := make([]uint64, len(grp))
	for i, l := range grp {
		out[i] = l.Seq
	}
	return out
}

// auditAction is the last part of an audit subject: remediation.audit.<action>.
type auditAction string

const (
	auditReplay auditAction = "dlq.replay"
	auditPurge  auditAction = "dlq.purge"
)

func (a auditAction) subject() string { return "remediation.audit." + string(a) }

// auditRecord is one JSON record on remediation.audit.<action>. A command acting on more than
// auditBatch dead letters writes one record per batch, all with the same ID.
type auditRecord struct {
	Action   string    `json:"action"` // dlq.replay or dlq.purge
	ID       string    `json:"id"`     // the same on every part of one command
	User     string    `json:"user"`   // --as, else $USER
	Host     string    `json:"host,omitempty"`
	At       time.Time `json:"at"`
	Selector string    `json:"selector"` // what the operator asked for
	Total    int       `json:"total"`    // dead letters the command acts on
	Part     int       `json:"part"`
	Parts    int       `json:"parts"`
	// Count and Sequences are the dead letters of this part (REMEDIATION_DLQ sequences).
	Count     int      `json:"count"`
	Sequences []uint64 `json:"sequences"`
	// EventSequences are where a replay's events were stored in REMEDIATION_EVENTS.
	EventSequences []uint64 `json:"eventSequences,omitempty"`
	// Rate is a replay's publish rate limit, per second.
	Rate float64 `json:"rate,omitempty"`
}

func newAudit(action auditAction, user, selector string, total, parts int) *auditRecord {
	host, _ := os.Hostname()
	now := time.Now().UTC()
	return &auditRecord{
		Action: string(action), ID: fmt.Sprintf("%s-%d", strings.TrimPrefix(string(action), "dlq."), now.UnixNano()),
		User: user, Host: host, Selector: selector, Total: total, Parts: parts,
	}
}

// recordAudit stores part of an audit record. It is written even when ctx is cancelled:
// what it records has happened.
func (g *globals) recordAudit(ctx context.Context, b *broker.Broker, a *auditRecord, part int, seqs, events []uint64) error {
	rec := *a
	rec.At, rec.Part, rec.Count, rec.Sequences, rec.EventSequences = time.Now().UTC(), part, len(seqs), seqs, events
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	subject := auditAction(a.Action).subject()
	if _, err := b.Publish(ctx, subject, data, broker.PublishOptions{MsgID: fmt.Sprintf("audit:%s:%d", a.ID, part)}); err != nil {
		return fmt.Errorf("record the audit on %s: %w", subject, g.explain(err, broker.StreamAudit))
	}
	return nil
}

// batches yields seqs in parts of auditBatch, numbered from 1.
func batches(seqs []uint64) iter.Seq2[int, []uint64] {
	return func(yield func(int, []uint64) bool) {
		part := 0
		for c := range slices.Chunk(seqs, auditBatch) {
			part++
			if !yield(part, c) {
				return
			}
		}
	}
}

// progress draws "[#######.......] 450/1000 replayed" on stderr: redrawn in place at most
// ten times a second on a terminal, else a line every five seconds. It is self-drawn: a bar
// this simple does not justify a dependency.
type progress struct {
	w           io.Writer
	tty         bool
	total, done int
	drawn       int
	last, start time.Time
}

// newProgress returns nil (draws nothing) for total <= progressMin.
func newProgress(w io.Writer, total int) *progress {
	if total <= progressMin {
		return nil
	}
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && isTerminal(f), total: total, drawn: -1, start: time.Now()}
}

func (p *progress) add(n int) {
	if p == nil {
		return
	}
	p.done += n
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if now := time.Now(); now.Sub(p.last) >= every || p.done == p.total {
		p.draw()
		p.last = now
	}
}

func (p *progress) draw() {
	const width = 30
	filled := width * p.done / p.total
	line := fmt.Sprintf("[%s%s] %d/%d replayed  %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		p.done, p.total, time.Since(p.start).Round(time.Second))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.drawn = p.done
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	if p.drawn != p.done {
		p.draw()
	}
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
