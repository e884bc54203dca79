package bench_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/remediator/remediator/bench"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunReportIsComplete runs every measurement with tiny counts: the report must have every
// row, non-zero rates, and every event accounted for (one terminal status each, all
// succeeded, one flow call each). It checks the report, not the speed.
func TestRunReportIsComplete(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const events, latencyEvents, backlog = 200, 40, 300
	rep, err := bench.Run(ctx, bench.Config{
		Events: events, Flows: 4, FlowsSweep: []int{2, 4}, Replicas: []int{1, 2},
		LatencyEvents: latencyEvents, LatencyRate: 200, Backlog: backlog, IdleWindow: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]bench.Phase{"publish": rep.Raw.Publish, "consume+ack": rep.Raw.ConsumeAck, "fetch(1)+double ack": rep.Raw.FetchOneDoubleAck} {
		if p.Messages != events || p.PerSecond <= 0 || p.Seconds <= 0 {
			t.Errorf("raw %s: %+v, want %d messages at a positive rate", name, p, events)
		}
	}
	check := func(m bench.Measurement, n, flows, replicas int) {
		t.Helper()
		if m.Events != n || m.Succeeded != n || m.Missing != 0 || m.OtherTerminal != 0 || m.ExtraTerminals != 0 {
			t.Errorf("%s: %d events, %d succeeded, %d other terminal, %d missing, %d extra; want all %d succeeded once",
				m.Name, m.Events, m.Succeeded, m.OtherTerminal, m.Missing, m.ExtraTerminals, n)
		}
		if m.FlowCalls != int64(n) {
			t.Errorf("%s: the flows were called %d times for %d events", m.Name, m.FlowCalls, n)
		}
		if m.Flows != flows || m.Replicas != replicas {
			t.Errorf("%s: %d flows, %d replicas; want %d and %d", m.Name, m.Flows, m.Replicas, flows, replicas)
		}
		if m.EventsPerSecond <= 0 || m.CPUPerEvent <= 0 || m.PeakRSSBytes <= 0 || m.Latency.Count != n || m.Latency.P50 <= 0 {
			t.Errorf("%s: rate %v, CPU/event %v ms, RSS %d, latency %+v: want all positive", m.Name, m.EventsPerSecond, m.CPUPerEvent, m.PeakRSSBytes, m.Latency)
		}
		total := 0
		for _, p := range []string{"high", "normal", "low"} {
			pc, ok := m.ByPriority[p]
			if !ok || pc.Count == 0 {
				t.Errorf("%s: no latency for priority %s", m.Name, p)
			}
			total += pc.Count
		}
		if total != n {
			t.Errorf("%s: %d latencies over the priorities, want %d", m.Name, total, n)
		}
	}
	check(rep.Plain, events, 4, 1)
	check(rep.Full, events, 4, 1)
	if len(rep.FlowsSweep) != 2 || len(rep.Replicas) != 2 {
		t.Fatalf("%d sweep rows and %d replica rows, want 2 and 2", len(rep.FlowsSweep), len(rep.Replicas))
	}
	for i, flows := range []int{2, 4} {
		check(rep.FlowsSweep[i], events, flows, 1)
	}
	for i, replicas := range []int{1, 2} {
		check(rep.Replicas[i], events, 4, replicas)
	}
	check(rep.Latency, latencyEvents, 4, 1)
	if rep.Latency.PublishRate != 200 {
		t.Errorf("latency row published at %v events/s, want 200", rep.Latency.PublishRate)
	}
	if bl := rep.Backlog; bl == nil {
		t.Error("no backlog row")
	} else {
		// Every event is a waiting job, or was dispatched before the pause took effect; a job
		// is stored at a size comparable to its event's (it refers to the event, not a copy).
		if bl.Jobs+bl.Dispatched != backlog || bl.Jobs == 0 {
			t.Errorf("backlog: %d jobs waiting and %d dispatched, want %d in all", bl.Jobs, bl.Dispatched, backlog)
		}
		if bl.EventStoredBytes < 1024 || bl.JobStoredBytes <= 0 || bl.JobOverEvent <= 0 || bl.JobOverEvent > 2 {
			t.Errorf("backlog: event %v bytes, job %v bytes stored (%v×): want a 1 KiB event and a job of comparable size", bl.EventStoredBytes, bl.JobStoredBytes, bl.JobOverEvent)
		}
		if bl.RSSBytes <= 0 || bl.HeapInUseBytes == 0 || bl.PeakRSSBytes <= 0 {
			t.Errorf("backlog: RSS %d, heap %d, peak %d: want all measured", bl.RSSBytes, bl.HeapInUseBytes, bl.PeakRSSBytes)
		}
	}
	if rep.Ratios.PlainOverFull <= 0 || rep.Ratios.RawOverFull <= 0 || rep.Ratios.CPUFullOverPlain <= 0 {
		t.Errorf("ratios %+v: want all positive", rep.Ratios)
	}
}
