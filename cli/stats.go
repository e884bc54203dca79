package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/status"
)

func newStatsCmd(g *globals) *cobra.Command {
	var window string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Backlog per stream and consumer, dead letters by reason, recent success rate and latency per flow",
		Long: `stats shows:

  - each stream's messages and bytes;
  - each durable consumer's backlog: pending (not yet delivered), ack pending (in a worker's
    hands), redelivered, and pull requests waiting. A growing pending count on
    remediator-dispatch-<flow> means the flow is slower than its input (its rate budget, a
    failing flow, an open breaker);
  - dead letters by reason (REMEDIATION_DLQ's subject counts);
  - per flow, over the last --window (default 1h) of REMEDIATION_STATUS: succeeded, failed,
    success rate = succeeded / (succeeded + failed), retrying records, the average attempt
    that succeeded, and the p50/p95 latency of succeeded calls (durationMs).

Time to remediate (an event's age when its flow succeeded) needs the event's own timestamp,
which status records do not carry; the worker exports it on /metrics as the
remediator_time_to_remediate_seconds histogram. The
per-flow part reads every status record of the window, so a long window on a busy stream
takes a while.`,
		Example: `  remediator stats
  remediator stats --window 24h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			win, err := parseDuration(window)
			if err != nil {
				return usageError{fmt.Errorf("--window: %w", err)}
			}
			ctx := cmd.Context()
			b, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer b.Close()
			s, err := g.collectStats(ctx, b, win)
			if err != nil {
				return err
			}
			if g.jsonOut {
				return writeJSON(g.stdout, s)
			}
			printStats(g.stdout, s)
			return nil
		},
	}
	cmd.Flags().StringVar(&window, "window", "1h", "how far back (`DURATION`) the per-flow figures look (e.g. 15m, 24h, 7d)")
	cmd.Flags().BoolVar(&g.jsonOut, "json", false, "print the figures as JSON")
	return cmd
}

type statsJSON struct {
	Streams     []streamStats   `json:"streams"`
	Consumers   []consumerStats `json:"consumers"`
	DeadLetters dlqStats        `json:"deadLetters"`
	Window      string          `json:"window"`
	Flows       []flowStats     `json:"flows"`
	// Rejected counts events refused at intake within the window (no flow was chosen).
	Rejected int `json:"rejected"`
	// Skipped counts valid events that ran no flow within the window (no route, the
	// catch-all or a log-only rule; unrouted: skip).
	Skipped int `json:"skipped"`
}

type streamStats struct {
	Name     string `json:"name"`
	Missing  bool   `json:"missing,omitempty"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
}

type consumerStats struct {
	Stream      string `json:"stream"`
	Name        string `json:"name"`
	Pending     uint64 `json:"pending"`
	AckPending  uint64 `json:"ackPending"`
	Redelivered uint64 `json:"redelivered"`
	Waiting     int    `json:"waiting"`
}

type dlqStats struct {
	Total    uint64            `json:"total"`
	ByReason map[string]uint64 `json:"byReason"`
}

