package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/status"
)

// Backlog is remediator with Jobs dispatch jobs waiting: every flow paused by an operator's
// switch, the events published, validated and routed, and their jobs stored in
// REMEDIATION_DISPATCH. It answers what a burst that the flows cannot take yet costs: the
// stored size of a job beside its event's, and the memory of the process that holds the
// backlog (the jobs wait in JetStream, not in memory).
type Backlog struct {
	Name  string `json:"name"`
	Flows int    `json:"flows"`
	// Jobs is how many jobs were waiting when the figures were taken (every event published,
	// less any dispatched before the pause took effect, which is counted in Dispatched).
	Jobs       int `json:"jobs"`
	Dispatched int `json:"dispatched"`
	// IntakePerSecond is events published → jobs stored, over the span from the first publish
	// to the last job stored.
	IntakePerSecond float64 `json:"intakePerSecond"`
	Seconds         float64 `json:"seconds"`
	// EventStoredBytes and JobStoredBytes are the bytes JetStream stores per message in
	// REMEDIATION_EVENTS and REMEDIATION_DISPATCH (subject, headers and body); JobOverEvent is
	// their ratio.
	EventStoredBytes float64 `json:"eventStoredBytes"`
	JobStoredBytes   float64 `json:"jobStoredBytes"`
	JobOverEvent     float64 `json:"jobOverEvent"`
	// DispatchStoreBytes is REMEDIATION_DISPATCH's total.
	DispatchStoreBytes uint64 `json:"dispatchStoreBytes"`
	// PeakRSSBytes is the process's peak while the backlog built up; RSSBytes its resident set
	// and HeapInUseBytes the Go heap in use once it stood still for the idle window. With the
	// embedded server the process holds the server too; with --nats-url it is remediator and
	// bench's client alone.
	PeakRSSBytes   int64  `json:"peakRssBytes"`
	RSSBytes       int64  `json:"rssBytes"`
	HeapInUseBytes uint64 `json:"heapInUseBytes"`
}

// backlog measures remediator with n jobs waiting on flows paused flows (see [Backlog]).
// On an external server the flows are resumed afterwards and the backlog drained through the
// no-op flows, so that every event still ends in a terminal status.
func (r *runner) backlog(ctx context.Context, flows, n int) (res Backlog, err error) {
	res = Backlog{Name: fmt.Sprintf("remediator, %d jobs waiting", n), Flows: flows}
	err = r.onPipeline(ctx, flows, 1, func(srv *natsServer, b *broker.Broker) error {
		return r.measureBacklog(ctx, srv, b, n, &res)
	})
	return res, err
}

// measureBacklog pauses every flow, publishes n events and waits until each is a waiting job
// (or was dispatched before the pause took effect), then fills res.
func (r *runner) measureBacklog(ctx context.Context, srv *natsServer, b *broker.Broker, n int, res *Backlog) error {
	cfg, err := r.serviceConfig(srv, res.Flows)
	if err != nil {
		return err
	}
	keys, err := service.RecordKeys(cfg, lookupEnv, false)
	if err != nil {
		return err
	}
	o := ops.New(b, ops.Options{Keys: keys, Host: "remediator-bench"})
	pauseAll := ops.Switch{Kind: ops.Pause, Flow: ops.AllFlows, On: true, Reason: "bench: a backlog of waiting jobs"}
	by := ops.Operator{User: "remediator-bench", Via: "bench"}
	if err := o.SetSwitch(ctx, pauseAll, by); err != nil {
		return fmt.Errorf("bench: pause every flow: %w", err)
	}
	before, err := backlogCounts(ctx, b)
	if err != nil {
		return err
	}

	pub := newPublisher(b, r.newWorkload(n, res.Flows))
	resetPeakRSS()
	if err := pub.run(ctx, r.cfg.Publishers, 0); err != nil {
		return fmt.Errorf("bench: publish: %w", err)
	}
	// Every event becomes a waiting job, or a succeeded status if a runner took it before
	// the pause reached it.
	var now backlogCount
	last, lastProgress := -1, time.Now()
	for {
		if now, err = backlogCounts(ctx, b); err != nil {
			return err
		}
		got := now.sub(before)
		total := got.jobs + got.succeeded
		if total >= n {
			break
		}
		if total != last {
			last, lastProgress = total, time.Now()
		} else if time.Since(lastProgress) > r.cfg.Stall {
			return fmt.Errorf("bench: %s: %d of %d events became jobs, none more for %s", res.Name, total, n, r.cfg.Stall)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	span := time.Since(pub.first())
	res.PeakRSSBytes = peakRSS()
	got := now.sub(before)
	res.Jobs, res.Dispatched = got.jobs, got.succeeded
	res.Seconds = span.Seconds()
	res.IntakePerSecond = float64(n) / span.Seconds()
	res.EventStoredBytes = ratio(float64(now.events.Bytes-before.events.Bytes), float64(now.events.Messages-before.events.Messages))
	res.JobStoredBytes = ratio(float64(now.dispatch.Bytes-before.dispatch.Bytes), float64(got.jobs))
	res.JobOverEvent = ratio(res.JobStoredBytes, res.EventStoredBytes)
	res.DispatchStoreBytes = now.dispatch.Bytes

	select {
	case <-time.After(r.cfg.IdleWindow):
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInUseBytes = ms.HeapInuse
	res.RSSBytes = currentRSS()

	if srv.emb != nil {
		return nil // the server and its store go with the measurement
	}
	pauseAll.On = false
	if err := o.SetSwitch(ctx, pauseAll, by); err != nil {
		return fmt.Errorf("bench: resume every flow: %w", err)
	}
	return r.drain(ctx, b, before.dispatch.Messages)
}

// backlogCount is what the backlog row watches: the events and dispatch streams, and the
// succeeded statuses.
type backlogCount struct {
	events, dispatch *broker.StreamInfo
	succeeded        uint64
}

// diff is what happened between two counts.
type diff struct{ jobs, succeeded int }

func (c backlogCount) sub(before backlogCount) diff {
	return diff{jobs: int(c.dispatch.Messages) - int(before.dispatch.Messages), succeeded: int(c.succeeded) - int(before.succeeded)}
}

func backlogCounts(ctx context.Context, b *broker.Broker) (c backlogCount, err error) {
	if c.events, err = b.StreamInfo(ctx, broker.StreamEvents, false); err != nil {
		return c, err
	}
	if c.dispatch, err = b.StreamInfo(ctx, broker.StreamDispatch, false); err != nil {
		return c, err
	}
	st, err := b.StreamInfo(ctx, broker.StreamStatus, true)
	if err != nil {
		return c, err
	}
	c.succeeded = st.Subjects[status.SubjectPrefix+string(status.Succeeded)]
	return c, nil
}

// drain waits until the dispatch stream is back to floor messages.
func (r *runner) drain(ctx context.Context, b *broker.Broker, floor uint64) error {
	last, lastProgress := uint64(0), time.Now()
	for {
		info, err := b.StreamInfo(ctx, broker.StreamDispatch, false)
		if err != nil {
			return err
		}
		if info.Messages <= floor {
			return nil
		}
		if info.Messages != last {
			last, lastProgress = info.Messages, time.Now()
		} else if time.Since(lastProgress) > r.cfg.Stall {
			return fmt.Errorf("bench: draining the backlog: %d jobs left, none dispatched for %s", info.Messages-floor, r.cfg.Stall)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
