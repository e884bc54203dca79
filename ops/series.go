package ops

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/status"
)

// Bucket is one time slice of [Ops.Outcomes].
type Bucket struct {
	Start     time.Time `json:"start"`
	Succeeded int       `json:"succeeded"`
	Retrying  int       `json:"retrying"`
	Failed    int       `json:"failed"`
	// RemediateP50MS is the median time to remediate of the events that succeeded in the
	// slice: from when REMEDIATION_EVENTS stored the event to its succeeded status. Null when
	// no event that arrived within the window succeeded in the slice.
	RemediateP50MS *int64 `json:"remediateP50Ms"`
}

// Outcomes buckets the status records of the last window into slices of step: outcomes and
// time to remediate, for a chart. Events stored before the window have no time to remediate.
func (o *Ops) Outcomes(ctx context.Context, window, step time.Duration) ([]Bucket, error) {
	if step <= 0 || window < step {
		step = window
	}
	now := time.Now()
	from := now.Add(-window).Truncate(step)
	n := int(now.Sub(from)/step) + 1
	buckets := make([]Bucket, n)
	for i := range buckets {
		buckets[i].Start = from.Add(time.Duration(i) * step)
	}
	// When each event arrived, by its id, for time to remediate.
	arrived := map[string]time.Time{}
	err := o.b.Scan(ctx, broker.StreamEvents, "", 0, from, func(m *broker.StoredMessage) bool {
		if id := event.PeekID(m.Data); id != "" {
			if _, seen := arrived[id]; !seen {
				arrived[id] = m.Time
			}
		}
		return true
	})
	if err != nil {
		return nil, o.explain(err, broker.StreamEvents)
	}
	ttr := make([][]int64, n)
	err = o.b.Scan(ctx, broker.StreamStatus, status.SubjectPrefix+">", 0, from, func(m *broker.StoredMessage) bool {
		var r status.Record
		if json.Unmarshal(m.Data, &r) != nil || r.Flow == "" {
			return true
		}
		i := int(m.Time.Sub(from) / step)
		if i < 0 || i >= n {
			return true
		}
		switch r.Outcome {
		case status.Succeeded:
			buckets[i].Succeeded++
			if at, ok := arrived[r.EventID]; ok && !m.Time.Before(at) {
				ttr[i] = append(ttr[i], m.Time.Sub(at).Milliseconds())
			}
		case status.Retrying:
			buckets[i].Retrying++
		case status.Failed, status.Rejected:
			buckets[i].Failed++
		}
		return true
	})
	if err != nil {
		return nil, o.explain(err, broker.StreamStatus)
	}
	for i, d := range ttr {
		if len(d) > 0 {
			slices.Sort(d)
			p := Percentile(d, 50)
			buckets[i].RemediateP50MS = &p
		}
	}
	return buckets, nil
}
