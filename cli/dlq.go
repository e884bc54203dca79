package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/status"
)

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge dead letters (stream REMEDIATION_DLQ)",
		Long: `Every event that cannot succeed lands on remediation.dlq.<reason> (stream REMEDIATION_DLQ)
with its original subject, headers and bytes, the error, and every invocation attempt.

  dlq list     one line per dead letter
  dlq show     everything recorded for one, with the original payload
  dlq replay   republish the original events once the cause is fixed
  dlq purge    delete dead letters that will never be replayed

Replays and purges are recorded on remediation.audit.dlq.<action> (stream REMEDIATION_AUDIT).`,
	}
	cmd.PersistentFlags().BoolVar(&g.jsonOut, "json", false, "print JSON for scripts instead of tables")
	cmd.AddCommand(newDLQListCmd(g), newDLQShowCmd(g), newDLQReplayCmd(g), newDLQPurgeCmd(g))
	return cmd
}

// deadLetter is one message of REMEDIATION_DLQ, decoded.
type deadLetter struct {
	Seq     uint64
	Time    time.Time           // when REMEDIATION_DLQ stored it
	Subject string              // remediation.dlq.<reason>
	Header  map[string][]string // headers of the dead-letter message itself
	Rec     status.DeadLetter
	// DecodeErr is set when the message is not a readable dead-letter record; Rec.Reason is
	// then taken from the subject.
	DecodeErr error
}

func decodeDeadLetter(m *broker.StoredMessage) deadLetter {
	dl := deadLetter{Seq: m.Sequence, Time: m.Time, Subject: m.Subject, Header: m.Header}
	if err := json.Unmarshal(m.Data, &dl.Rec); err != nil {
		dl.DecodeErr = err
		dl.Rec = status.DeadLetter{Error: fmt.Sprintf("unreadable dead-letter record: %v", err)}
	}
	if dl.Rec.Reason == "" {
		dl.Rec.Reason = status.Reason(strings.TrimPrefix(m.Subject, status.DLQSubjectPrefix))
	}
	return dl
}

// dlqEntry is the JSON form of one `dlq list` line.
type dlqEntry struct {
	Sequence  uint64        `json:"sequence"`
	Time      time.Time     `json:"time"`
	Reason    status.Reason `json:"reason"`
	EventID   string        `json:"eventId,omitempty"`
	EventKind string        `json:"eventKind,omitempty"`
	Flow      string        `json:"flow,omitempty"`
	Error     string        `json:"error"`
	Attempts  int           `json:"attempts"`
	Subject   string        `json:"subject"`
	FirstSeen time.Time     `json:"firstSeen,omitzero"`
	LastSeen  time.Time     `json:"lastSeen,omitzero"`
	TraceID   string        `json:"traceId,omitempty"`
}

func (dl deadLetter) entry() dlqEntry {
	r := dl.Rec
	return dlqEntry{
		Sequence: dl.Seq, Time: dl.Time, Reason: r.Reason, EventID: r.EventID, EventKind: r.EventKind,
		Flow: r.Flow, Error: r.Error, Attempts: r.Attempts, Subject: r.Subject,
		FirstSeen: r.FirstSeen, LastSeen: r.LastSeen, TraceID: r.TraceID,
	}
}

const dlqHeader = "   SEQ  TIME                       REASON             EVENT ID                               FLOW                    ERROR"

func printDLQLine(w io.Writer, e dlqEntry) {
	fmt.Fprintf(w, "%6d  %-25s  %-17s  %-37s  %-22s  %s\n",
		e.Sequence, e.Time.Local().Format(time.RFC3339), e.Reason, orDash(clip(e.EventID, 37)),
		orDash(clip(e.Flow, 22)), clip(oneLine(e.Error), 80))
}

// dlqFilter selects dead letters. Zero fields match everything.
type dlqFilter struct {
	reason    status.Reason
	flow      string
	since     time.Time // stored at or after
	olderThan time.Time // stored before
}

func (f dlqFilter) subject() string {
	if f.reason != "" {
		return f.reason.Subject()
	}
	return status.DLQSubjectPrefix + ">"
}

func (f dlqFilter) match(dl deadLetter) bool {
	return (f.flow == "" || dl.Rec.Flow == f.flow) && (f.olderThan.IsZero() || dl.Time.Before(f.olderThan))
}

