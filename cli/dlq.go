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
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/status"
)

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, replay and purge dead letters (stream REMEDIATION_DLQ)",
		Long: `Every event that cannot succeed lands on remediation.dlq.<reason> (stream REMEDIATION_DLQ)
with its original subject, headers and bytes, the error, and every invocation attempt. A dead
letter of an event too large to copy holds only the event's sequence in REMEDIATION_EVENTS:
show and replay load the event from there (while the stream still keeps it, streams.maxAge).

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

// store connects and returns the dead-letter store over the connection; close the broker.
func (g *globals) store(ctx context.Context) (*broker.Broker, *dlq.Store, error) {
	b, err := g.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return b, dlq.New(b, dlq.Options{Server: redactURL(g.url())}), nil
}

// hint adds to a dead-letter error what the operator can do about it on the command line.
func hint(err error) error {
	var missing *dlq.MissingStreamError
	switch {
	case errors.As(err, &missing):
		return fmt.Errorf("%w (check --nats-url, --creds and the nats: section of --config)", err)
	case errors.Is(err, dlq.ErrLetterNotFound):
		return fmt.Errorf("%w — list them with `remediator dlq list`", err)
	}
	return err
}

const dlqHeader = "   SEQ  TIME                       REASON             EVENT ID                               FLOW                    ERROR"

func printDLQLine(w io.Writer, e dlq.Entry) {
	fmt.Fprintf(w, "%6d  %-25s  %-17s  %-37s  %-22s  %s\n",
		e.Sequence, e.Time.Local().Format(time.RFC3339), e.Reason, orDash(clip(safe(e.EventID), 37)),
		orDash(clip(safe(e.Flow), 22)), clip(safe(oneLine(e.Error)), 80))
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
			b, s, err := g.store(ctx)
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
			// Scan, not List: print as the letters come, holding none of them.
			err = s.Scan(ctx, f, func(l dlq.Letter) bool {
				if limit > 0 && n == limit {
					more = true
					return false
				}
				n++
				if g.jsonOut {
					_ = enc.Encode(l.Entry())
				} else {
					printDLQLine(g.stdout, l.Entry())
				}
				return true
			})
			if err != nil {
				return hint(err)
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
	cmd.Flags().StringVar(&reason, "reason", "", "only this `REASON`: "+reasonList())
	cmd.Flags().StringVar(&flow, "flow", "", "only dead letters of this `FLOW`")
	cmd.Flags().StringVar(&since, "since", "", "only dead letters stored since this `TIME` (RFC 3339) or this long ago (2h, 30m, 7d)")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most `N` (0: all)")
	return cmd
}

func newDLQShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show SEQ",
		Short: "Show everything recorded for one dead letter: error, attempts, headers, original payload",
		Long: `Show prints everything recorded for one dead letter: the error, every attempt, the original
headers and the original payload. A dead letter that holds only a reference to its event
(too large to copy) shows the event loaded from REMEDIATION_EVENTS, or says that the stream
no longer keeps it (streams.maxAge).`,
		Example: `  remediator dlq show 42
  remediator dlq show 42 --json | jq -r .record.payload | base64 -d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs, err := parseSeqs(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, s, err := g.store(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			l, err := s.Get(ctx, seqs[0])
			if err != nil {
				return hint(err)
			}
			var ev *dlq.Event
			var evErr error
			if l.ByReference() {
				e, err := s.OriginalEvent(ctx, l)
				if err != nil && !errors.Is(err, dlq.ErrEventGone) {
					return hint(err)
				}
				if err == nil {
					ev = &e
				}
				evErr = err
			}
			why := unverified(g.verifyKeys(), l.Subject, l.Data, l.Header)
			if g.jsonOut {
				out := dlqShowJSON{Sequence: l.Sequence, Time: l.Time, Subject: l.Subject, Header: l.Header, Record: l.Record, Unverified: why}
				if ev != nil {
					out.Event = &eventJSON{Stream: broker.StreamEvents, Sequence: ev.Sequence, Subject: ev.Subject, Header: ev.Header, Payload: ev.Payload}
				}
				if evErr != nil {
					out.EventError = evErr.Error()
				}
				return writeJSON(g.stdout, out)
			}
			if why != "" {
				fmt.Fprintln(g.stdout, safe(markUnverified("this dead letter will not be replayed", why)))
			}
			printDeadLetter(g.stdout, l, ev, evErr)
			return nil
		},
	}
}

// dlqShowJSON is `dlq show --json`: the stored record (payload base64, as on the stream) with
// where and when it was stored, and for a letter holding only a reference, the event loaded
// from REMEDIATION_EVENTS (or why it could not be).
type dlqShowJSON struct {
	Sequence   uint64              `json:"sequence"`
	Time       time.Time           `json:"time"`
	Subject    string              `json:"subject"`
	Header     map[string][]string `json:"headers,omitempty"`
	Record     status.DeadLetter   `json:"record"`
	Event      *eventJSON          `json:"event,omitempty"`
	EventError string              `json:"eventError,omitempty"`
	// Unverified says why the letter's MAC does not verify (remediator did not write it).
	Unverified string `json:"unverified,omitempty"`
}

