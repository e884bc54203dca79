package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/publish"
)

// Headers a replayed event carries.
const (
	// HeaderReplayOf holds the REMEDIATION_DLQ sequence(s) of the dead letter(s) replayed.
	HeaderReplayOf = dlq.HeaderReplayOf
	// HeaderReplayedBy names the operator who replayed it.
	HeaderReplayedBy = dlq.HeaderReplayedBy
)

const (
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
dead-letter sequence) and Remediator-Replayed-By (--as, default $USER) are added. The
Remediator-Principal header, if any, is kept: the replayed event asks with the same
principal. Dead letters of one event (one per failed flow) are replayed as one event.

A dead letter that holds only a reference to its event (too large to copy) is replayed from
REMEDIATION_EVENTS, with the headers stored there; if that stream no longer keeps the event
(streams.maxAge) the letter is skipped, saying so, and left in place.

Each replay is recorded on remediation.audit.dlq.replay (stream REMEDIATION_AUDIT): who, when,
how many and which sequences. The replayed letters are then deleted from REMEDIATION_DLQ, so
that it shows what is still broken: if the cause is not fixed, they come back as new dead
letters. It asks for confirmation unless --yes or --dry-run; --dry-run prints what would be
replayed (each event's subject, principal and headers) and changes nothing.

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
			var sel dlq.Selection
			var err error
			switch {
			case len(args) > 0 && (reason != "" || all || flow != ""):
				return usageError{errors.New("give sequences, or --reason/--all (with --flow), not both")}
			case len(args) > 0:
				if sel.Sequences, err = parseSeqs(args); err != nil {
					return err
				}
			case reason == "" && !all:
				return usageError{errors.New("say what to replay: sequences, --reason R or --all")}
			case reason != "" && all:
				return usageError{errors.New("--all replays every reason: give --reason or --all, not both")}
			default:
				if sel.Filter, err = parseFilter(reason, flow, "", ""); err != nil {
					return err
				}
			}
			if perSecond <= 0 {
				return usageError{fmt.Errorf("--rate %g: want a positive number of events per second", perSecond)}
			}
			sel.Describe = describeSelection(args, reason, flow, "", all)
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			tr, flush, err := startTracing(ctx)
			if err != nil {
				return err
			}
			defer flush()
			keys, keysErr := g.recordKeys() // needed from the first letter on
			s := dlq.New(b, dlq.Options{Server: redactURL(g.url()), Publisher: publish.New(b, tr.Provider), Keys: keys})
			plan, err := s.PlanReplay(ctx, sel, operator(as))
			if errors.Is(err, dlq.ErrNoRecordKeys) && keysErr != nil {
				return fmt.Errorf("cannot replay: a dead letter is replayed only once verified with the record keys: %w", keysErr)
			}
			if err != nil {
				return hint(err)
			}
			if dryRun {
				return g.printReplayPlan(plan, perSecond)
			}
			if plan.Letters == 0 {
				msg := "no dead letters match; nothing replayed"
				if len(plan.Skipped) > 0 {
					msg = fmt.Sprintf("nothing replayed: %s skipped (see --dry-run for why)", dlq.CountLetters(len(plan.Skipped)))
				}
				return g.report(dlq.ReplayResult{Selector: sel.Describe, Skipped: plan.Skipped}, msg)
			}
			for _, st := range []string{broker.StreamAudit, broker.StreamEvents} {
				if err := s.RequireStream(ctx, st); err != nil {
					return hint(err)
				}
			}
			q := fmt.Sprintf("Replay %s as %s to their original subjects (at most %g/s), then delete them from %s?",
				dlq.CountLetters(plan.Letters), countEvents(len(plan.Events)), perSecond, broker.StreamDLQ)
			if err := g.confirm(q, yes); err != nil {
				return err
			}
			bar := newProgress(g.stderr, plan.Letters)
			res, err := s.Replay(ctx, plan, dlq.ReplayOptions{Rate: perSecond, Progress: bar.add})
			bar.finish()
			if err != nil {
				if res.Replayed > 0 {
					fmt.Fprintf(g.stderr, "replayed %s (deleted %d) before the error\n", dlq.CountLetters(res.Replayed), res.Deleted)
				}
				return hint(err)
			}
			msg := fmt.Sprintf("replayed %s as %s and deleted them from %s (audit record %s on %s)",
				dlq.CountLetters(res.Replayed), countEvents(res.Events), broker.StreamDLQ, res.AuditID, dlq.AuditReplaySubject)
			if len(res.Skipped) > 0 {
				msg += fmt.Sprintf("\nskipped %s (left in place; see --dry-run for why)", dlq.CountLetters(len(res.Skipped)))
			}
			msg += "\nthe worker dispatches them within each flow's rate budget; follow with `remediator status tail` or `remediator stats`"
			return g.report(res, msg)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "replay dead letters with this `REASON`: "+reasonList())
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	cmd.Flags().StringVar(&flow, "flow", "", "only dead letters of this `FLOW` (with --reason or --all)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be replayed; publish, delete and record nothing")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().Float64Var(&perSecond, "rate", defaultReplayRate, "publish at most `N` events per second")
	cmd.Flags().StringVar(&as, "as", "", "operator `NAME` for the audit record and the "+HeaderReplayedBy+" header (default $USER)")
	return cmd
}