// scanDLQ calls fn for each dead letter f selects, oldest first, until fn returns false.
func (g *globals) scanDLQ(ctx context.Context, b *broker.Broker, f dlqFilter, fn func(deadLetter) bool) error {
	err := b.Scan(ctx, broker.StreamDLQ, f.subject(), 0, f.since, func(m *broker.StoredMessage) bool {
		dl := decodeDeadLetter(m)
		if !f.olderThan.IsZero() && !dl.Time.Before(f.olderThan) {
			return false // the stream is in time order: nothing older follows
		}
		if !f.match(dl) {
			return true
		}
		return fn(dl)
	})
	return g.explain(err, broker.StreamDLQ)
}

// getDeadLetter reads one dead letter, with an error that says what to do when it is not there.
func (g *globals) getDeadLetter(ctx context.Context, b *broker.Broker, seq uint64) (deadLetter, error) {
	m, err := b.GetMessage(ctx, broker.StreamDLQ, seq)
	if errors.Is(err, broker.ErrMessageNotFound) {
		return deadLetter{}, fmt.Errorf("no dead letter with sequence %d in %s (it may have been replayed, purged or expired) — list them with `remediator dlq list`",
			seq, broker.StreamDLQ)
	}
	if err != nil {
		return deadLetter{}, g.explain(err, broker.StreamDLQ)
	}
	return decodeDeadLetter(m), nil
}

// explain turns a missing stream into an error that says what to do.
func (g *globals) explain(err error, stream string) error {
	if !errors.Is(err, broker.ErrStreamNotFound) {
		return err
	}
	hint := "it creates its streams at start"
	if stream == broker.StreamAudit {
		hint = "it creates its streams at start; a remediator started before the audit stream existed creates it when restarted"
	}
	return fmt.Errorf("stream %s does not exist on %s — is remediator running against this NATS? %s (check --nats-url and --creds)",
		stream, redactURL(g.url()), hint)
}

func newDLQListCmd(g *globals) *cobra.Command {
	var reason, flow, since string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first: sequence, time, reason, event id, flow, error",
		Example: `  remediator dlq list
  remediator dlq list --reason permanent_failure --flow suspend-okta-account --since 2h
  remediator dlq list --since 2026-11-23T09:00:00Z --limit 50 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseFilter(reason, flow, since, "")
			if err != nil {
				return err
			}
			if limit < 0 {
				return usageError{fmt.Errorf("--limit %d: want 0 (no limit) or more", limit)}
			}
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			n := 0
			enc := json.NewEncoder(g.stdout)
			if !g.jsonOut {
				fmt.Fprintln(g.stdout, dlqHeader)
			}
			more := false
			err = g.scanDLQ(ctx, b, f, func(dl deadLetter) bool {
				if limit > 0 && n == limit {
					more = true
					return false
				}
				n++
				if g.jsonOut {
					_ = enc.Encode(dl.entry())
				} else {
					printDLQLine(g.stdout, dl.entry())
				}
				return true
			})
			if err != nil {
				return err
			}
			if !g.jsonOut {
				switch {
				case more:
					fmt.Fprintf(g.stderr, "showing the first %d; more match (raise --limit, or narrow with --since/--reason/--flow)\n", n)
				case n == 0:
					fmt.Fprintln(g.stderr, "no dead letters match")
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "only this reason: "+reasonList())
	cmd.Flags().StringVar(&flow, "flow", "", "only dead letters of this flow")
	cmd.Flags().StringVar(&since, "since", "", "only dead letters stored since this time (RFC 3339) or this long ago (2h, 30m, 7d)")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most N (0: all)")
	return cmd
}

func newDLQShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show SEQ",
		Short: "Show everything recorded for one dead letter: error, attempts, headers, original payload",
		Example: `  remediator dlq show 42
  remediator dlq show 42 --json | jq -r .record.payload | base64 -d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			dl, err := g.getDeadLetter(ctx, b, seqs[0])
			if err != nil {
				return err
			}
			if g.jsonOut {
				return writeJSON(g.stdout, dlqShowJSON{Sequence: dl.Seq, Time: dl.Time, Subject: dl.Subject, Header: dl.Header, Record: dl.Rec})
			}
			printDeadLetter(g.stdout, dl)
			return nil
		},
	}
}