type eventJSON struct {
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"sequence"`
	Subject  string              `json:"subject"`
	Header   map[string][]string `json:"headers,omitempty"`
	Payload  []byte              `json:"payload"`
}

func printDeadLetter(w io.Writer, l dlq.Letter, ev *dlq.Event, evErr error) {
	r := l.Record
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-17s %s\n", k, safe(v))
		}
	}
	fmt.Fprintf(w, "Dead letter %d in %s\n", l.Sequence, broker.StreamDLQ)
	row("stored", l.Time.Local().Format(time.RFC3339Nano)+" on "+l.Subject)
	row("reason", string(r.Reason))
	row("error", r.Error)
	if l.DecodeErr != nil {
		return
	}
	ev0 := r.EventID
	if r.EventKind != "" {
		ev0 = fmt.Sprintf("%s (%s)", orDash(r.EventID), r.EventKind)
	}
	row("event", ev0)
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
			fmt.Fprintf(w, "  %3d  %-32s  %-4s  %s\n", a.Attempt, a.At.Local().Format(time.RFC3339Nano), http, orDash(safe(e)))
		}
	}
	switch {
	case ev != nil:
		printHeaders(w, fmt.Sprintf("Original headers (event %d in %s)", ev.Sequence, broker.StreamEvents), dlq.RedactHeaders(ev.Header))
	case evErr != nil:
		// The letter holds only a reference; headers and payload went with the event.
	default:
		printHeaders(w, "Original headers", r.Headers)
	}
	printHeaders(w, "Dead-letter message headers", l.Header)
	fmt.Fprintln(w)
	switch {
	case ev != nil:
		fmt.Fprintf(w, "Loaded from %s sequence %d (the dead letter holds only a reference).\n", broker.StreamEvents, ev.Sequence)
		fmt.Fprintln(w, payloadText(ev.Payload))
	case evErr != nil:
		fmt.Fprintf(w, "Payload: not in the dead letter, which holds only a reference to event %d in %s, and that event is gone (past the stream's retention, streams.maxAge, or deleted): it can no longer be shown or replayed.\n",
			r.EventSequence, broker.StreamEvents)
	default:
		fmt.Fprintln(w, payloadText(r.Payload))
	}
}

func printHeaders(w io.Writer, title string, h map[string][]string) {
	fmt.Fprintf(w, "\n%s:\n", title)
	if len(h) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			fmt.Fprintf(w, "  %s: %s\n", safe(k), safe(v))
		}
	}
}

// payloadText shows the original bytes: indented when they are JSON, else quoted. Indented
// JSON escapes control characters inside strings, so it is safe on a terminal.
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
			var sel dlq.Selection
			var err error
			if len(args) > 0 {
				if reason != "" || flow != "" || olderThan != "" {
					return usageError{errors.New("give sequences, or --reason/--older-than/--flow, not both")}
				}
				if sel.Sequences, err = parseSeqs(args); err != nil {
					return err
				}
			} else {
				if reason == "" && olderThan == "" {
					return usageError{errors.New("say what to purge: sequences, --reason R or --older-than D (e.g. 30d)")}
				}
				if sel.Filter, err = parseFilter(reason, flow, "", olderThan); err != nil {
					return err
				}
			}
			sel.Describe = describeSelection(args, reason, flow, olderThan, false)
			ctx := cmd.Context()
			b, s, err := g.store(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			if err := s.RequireStream(ctx, broker.StreamAudit); err != nil {
				return hint(err)
			}
			refs, err := s.Select(ctx, sel)
			if err != nil {
				return hint(err)
			}
			if len(refs) == 0 {
				return g.report(dlq.PurgeResult{Selector: sel.Describe}, "no dead letters match; nothing purged")
			}
			q := fmt.Sprintf("Delete %s from %s for good? This cannot be undone.", dlq.CountLetters(len(refs)), broker.StreamDLQ)
			if err := g.confirm(q, yes); err != nil {
				return err
			}
			seqs := make([]uint64, len(refs))
			for i, r := range refs {
				seqs[i] = r.Sequence
			}
			res, err := s.Purge(ctx, sel.Describe, seqs, operator(as))
			if err != nil {
				return hint(err)
			}
			return g.report(res, fmt.Sprintf("purged %s from %s (audit record %s on %s)",
				dlq.CountLetters(res.Purged), broker.StreamDLQ, res.AuditID, dlq.AuditPurgeSubject))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "purge dead letters with this `REASON`: "+reasonList())
	cmd.Flags().StringVar(&olderThan, "older-than", "", "purge dead letters stored longer ago than this `DURATION` (e.g. 72h, 30d)")
	cmd.Flags().StringVar(&flow, "flow", "", "only dead letters of this `FLOW` (with --reason or --older-than)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&as, "as", "", "operator `NAME` for the audit record (default $USER)")
	return cmd
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

func parseFilter(reason, flow, since, olderThan string) (dlq.Filter, error) {
	var f dlq.Filter
	if reason != "" {
		r, err := status.ParseReason(reason)
		if err != nil {
			return f, usageError{fmt.Errorf("--reason: %w", err)}
		}
		f.Reason = r
	}
	f.Flow = flow
	if since != "" {
		t, err := parseSince(since, time.Now())
		if err != nil {
			return f, usageError{fmt.Errorf("--since: %w", err)}
		}
		f.Since = t
	}
	if olderThan != "" {
		d, err := parseDuration(olderThan)
		if err != nil {
			return f, usageError{fmt.Errorf("--older-than: %w", err)}
		}
		f.Before = time.Now().Add(-d)
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

// explain turns a missing stream into an error that says what to do.
func (g *globals) explain(err error, stream string) error {
	if !errors.Is(err, broker.ErrStreamNotFound) {
		return err
	}
	return hint(&dlq.MissingStreamError{Stream: stream, Server: redactURL(g.url()), Err: err})
}