// replayPlanJSON is `dlq replay --dry-run --json`: the counts of a replay result, and each
// event that would be published.
type replayPlanJSON struct {
	dlq.ReplayResult
	Plan []plannedEventJSON `json:"plan"`
}

type plannedEventJSON struct {
	Sequences     []uint64            `json:"sequences"`
	Subject       string              `json:"subject"`
	Principal     string              `json:"principal,omitempty"`
	Headers       map[string][]string `json:"headers"`
	EventSequence uint64              `json:"eventSequence,omitempty"`
	Bytes         int                 `json:"bytes"`
}

func (g *globals) printReplayPlan(p *dlq.Plan, perSecond float64) error {
	if g.jsonOut {
		res := replayPlanJSON{
			ReplayResult: dlq.ReplayResult{DryRun: true, Selector: p.Selector, Replayed: p.Letters, Events: len(p.Events), Skipped: p.Skipped, Sequences: []uint64{}},
			Plan:         []plannedEventJSON{},
		}
		for _, e := range p.Events {
			res.Sequences = append(res.Sequences, e.Sequences()...)
			res.Plan = append(res.Plan, plannedEventJSON{Sequences: e.Sequences(), Subject: e.Subject, Principal: e.Principal,
				Headers: e.Header, EventSequence: e.EventSequence, Bytes: e.Size})
		}
		return writeJSON(g.stdout, res)
	}
	w := g.stdout
	fmt.Fprintf(w, "dry run: would replay %s as %s, at most %g/s, as %s; nothing is published, deleted or recorded\n",
		dlq.CountLetters(p.Letters), countEvents(len(p.Events)), perSecond, safe(p.Operator))
	if p.Letters > 0 {
		fmt.Fprintln(w, "   SEQ  TIME                       REASON             EVENT ID                               FLOW                    TO")
	}
	for _, e := range p.Events {
		for i, l := range e.Letters {
			to := l.Subject
			if i > 0 {
				to = fmt.Sprintf("(same event as %d: published once)", e.Letters[0].Sequence)
			}
			fmt.Fprintf(w, "%6d  %-25s  %-17s  %-37s  %-22s  %s\n", l.Sequence, l.Time.Local().Format(time.RFC3339),
				l.Reason, orDash(clip(safe(l.EventID), 37)), orDash(clip(safe(l.Flow), 22)), safe(to))
		}
	}
	if n := p.Unverified(); n > 0 {
		fmt.Fprintf(w, "REFUSED: %s do not verify (UNVERIFIED below): remediator did not write them; they are never replayed\n", dlq.CountLetters(n))
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "skipped %d: %s\n", s.Sequence, safe(s.Why))
	}
	for _, e := range p.Events {
		printPlannedEvent(w, e)
	}
	return nil
}

// printPlannedEvent shows what one replayed event would carry: who asks, and its headers.
func printPlannedEvent(w io.Writer, e dlq.PlannedEvent) {
	from := fmt.Sprintf("%d bytes copied in the dead letter", e.Size)
	if e.EventSequence != 0 {
		from = fmt.Sprintf("%d bytes loaded from %s sequence %d", e.Size, broker.StreamEvents, e.EventSequence)
	}
	fmt.Fprintf(w, "\nevent of dead letter %s to %s (%s):\n", dlq.JoinSeqs(e.Sequences(), 20), safe(e.Subject), from)
	principal := "none in the headers (the event's oktaUserId or defaultPrincipals decide)"
	if e.Principal != "" {
		principal = safe(e.Principal) + " (header Remediator-Principal)"
	}
	fmt.Fprintf(w, "  principal: %s\n", principal)
	fmt.Fprintln(w, "  headers (and a new Nats-Msg-Id replay:<seq>:<unix nanos>):")
	for _, k := range slices.Sorted(maps.Keys(e.Header)) {
		for _, v := range e.Header[k] {
			fmt.Fprintf(w, "    %s: %s\n", safe(k), safe(v))
		}
	}
}

func countEvents(n int) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
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