// dlqShowJSON is `dlq show --json`: the stored record (payload base64, as on the stream) with
// where and when it was stored.
type dlqShowJSON struct {
	Sequence uint64              `json:"sequence"`
	Time     time.Time           `json:"time"`
	Subject  string              `json:"subject"`
	Header   map[string][]string `json:"headers,omitempty"`
	Record   status.DeadLetter   `json:"record"`
}

func printDeadLetter(w io.Writer, dl deadLetter) {
	r := dl.Rec
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-17s %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "Dead letter %d in %s\n", dl.Seq, broker.StreamDLQ)
	row("stored", dl.Time.Local().Format(time.RFC3339Nano)+" on "+dl.Subject)
	row("reason", string(r.Reason))
	row("error", r.Error)
	if dl.DecodeErr != nil {
		return
	}
	ev := r.EventID
	if r.EventKind != "" {
		ev = fmt.Sprintf("%s (%s)", orDash(r.EventID), r.EventKind)
	}
	row("event", ev)
	fl := r.Flow
	if r.Rule != "" {
		fl = fmt.Sprintf("%s (rule %s)", orDash(r.Flow), r.Rule)
	}
	row("flow", fl)
	row("idempotency key", r.IdempotencyKey)
	row("original subject", r.Subject)
	if r.EventSequence != 0 {
		row("event sequence", fmt.Sprintf("%d in %s", r.EventSequence, broker.StreamEvents))
	}
	row("attempts", strconv.Itoa(r.Attempts))
	if !r.FirstSeen.IsZero() {
		row("first seen", r.FirstSeen.Local().Format(time.RFC3339Nano))
	}
	if !r.LastSeen.IsZero() {
		row("last seen", r.LastSeen.Local().Format(time.RFC3339Nano))
	}
	row("trace id", r.TraceID)
	if r.Replays > 0 {
		row("replays", strconv.Itoa(r.Replays))
	}

	fmt.Fprintf(w, "\nAttempts (%d):\n", len(r.History))
	if len(r.History) == 0 {
		fmt.Fprintln(w, "  none: the event was refused before any call")
	} else {
		fmt.Fprintln(w, "  TRY  TIME                              HTTP  ERROR")
		for _, a := range r.History {
			http := "-"
			if a.HTTPStatus != 0 {
				http = strconv.Itoa(a.HTTPStatus)
			}
			e := a.Error
			if a.OutcomeUnknown {
				e += " (outcome unknown: the flow may have run)"
			}
			fmt.Fprintf(w, "  %3d  %-32s  %-4s  %s\n", a.Attempt, a.At.Local().Format(time.RFC3339Nano), http, orDash(e))
		}
	}
	printHeaders(w, "Original headers", r.Headers)
	printHeaders(w, "Dead-letter message headers", dl.Header)
	fmt.Fprintln(w)
	fmt.Fprintln(w, payloadText(r.Payload))
}

func printHeaders(w io.Writer, title string, h map[string][]string) {
	fmt.Fprintf(w, "\n%s:\n", title)
	if len(h) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
}

// payloadText shows the original bytes: indented when they are JSON, else quoted.
func payloadText(p []byte) string {
	var ind bytes.Buffer
	switch {
	case len(p) == 0:
		return "Payload: empty"
	case json.Indent(&ind, p, "  ", "  ") == nil:
		return fmt.Sprintf("Payload (JSON, %d bytes):\n  %s", len(p), ind.String())
	default:
		return fmt.Sprintf("Payload (not JSON, %d bytes, quoted):\n  %s", len(p), strconv.Quote(string(p)))
	}
}

