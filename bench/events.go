package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/publish"
)

// severities cycle through the events: Critical and High are dispatched as high priority,
// Medium as normal, Low as low (event.Event.Priority).
var severities = []string{"Critical", "High", "Medium", "Low"}

// priorityOf is the dispatch priority of severity.
func priorityOf(severity string) event.Priority {
	ev := event.Event{Issue: &event.Issue{Severity: severity}}
	return ev.Priority()
}

// flowName is the name of the i-th bench flow, and issueTitle the ISPM issue title its
// route takes: one route per flow, so that each event triggers exactly one flow.
func flowName(i int) string   { return fmt.Sprintf("bench-%03d", i) }
func issueTitle(i int) string { return fmt.Sprintf("Bench issue %03d", i) }

// workload is the events of one measurement: n ISPM on-demand issues of size bytes each,
// spread over flows flows (event i goes to flow i mod flows), severities interleaved in about
// equal shares independently of the flow.
type workload struct {
	prefix   string // event ids are prefix + index
	n        int
	flows    int
	size     int
	priority []event.Priority
}

func newWorkload(prefix string, n, flows, size int) *workload {
	w := &workload{prefix: prefix, n: n, flows: flows, size: size, priority: make([]event.Priority, n)}
	for i := range n {
		w.priority[i] = priorityOf(w.severity(i))
	}
	return w
}

func (w *workload) id(i int) string { return fmt.Sprintf("%s%07d", w.prefix, i) }
func (w *workload) severity(i int) string {
	// A multiplicative hash of the index (Knuth's): severities in about equal shares,
	// interleaved, and unrelated to the flow (i mod flows), whatever the number of flows.
	return severities[(uint32(i)*2654435761>>28)%uint32(len(severities))]
}
func (w *workload) flowIndex(i int) int { return i % w.flows }
func (w *workload) index(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, w.prefix)
	if !ok || len(rest) != 7 {
		return 0, false
	}
	i := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, i < w.n
}

// doc is event i: the shape of examples/ispm-unused-admin.json, its description padded so
// that the document is w.size bytes (or its natural size, ~900 bytes, when that is larger).
func (w *workload) doc(i int) ([]byte, error) {
	fields := map[string]string{
		"eventId":                   w.id(i),
		"eventTimestamp":            "2024-06-09T14:56:58Z",
		"eventSource":               "Okta ISPM",
		"eventType":                 "issue.onDemand",
		"issueId":                   fmt.Sprintf("Alert_bench_%d", i),
		"issueCategory":             "Least Privilege",
		"issueSeverity":             w.severity(i),
		"issueTitle":                issueTitle(w.flowIndex(i)),
		"issueShortDescription":     "Admin Accounts not logged in interactively for 91 days.",
		"issueDetectedAt":           "2024-06-18",
		"issueSuggestedRemediation": "Assess the essentiality of listed accounts; disable or suspend as necessary.",
		"issueRiskAndImpact":        "Unused, unmonitored accounts attract threat actors for gaining initial access or elevated permissions.",
		"issueLink":                 "https://ispm.example.com/issues/Alert_bench",
		"entityId":                  "Account_Q1SMRm3vfzomaZwevHIoL9kVhWU~",
		"entityIdInService":         "00ktw0utvzPBXxny16x7",
		"entityType":                "Account",
		"entityDisplayName":         "john.smith@example.com",
		"entitySourceProductName":   "Okta",
		"entitySourceProductTenant": "example.okta.com",
		"additionalDataTypes":       "Admin, Super admin",
		"additionalDataLastLogin":   "03/28/2024",
		"issueFullDescription":      "",
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	if pad := w.size - len(b); pad > 0 {
		fields["issueFullDescription"] = strings.Repeat("x", pad)
		b, err = json.Marshal(fields)
	}
	return b, err
}

// publisher hands the workload's events to remediator as a detector would (package publish:
// the event id as Nats-Msg-Id, trace context in the headers), recording when each went.
type publisher struct {
	w      *workload
	pub    *publish.Publisher
	sentAt []atomic.Int64 // unix nanoseconds, set just before the publish
}

func newPublisher(b *broker.Broker, w *workload) *publisher {
	return &publisher{w: w, pub: publish.New(b, noop.NewTracerProvider()), sentAt: make([]atomic.Int64, w.n)}
}

func (p *publisher) one(ctx context.Context, i int) error {
	doc, err := p.w.doc(i)
	if err != nil {
		return err
	}
	p.sentAt[i].Store(time.Now().UnixNano())
	_, err = p.pub.Publish(ctx, doc, publish.Options{Subject: event.SubjectISPM})
	return err
}

// run publishes every event: with rate 0, from workers goroutines as fast as they go; else
// one at a time at rate events/s on a fixed schedule (a late publish does not shift the
// ones after it). It returns when the last publish is acknowledged.
func (p *publisher) run(ctx context.Context, workers int, rate float64) error {
	if rate > 0 {
		start := time.Now()
		for i := range p.w.n {
			at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			if err := p.one(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= p.w.n || ctx.Err() != nil {
					return
				}
				if err := p.one(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// first is when the first event was sent.
func (p *publisher) first() time.Time {
	var first int64
	for i := range p.sentAt {
		if v := p.sentAt[i].Load(); v != 0 && (first == 0 || v < first) {
			first = v
		}
	}
	return time.Unix(0, first)
}