type flowStats struct {
	Flow      string `json:"flow"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Retrying  int    `json:"retrying"`
	// SuccessRate is succeeded / (succeeded + failed); null without either.
	SuccessRate *float64 `json:"successRate"`
	// AvgAttempt is the mean attempt number of the succeeded records (1 = first try).
	AvgAttempt float64 `json:"avgAttempt,omitempty"`
	// CallP50MS and CallP95MS are the latency of succeeded calls (status durationMs); null
	// without any.
	CallP50MS *int64 `json:"callP50Ms"`
	CallP95MS *int64 `json:"callP95Ms"`

	latencies []int64
	attempts  int
}

// readerPrefix names the read-only consumers of Scan and Tail (other CLI invocations); they
// are not backlog.
const readerPrefix = "remediator-reader-"

func (g *globals) collectStats(ctx context.Context, b *broker.Broker, window time.Duration) (*statsJSON, error) {
	s := &statsJSON{Window: window.String(), Consumers: []consumerStats{}, Flows: []flowStats{},
		DeadLetters: dlqStats{ByReason: map[string]uint64{}}}
	for _, name := range []string{broker.StreamEvents, broker.StreamDispatch, broker.StreamStatus, broker.StreamDLQ, broker.StreamAudit} {
		info, err := b.StreamInfo(ctx, name, name == broker.StreamDLQ)
		if errors.Is(err, broker.ErrStreamNotFound) && name == broker.StreamAudit {
			s.Streams = append(s.Streams, streamStats{Name: name, Missing: true})
			continue
		}
		if err != nil {
			return nil, g.explain(err, name)
		}
		s.Streams = append(s.Streams, streamStats{Name: name, Messages: info.Messages, Bytes: info.Bytes})
		if name == broker.StreamDLQ {
			s.DeadLetters.Total = info.Messages
			for subj, n := range info.Subjects {
				s.DeadLetters.ByReason[strings.TrimPrefix(subj, status.DLQSubjectPrefix)] = n
			}
		}
		if info.Consumers == 0 {
			continue
		}
		cis, err := b.ConsumerInfos(ctx, name)
		if err != nil {
			return nil, g.explain(err, name)
		}
		for _, ci := range cis {
			if strings.HasPrefix(ci.Name, readerPrefix) {
				continue
			}
			s.Consumers = append(s.Consumers, consumerStats{Stream: ci.Stream, Name: ci.Name, Pending: ci.NumPending,
				AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting})
		}
	}

	flows := map[string]*flowStats{}
	err := b.Scan(ctx, broker.StreamStatus, status.SubjectPrefix+">", 0, time.Now().Add(-window), func(m *broker.StoredMessage) bool {
		var r status.Record
		if json.Unmarshal(m.Data, &r) != nil {
			return true
		}
		if r.Flow == "" {
			switch r.Outcome {
			case status.Rejected:
				s.Rejected++
			case status.Skipped:
				s.Skipped++
			}
			return true
		}
		f := flows[r.Flow]
		if f == nil {
			f = &flowStats{Flow: r.Flow}
			flows[r.Flow] = f
		}
		switch r.Outcome {
		case status.Succeeded:
			f.Succeeded++
			f.attempts += r.Attempt
			if r.HTTPStatus != 0 { // a call was made; durationMs 0 (omitted) is under a millisecond
				f.latencies = append(f.latencies, r.DurationMS)
			}
		case status.Failed, status.Rejected:
			f.Failed++
		case status.Retrying:
			f.Retrying++
		}
		return true
	})
	if err != nil {
		return nil, g.explain(err, broker.StreamStatus)
	}
	for _, name := range slices.Sorted(maps.Keys(flows)) {
		f := flows[name]
		if n := f.Succeeded + f.Failed; n > 0 {
			rate := float64(f.Succeeded) / float64(n)
			f.SuccessRate = &rate
		}
		if f.Succeeded > 0 {
			f.AvgAttempt = float64(f.attempts) / float64(f.Succeeded)
		}
		slices.Sort(f.latencies)
		if len(f.latencies) > 0 {
			p50, p95 := percentile(f.latencies, 50), percentile(f.latencies, 95)
			f.CallP50MS, f.CallP95MS = &p50, &p95
		}
		s.Flows = append(s.Flows, *f)
	}
	return s, nil
}

// percentile is the nearest-rank percentile of sorted values, which must not be empty.
func percentile(sorted []int64, p int) int64 {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 × n)
	return sorted[max(rank, 1)-1]
}

func printStats(w io.Writer, s *statsJSON) {
	fmt.Fprintln(w, "STREAM                  MESSAGES       BYTES")
	for _, st := range s.Streams {
		if st.Missing {
			fmt.Fprintf(w, "%-22s  missing: remediator creates it at start (restart it once)\n", st.Name)
			continue
		}
		fmt.Fprintf(w, "%-22s  %8d  %10s\n", st.Name, st.Messages, humanBytes(st.Bytes))
	}

	width := len("CONSUMER")
	for _, c := range s.Consumers {
		width = max(width, len(c.Name))
	}
	fmt.Fprintf(w, "\n%-*s  STREAM                  PENDING  ACK PENDING  REDELIVERED  WAITING\n", width, "CONSUMER")
	if len(s.Consumers) == 0 {
		fmt.Fprintln(w, "none: no worker has bound its consumers yet")
	}
	for _, c := range s.Consumers {
		fmt.Fprintf(w, "%-*s  %-22s  %7d  %11d  %11d  %7d\n", width, c.Name, c.Stream, c.Pending, c.AckPending, c.Redelivered, c.Waiting)
	}

	fmt.Fprintf(w, "\nDEAD LETTERS BY REASON (%d in %s)\n", s.DeadLetters.Total, broker.StreamDLQ)
	reasons := slices.SortedFunc(maps.Keys(s.DeadLetters.ByReason), func(a, b string) int {
		return cmp.Or(cmp.Compare(s.DeadLetters.ByReason[b], s.DeadLetters.ByReason[a]), strings.Compare(a, b))
	})
	if len(reasons) == 0 {
		fmt.Fprintln(w, "none")
	}
	for _, r := range reasons {
		fmt.Fprintf(w, "%-22s  %8d\n", r, s.DeadLetters.ByReason[r])
	}

	fmt.Fprintf(w, "\nFLOWS, LAST %s (from %s)\n", s.Window, broker.StreamStatus)
	if len(s.Flows) == 0 {
		fmt.Fprintln(w, "no invocations in the window")
	} else {
		fmt.Fprintln(w, "FLOW                    SUCCEEDED  FAILED  SUCCESS  RETRYING  AVG TRY  CALL P50  CALL P95")
	}
	for _, f := range s.Flows {
		rate, avg, p50, p95 := "-", "-", "-", "-"
		if f.SuccessRate != nil {
			rate = fmt.Sprintf("%.1f%%", *f.SuccessRate*100)
		}
		if f.Succeeded > 0 {
			avg = fmt.Sprintf("%.2f", f.AvgAttempt)
		}
		if f.CallP50MS != nil {
			p50, p95 = millis(*f.CallP50MS), millis(*f.CallP95MS)
		}
		fmt.Fprintf(w, "%-22s  %9d  %6d  %7s  %8d  %7s  %8s  %8s\n", clip(f.Flow, 22), f.Succeeded, f.Failed, rate, f.Retrying, avg, p50, p95)
	}
	if s.Rejected > 0 {
		fmt.Fprintf(w, "rejected at intake (invalid, unroutable or unauthorized): %d\n", s.Rejected)
	}
	if s.Skipped > 0 {
		fmt.Fprintf(w, "skipped at intake (valid, but no route or rule runs a flow): %d\n", s.Skipped)
	}
	fmt.Fprintln(w, "\nTime to remediate (event age when its flow succeeded): the remediator_time_to_remediate_seconds histogram on the worker's /metrics.")
}

func millis(ms int64) string {
	if ms == 0 {
		return "<1ms"
	}
	return fmt.Sprintf("%dms", ms)
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