// redactURL hides passwords and tokens in a comma-separated list of NATS URLs.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func newDLQPurgeCmd(g *globals) *cobra.Command {
	var reason, flow, olderThan, as string
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge (SEQ... | --reason R | --older-than D)",
		Short: "Delete dead letters for good (asks for confirmation unless --yes)",
		Long: `Purge deletes dead letters from REMEDIATION_DLQ: the given sequences, or those matching
--reason, --older-than and --flow (combined with AND). It cannot be undone.

It asks for confirmation on standard input unless --yes is given; without --yes it refuses
when standard input is not a terminal (a script, a pipe). Each purge is recorded on
remediation.audit.dlq.purge (stream REMEDIATION_AUDIT): who (--as, default $USER), when,
how many and which sequences, before the letters are deleted.`,
		Example: `  remediator dlq purge 42 43
  remediator dlq purge --reason invalid_json --older-than 7d --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var sel selector
			var err error
			if len(args) > 0 {
				if reason != "" || flow != "" || olderThan != "" {
					return usageError{errors.New("give sequences, or --reason/--older-than/--flow, not both")}
				}
				if sel.seqs, err = parseSeqs(args); err != nil {
					return err
				}
			} else {
				if reason == "" && olderThan == "" {
					return usageError{errors.New("say what to purge: sequences, --reason R or --older-than D (e.g. 30d)")}
				}
				if sel.filter, err = parseFilter(reason, flow, "", olderThan); err != nil {
					return err
				}
			}
			sel.describe = describeSelection(args, reason, flow, olderThan, false)
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			if err := g.requireStream(ctx, b, broker.StreamAudit); err != nil {
				return err
			}
			letters, err := g.selectLetters(ctx, b, sel)
			if err != nil {
				return err
			}
			if len(letters) == 0 {
				return g.report(purgeResult{Selector: sel.describe}, "no dead letters match; nothing purged")
			}
			q := fmt.Sprintf("Delete %s from %s for good? This cannot be undone.", countLetters(len(letters)), broker.StreamDLQ)
			if err := g.confirm(q, yes); err != nil {
				return err
			}
			seqs := make([]uint64, len(letters))
			for i, l := range letters {
				seqs[i] = l.Seq
			}
			a := newAudit(auditPurge, operator(as), sel.describe, len(seqs), (len(seqs)+auditBatch-1)/auditBatch)
			res := purgeResult{Selector: sel.describe, AuditID: a.ID}
			for part, batch := range batches(seqs) {
				if err := g.recordAudit(ctx, b, a, part, batch, nil); err != nil {
					return err
				}
				n, err := g.deleteLetters(ctx, b, batch)
				res.Purged += n
				res.Sequences = append(res.Sequences, batch...)
				if err != nil {
					return err
				}
			}
			return g.report(res, fmt.Sprintf("purged %s from %s (audit record %s on %s)",
				countLetters(res.Purged), broker.StreamDLQ, a.ID, auditPurge.subject()))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "purge dead letters with this reason: "+reasonList())
	cmd.Flags().StringVar(&olderThan, "older-than", "", "purge dead letters stored longer ago than this (e.g. 72h, 30d)")
	cmd.Flags().StringVar(&flow, "flow", "", "only dead letters of this flow (with --reason or --older-than)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&as, "as", "", "operator name for the audit record (default $USER)")
	return cmd
}

type purgeResult struct {
	Selector  string   `json:"selector"`
	Purged    int      `json:"purged"`
	Sequences []uint64 `json:"sequences"`
	AuditID   string   `json:"auditId,omitempty"`
}

// selector says which dead letters a replay or purge acts on: explicit sequences, or a filter.
type selector struct {
	seqs     []uint64
	filter   dlqFilter
	describe string // for the audit record and messages
}

// selectLetters reads the selected dead letters, oldest first. An explicit sequence that is not
// there is an error, so that a typo changes nothing. The scan stops at the last letter stored
// when it started, so letters written meanwhile (a replay failing again) are not included.
func (g *globals) selectLetters(ctx context.Context, b *broker.Broker, sel selector) ([]letterRef, error) {
	var out []letterRef
	if len(sel.seqs) > 0 {
		for _, seq := range sel.seqs {
			dl, err := g.getDeadLetter(ctx, b, seq)
			if err != nil {
				return nil, err
			}
			out = append(out, refOf(dl))
		}
		return out, nil
	}
	err := g.scanDLQ(ctx, b, sel.filter, func(dl deadLetter) bool {
		out = append(out, refOf(dl))
		return true
	})
	return out, err
}

// deleteLetters removes seqs from REMEDIATION_DLQ. A letter already gone (purged or replayed
// by someone else, or expired) is not an error. It returns how many it deleted.
func (g *globals) deleteLetters(ctx context.Context, b *broker.Broker, seqs []uint64) (int, error) {
	// Finish deleting what was decided even when interrupted: the audit record says so.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	n := 0
	var failed []uint64
	var last error
	for _, seq := range seqs {
		err := b.DeleteMessage(ctx, broker.StreamDLQ, seq)
		switch {
		case err == nil:
			n++
		case errors.Is(err, broker.ErrMessageNotFound):
		default:
			failed, last = append(failed, seq), err
		}
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("could not delete %s from %s (sequences %s): %w — delete them with `remediator dlq purge %s`",
			countLetters(len(failed)), broker.StreamDLQ, joinSeqs(failed, 20), last, joinSeqs(failed, 20))
	}
	return n, nil
}

// requireStream fails with what to do when stream does not exist.
func (g *globals) requireStream(ctx context.Context, b *broker.Broker, stream string) error {
	_, err := b.StreamInfo(ctx, stream, false)
	return g.explain(err, stream)
}

// confirm asks question on stderr and reads the answer from stdin, unless yes.
func (g *globals) confirm(question string, yes bool) error {
	if yes {
		return nil
	}
	if !g.stdinTerminal {
		return errors.New("refusing without confirmation: standard input is not a terminal — pass --yes to confirm in a script")
	}
	fmt.Fprintf(g.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(g.stdin).ReadString('\n')
	if err != nil && line == "" {
		return errors.New("no answer on standard input; nothing changed — pass --yes to confirm without a prompt")
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed; nothing changed")
}

// report prints v as JSON, or msg for people.
func (g *globals) report(v any, msg string) error {
	if g.jsonOut {
		return writeJSON(g.stdout, v)
	}
	fmt.Fprintln(g.stdout, msg)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether f is a character device, as a terminal is. (/dev/null is one
// too: a prompt on it reads end of file, which counts as no.)
func isTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// operator names who runs a replay or purge: --as, else $USER (or $USERNAME), else "unknown".
func operator(as string) string {
	for _, v := range []string{as, os.Getenv("USER"), os.Getenv("USERNAME")} {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return "unknown"
}

func parseFilter(reason, flow, since, olderThan string) (dlqFilter, error) {
	var f dlqFilter
	if reason != "" {
		r, err := status.ParseReason(reason)
		if err != nil {
			return f, usageError{fmt.Errorf("--reason: %w", err)}
		}
		f.reason = r
	}
	f.flow = flow
	if since != "" {
		t, err := parseSince(since, time.Now())
		if err != nil {
			return f, usageError{fmt.Errorf("--since: %w", err)}
		}
		f.since = t
	}
	if olderThan != "" {
		d, err := parseDuration(olderThan)
		if err != nil {
			return f, usageError{fmt.Errorf("--older-than: %w", err)}
		}
		f.olderThan = time.Now().Add(-d)
	}
	return f, nil
}

// parseSince reads an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-23T09:00:00Z) nor a duration (2h, 30m, 7d)", s)
	}
	return now.Add(-d), nil
}

// parseDuration is time.ParseDuration, plus whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 2h, 30m or 7d", s)
	}
	return d, nil
}

func parseSeqs(args []string) ([]uint64, error) {
	var out []uint64
	for _, a := range args {
		n, err := strconv.ParseUint(strings.TrimPrefix(a, "#"), 10, 64)
		if err != nil || n == 0 {
			return nil, usageError{fmt.Errorf("dead-letter sequence %q: want a positive number such as 42 (the SEQ column of `remediator dlq list`)", a)}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func describeSelection(args []string, reason, flow, olderThan string, all bool) string {
	var parts []string
	if len(args) > 0 {
		parts = append(parts, "sequences "+strings.Join(args, " "))
	}
	if all {
		parts = append(parts, "--all")
	}
	if reason != "" {
		parts = append(parts, "--reason "+reason)
	}
	if olderThan != "" {
		parts = append(parts, "--older-than "+olderThan)
	}
	if flow != "" {
		parts = append(parts, "--flow "+flow)
	}
	return strings.Join(parts, " ")
}

func reasonList() string {
	s := make([]string, len(status.Reasons))
	for i, r := range status.Reasons {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func countLetters(n int) string {
	if n == 1 {
		return "1 dead letter"
	}
	return fmt.Sprintf("%d dead letters", n)
}

// joinSeqs lists at most max sequences.
func joinSeqs(seqs []uint64, max int) string {
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps the first line of s.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
