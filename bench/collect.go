package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/status"
)

// syncOutcome is the subject token of the one record bench itself writes on the status
// stream: it tells the collector's reader is live before any event is published.
const syncOutcome = "bench_sync"

// collector reads REMEDIATION_STATUS and keeps, per event of the workload, its first
// terminal record: when the server stored it and its outcome. A second terminal record for
// one event is counted, not kept: there must be none.
type collector struct {
	w      *workload
	mu     sync.Mutex
	at     []time.Time // stored time of the first terminal record; zero: none yet
	ok     []bool      // that record is a success
	got    int
	extra  int
	last   time.Time     // the latest terminal record's stored time
	cpuEnd time.Duration // process CPU when the last event became terminal
	done   chan struct{}
	synced chan struct{}
	stop   func()
	ended  chan error
}

// startCollector tails the status stream and returns once the tail is live (it has seen a
// record written after it started), so that no status of the events to come is missed.
func startCollector(ctx context.Context, b *broker.Broker, w *workload) (*collector, error) {
	c := &collector{
		w: w, at: make([]time.Time, w.n), ok: make([]bool, w.n),
		done: make(chan struct{}), synced: make(chan struct{}), ended: make(chan error, 1),
	}
	if w.n == 0 {
		close(c.done)
	}
	tctx, cancel := context.WithCancel(ctx)
	c.stop = cancel
	var syncOnce sync.Once
	go func() {
		c.ended <- b.Tail(tctx, broker.StreamStatus, status.SubjectPrefix+">", 0, func(m *broker.StoredMessage) {
			if m.Subject == status.SubjectPrefix+syncOutcome {
				syncOnce.Do(func() { close(c.synced) })
				return
			}
			c.record(m)
		})
	}()
	mark := []byte(fmt.Sprintf(`{"eventId":%q}`, w.prefix+"sync"))
	// The tail's reader may not exist yet when the first mark is stored (it then starts after
	// it and never sees it): mark again until it does.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := b.Publish(ctx, status.SubjectPrefix+syncOutcome, mark, broker.PublishOptions{}); err != nil {
			c.close()
			return nil, fmt.Errorf("bench: status stream: %w", err)
		}
		select {
		case <-c.synced:
			return c, nil
		case err := <-c.ended:
			cancel()
			return nil, fmt.Errorf("bench: reading the status stream: %v", err)
		case <-ctx.Done():
			c.close()
			return nil, context.Cause(ctx)
		case <-tick.C:
		}
	}
}

func (c *collector) record(m *broker.StoredMessage) {
	var r struct {
		EventID string         `json:"eventId"`
		Outcome status.Outcome `json:"outcome"`
	}
	if json.Unmarshal(m.Data, &r) != nil || !r.Outcome.Terminal() {
		return
	}
	i, ok := c.w.index(r.EventID)
	if !ok {
		return // another run's, or not an event of this workload
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at[i].IsZero() {
		c.extra++
		return
	}
	c.at[i] = m.Time
	c.ok[i] = r.Outcome == status.Succeeded
	c.got++
	if m.Time.After(c.last) {
		c.last = m.Time
	}
	if c.got == c.w.n {
		c.cpuEnd = cpuTime()
		close(c.done)
	}
}

// wait returns when every event has a terminal record, or with an error naming how many
// have none once stall passes without a new one.
func (c *collector) wait(ctx context.Context, stall time.Duration) error {
	lastGot, since := -1, time.Now()
	tick := time.NewTicker(stall / 10)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return nil
		case err := <-c.ended:
			return fmt.Errorf("bench: reading the status stream stopped: %v", err)
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
			c.mu.Lock()
			got := c.got
			c.mu.Unlock()
			if got != lastGot {
				lastGot, since = got, time.Now()
			} else if time.Since(since) > stall {
				return fmt.Errorf("bench: %d of %d events have no terminal status after %s without progress", c.w.n-got, c.w.n, stall)
			}
		}
	}
}

// close stops the tail.
func (c *collector) close() {
	c.stop()
	<-c.ended
}

// fill writes the accounting and the latencies (publish → succeeded) into m.
func (c *collector) fill(m *Measurement, p *publisher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []time.Duration
	by := map[event.Priority][]time.Duration{}
	for i := range c.w.n {
		switch {
		case c.at[i].IsZero():
			m.Missing++
		case !c.ok[i]:
			m.OtherTerminal++
		default:
			m.Succeeded++
			d := c.at[i].Sub(time.Unix(0, p.sentAt[i].Load()))
			all = append(all, d)
			by[c.w.priority[i]] = append(by[c.w.priority[i]], d)
		}
	}
	m.ExtraTerminals = c.extra
	m.Latency = percentiles(all)
	m.ByPriority = map[string]Percentiles{}
	for _, pr := range event.Priorities {
		m.ByPriority[string(pr)] = percentiles(by[pr])
	}
}
