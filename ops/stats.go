package ops

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

// Stats are the figures of `remediator stats` and the console's overview.
type Stats struct {
	Streams     []StreamStats   `json:"streams"`
	Consumers   []ConsumerStats `json:"consumers"`
	DeadLetters DLQStats        `json:"deadLetters"`
	Window      string          `json:"window"`
	Flows       []FlowStats     `json:"flows"`
	// Rejected counts events refused at intake within the window (no flow was chosen).
	Rejected int `json:"rejected"`
	// Skipped counts valid events that ran no flow within the window (no route, the
	// catch-all or a log-only rule; unrouted: skip).
	Skipped int `json:"skipped"`
	// Backlog counts the jobs waiting in REMEDIATION_DISPATCH (a work queue: a job leaves it
	// when its outcome is settled), per flow and priority, whatever consumers read them.
	Backlog []Backlog `json:"backlog"`
	// Switches are the brakes set in remediation_controls, each verified with the record
	// keys (Unverified: the workers ignore it).
	Switches []SwitchState `json:"switches"`
}

// Backlog is the number of jobs of one flow and priority not yet settled.
type Backlog struct {
	Flow     string `json:"flow"`
	Priority string `json:"priority"`
	Jobs     uint64 `json:"jobs"`
}

// StreamStats are one stream's size; Missing when the stream does not exist (yet).
type StreamStats struct {
	Name     string `json:"name"`
	Missing  bool   `json:"missing,omitempty"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
}

// ConsumerStats are one durable consumer's backlog.
type ConsumerStats struct {
	Stream      string `json:"stream"`
	Name        string `json:"name"`
	Pending     uint64 `json:"pending"`
	AckPending  uint64 `json:"ackPending"`
	Redelivered uint64 `json:"redelivered"`
	Waiting     int    `json:"waiting"`
}

// DLQStats count the dead letters, in all and by reason.
type DLQStats struct {
	Total    uint64            `json:"total"`
	ByReason map[string]uint64 `json:"byReason"`
}

// FlowStats are one flow's outcomes within the window.
type FlowStats struct {
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
	// Calls counts the invocations made within the window (records of a call: an HTTP status
	// or an outcome-unknown attempt), to set against the flow's rate limit.
	Calls int `json:"calls"`

	latencies []int64
	attempts  int
}

// ReaderPrefix names the read-only consumers of Scan and Tail (other CLI invocations and the
// console); they are not backlog.
const ReaderPrefix = "remediator-reader-"

// Stats reads the streams' sizes, the consumers' backlogs, the dead letters by reason and,
// per flow, the status records of the last window. The per-flow part reads every status
// record of the window, so a long window on a busy stream takes a while.
func (o *Ops) Stats(ctx context.Context, window time.Duration) (*Stats, error) {
	s := &Stats{Window: window.String(), Consumers: []ConsumerStats{}, Flows: []FlowStats{}, Backlog: []Backlog{},
		DeadLetters: DLQStats{ByReason: map[string]uint64{}}}
	for _, name := range []string{broker.StreamEvents, broker.StreamDispatch, broker.StreamStatus, broker.StreamDLQ, broker.StreamAudit} {
		info, err := o.b.StreamInfo(ctx, name, name == broker.StreamDLQ || name == broker.StreamDispatch)
		if errors.Is(err, broker.ErrStreamNotFound) && name == broker.StreamAudit {
			s.Streams = append(s.Streams, StreamStats{Name: name, Missing: true})
			continue
		}
		if err != nil {
			return nil, o.explain(err, name)
		}
		s.Streams = append(s.Streams, StreamStats{Name: name, Messages: info.Messages, Bytes: info.Bytes})
		if name == broker.StreamDLQ {
			s.DeadLetters.Total = info.Messages
			for subj, n := range info.Subjects {
				s.DeadLetters.ByReason[strings.TrimPrefix(subj, status.DLQSubjectPrefix)] = n
			}
		}
		if name == broker.StreamDispatch {
			for _, subj := range slices.Sorted(maps.Keys(info.Subjects)) {
				rest := strings.TrimPrefix(subj, worker.DispatchSubjectPrefix)
				if flow, prio, ok := strings.Cut(rest, "."); ok {
					s.Backlog = append(s.Backlog, Backlog{Flow: flow, Priority: prio, Jobs: info.Subjects[subj]})
				}
			}
		}
		if info.Consumers == 0 {
			continue
		}
		cis, err := o.b.ConsumerInfos(ctx, name)
		if err != nil {
			return nil, o.explain(err, name)
		}
		for _, ci := range cis {
			if strings.HasPrefix(ci.Name, ReaderPrefix) {
				continue
			}
			s.Consumers = append(s.Consumers, ConsumerStats{Stream: ci.Stream, Name: ci.Name, Pending: ci.NumPending,
				AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting})
		}
	}

	flows := map[string]*FlowStats{}
	err := o.b.Scan(ctx, broker.StreamStatus, status.SubjectPrefix+">", 0, time.Now().Add(-window), func(m *broker.StoredMessage) bool {
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
			f = &FlowStats{Flow: r.Flow}
			flows[r.Flow] = f
		}
		if r.HTTPStatus != 0 || r.OutcomeUnknown {
			f.Calls++
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
		return nil, o.explain(err, broker.StreamStatus)
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
			p50, p95 := Percentile(f.latencies, 50), Percentile(f.latencies, 95)
			f.CallP50MS, f.CallP95MS = &p50, &p95
		}
		s.Flows = append(s.Flows, *f)
	}
	sw, err := o.Switches(ctx)
	if err != nil {
		return nil, err
	}
	s.Switches = append([]SwitchState{}, sw...)
	return s, nil
}

// Flow returns the figures of flow, zero when it had no record in the window.
func (s *Stats) Flow(flow string) FlowStats {
	for _, f := range s.Flows {
		if f.Flow == flow {
			return f
		}
	}
	return FlowStats{Flow: flow}
}

// Jobs returns the backlog of flow at priority.
func (s *Stats) Jobs(flow, priority string) uint64 {
	for _, b := range s.Backlog {
		if b.Flow == flow && b.Priority == priority {
			return b.Jobs
		}
	}
	return 0
}

// Percentile is the nearest-rank percentile of sorted values, which must not be empty.
func Percentile(sorted []int64, p int) int64 {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 × n)
	return sorted[max(rank, 1)-1]
}
