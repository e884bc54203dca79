package console

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/worker"
)

// priorities in the order the worker serves them.
var priorities = []event.Priority{event.PriorityHigh, event.PriorityNormal, event.PriorityLow}

// flowRow is one flow on the overview.
type flowRow struct {
	Flow                        string
	Succeeded, Retrying, Failed int
	// CallsPerSec is the average call rate over the window, against Limit (per second).
	CallsPerSec, Limit float64
	BudgetPct          int
	Breaker            string
	Paused, DryRun     bool
	PausedBy           string
	BlastMax           int
	BlastUsed          int
	BlastWindow        time.Duration
	Backlog            []backlog
}

type backlog struct {
	Priority string
	Waiting  uint64
}

type reasonCount struct {
	Reason string
	Count  uint64
}

type overviewData struct {
	Window      time.Duration
	At          time.Time
	Flows       []flowRow
	Intake      uint64 // events waiting for intake
	Rejected    int
	Skipped     int
	DeadLetters uint64
	ByReason    []reasonCount
	Chart       chart
	AllPaused   bool
	AllDryRun   bool
}

// snapshotCache shares one reading of the streams between viewers for a moment, so that many
// open overviews do not multiply the scans.
type snapshotCache struct {
	mu   sync.Mutex
	at   time.Time
	data *overviewData
	// The chart reads six windows of two streams: it is read again less often.
	chartAt time.Time
	chart   chart
}

const (
	snapshotFresh = 2 * time.Second
	chartFresh    = 10 * time.Second
)

func (c *Console) snapshot(ctx context.Context) (*overviewData, error) {
	c.snap.mu.Lock()
	defer c.snap.mu.Unlock()
	if c.snap.data != nil && time.Since(c.snap.at) < snapshotFresh {
		return c.snap.data, nil
	}
	d, err := c.readOverview(ctx)
	if err != nil {
		return nil, err
	}
	c.snap.data, c.snap.at = d, time.Now()
	return d, nil
}

// readOverview reads the figures; c.snap.mu is held.
func (c *Console) readOverview(ctx context.Context) (*overviewData, error) {
	win := c.cfg.Window
	st, err := c.cfg.Ops.Stats(ctx, win)
	if err != nil {
		return nil, err
	}
	switches, err := c.cfg.Ops.Switches(ctx)
	if err != nil {
		return nil, err
	}
	if time.Since(c.snap.chartAt) >= chartFresh {
		step := chartStep(win)
		buckets, err := c.cfg.Ops.Outcomes(ctx, chartSpan(win), step)
		if err != nil {
			return nil, err
		}
		c.snap.chart, c.snap.chartAt = newChart(buckets, step), time.Now()
	}
	d := &overviewData{Window: win, At: time.Now(), Rejected: st.Rejected, Skipped: st.Skipped,
		DeadLetters: st.DeadLetters.Total, Chart: c.snap.chart}
	on := map[string]ops.SwitchState{}
	for _, s := range switches {
		on[s.Kind+"."+s.Flow] = s
	}
	_, d.AllPaused = on[ops.Pause+"."+ops.AllFlows]
	_, d.AllDryRun = on[ops.DryRun+"."+ops.AllFlows]
	for _, cs := range st.Consumers {
		if cs.Name == worker.IntakeConsumer {
			d.Intake = cs.Pending + cs.AckPending
		}
	}
	for _, fs := range c.cfg.Flows.FlowStates(ctx) {
		f := st.Flow(fs.Flow)
		row := flowRow{Flow: fs.Flow, Succeeded: f.Succeeded, Retrying: f.Retrying, Failed: f.Failed,
			CallsPerSec: float64(f.Calls) / win.Seconds(), Limit: fs.RateLimit, Breaker: fs.Breaker,
			BlastMax: fs.BlastMax, BlastUsed: fs.BlastUsed, BlastWindow: fs.BlastWindow}
		if fs.RateLimit > 0 {
			row.BudgetPct = min(100, int(row.CallsPerSec/fs.RateLimit*100+0.5))
		}
		if p, ok := on[ops.Pause+"."+fs.Flow]; ok || d.AllPaused {
			row.Paused, row.PausedBy = true, p.By
		}
		_, dry := on[ops.DryRun+"."+fs.Flow]
		row.DryRun = dry || d.AllDryRun || fs.DryRun
		for _, p := range priorities {
			row.Backlog = append(row.Backlog, backlog{Priority: string(p), Waiting: st.Jobs(fs.Flow, string(p))})
		}
		d.Flows = append(d.Flows, row)
	}
	for _, r := range slices.Sorted(maps.Keys(st.DeadLetters.ByReason)) {
		d.ByReason = append(d.ByReason, reasonCount{Reason: r, Count: st.DeadLetters.ByReason[r]})
	}
	return d, nil
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	d, err := c.snapshot(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	c.render(w, r, "overview", page{Title: "Overview", Nav: "overview", Data: d})
}

// live is the overview's changing part alone, which the page's script swaps in place.
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	d, err := c.snapshot(r.Context())
	if err != nil {
		http.Error(w, strings.TrimSpace(err.Error()), http.StatusServiceUnavailable)
		return
	}
	c.renderTemplate(w, r, "overview", "live", page{Data: d})
}
